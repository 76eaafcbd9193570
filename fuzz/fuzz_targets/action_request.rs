//! Action requests as the phone verifies them (`verify_request` against the pinned keys, then
//! the view the person is shown). With the mode bit set, the rest is the request's claims,
//! signed by the target with the pinned key. Checks that an accepted request is for this
//! account from this server, unexpired with a lifetime within the limit, asks for a bounded
//! set of distinct claims, and that every text shown stays within its length.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sleutel_fuzz::targets::action_request::run(data);
});
