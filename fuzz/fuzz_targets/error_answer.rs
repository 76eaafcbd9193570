//! The server's error answers as the phone reads them (status and body to `CoreError`). The
//! first two bytes are the HTTP status. Checks that a 5xx is always "server unavailable"
//! whatever its body says, so that the phone treats the call's outcome as unknown.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sleutel_fuzz::targets::error_answer::run(data);
});
