//! Compact JWS (every signed token the project reads: action requests, proofs, identity and ID
//! tokens, client assertions): `UnverifiedJws::parse` and both verifications. Checks that a
//! parsed token has three parts within the size limit, that its decoded payload re-encodes to
//! the payload part (no second encoding of the same bytes passes), that `action_kid` reads the
//! same key id, and that a verification returns exactly the parsed payload.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sleutel_fuzz::targets::compact_jws::run(data);
});
