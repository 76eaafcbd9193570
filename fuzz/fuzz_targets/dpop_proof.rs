//! DPoP-style proofs, as the server reads the `DPoP` header of every phone call
//! (`dpop::verify_proof`). With the mode bit set, the rest is the proof's claims, signed by the
//! target under a header that carries the signing key. Checks that an accepted proof names the
//! key that signed it (thumbprint), a `jti` within its length, and an `iat` within the accepted
//! age and clock skew.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sleutel_fuzz::targets::dpop_proof::run(data);
});
