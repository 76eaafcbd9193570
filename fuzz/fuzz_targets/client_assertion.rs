//! Client authentication at the token and backchannel endpoints: HTTP Basic
//! (`client_secret_basic`) and `private_key_jwt` assertions (RFC 7523), as
//! `Clients::authenticate` checks them before the single use is recorded. The first byte's mode
//! bit says the rest is an assertion's claims to sign with the key client's key; its second bit
//! says an `Authorization` header comes first (its length in the next byte). Checks that only a
//! registered client is accepted, a key client only by an assertion, a secret client only by
//! its secret, and that an assertion's `jti` is kept no longer than an assertion may live.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sleutel_fuzz::targets::client_assertion::run(data);
});
