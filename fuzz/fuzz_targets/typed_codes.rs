//! What a person types: the eID website's identification code and the counter's activation
//! code (as the phone reads them), and a mobile number (as the phone, the server and the
//! `login_hint` of relying parties read it). The first byte picks which. Checks that an accepted
//! code is canonical (reading it again, or its grouped display form, gives it back) of the right
//! length in the codes' alphabet, and that a normalised number normalises to itself.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sleutel_fuzz::targets::typed_codes::run(data);
});
