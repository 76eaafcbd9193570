//! Push payloads as the phone reads them before it looks anything up (`handle_push`). Checks
//! that an accepted payload names two well-formed ids and survives a JSON round trip.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sleutel_fuzz::targets::push_payload::run(data);
});
