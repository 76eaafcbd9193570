//! The JSON bodies the server reads (phone API and simulators), through the reader every
//! handler uses. The first byte picks the body's type. Checks that an accepted body survives a
//! JSON round trip unchanged.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sleutel_fuzz::targets::api_bodies::run(data);
});
