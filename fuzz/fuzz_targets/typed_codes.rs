//! What a person or a platform hands the phone: identification and activation codes, mobile
//! numbers, push tokens (see `sleutel_fuzz::targets::typed_codes`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sleutel_fuzz::targets::typed_codes::run(data);
});
