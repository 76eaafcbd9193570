//! The bank's return link (`sleutel://enroll/bank?...`) as the phone reads it when the bank's
//! app hands back (`parse_bank_return`). Checks that an accepted link yields a token within the
//! JWS size limit, and that the link the bank simulator builds for that token reads back to it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sleutel_fuzz::targets::bank_return_link::run(data);
});
