//! What the sign-in pages read from a browser: the session id in the `Cookie` header and the
//! page language from `Accept-Language` (see `sleutel_fuzz::targets::browser_headers`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sleutel_fuzz::targets::browser_headers::run(data);
});
