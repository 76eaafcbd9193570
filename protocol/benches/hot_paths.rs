//! The server's and the phone's signature work per login, one benchmark each: the device proof
//! the server checks on every phone call, the action request it signs, the phone's response
//! (signed by the phone, verified by the server) and the ID token it signs. Run with
//! `cargo bench -p sleutel-protocol --features ring --bench hot_paths` for the server and the
//! phone's core as they are built (they verify through ring, and the server signs through it),
//! and without the feature for RustCrypto's p256; each benchmark's name says which. The phone
//! signs with p256 (or its platform keystore) either way. `cargo test` does not run them.

use criterion::Criterion;
use p256::ecdsa::SigningKey;
use sleutel_protocol::action::ACTION_TYP;
use sleutel_protocol::dpop;
use sleutel_protocol::jose::{self, GeneralJws, Header, Jwk};
use sleutel_protocol::response::{ActionResponse, Decision, DeviceSignedResponse, UvMethod};
use std::hint::black_box;

/// When every benchmark's tokens are made and checked (Unix seconds).
const NOW: i64 = 1_800_000_000;

/// A key for the benchmarks (fixed bytes: the figures must not depend on the draw).
fn key(byte: u8) -> SigningKey {
    SigningKey::from_slice(&[byte; 32]).expect("a valid scalar")
}

/// An action request's payload of the usual size: a login with the name asked.
fn action_request_payload() -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "iss": "http://127.0.0.1:8440", "request_id": "r-4f1c2a9e7b3d4c5e8f9a0b1c2d3e4f5a",
        "account_id": "a-0123456789abcdef0123456789abcdef", "kind": "login",
        "rp": {"client_id": "online-overheid", "name": "Online overheid"},
        "text": "Ik log in bij Online overheid", "binding_message": "ABCD-1234",
        "claims": ["name"], "optional_claims": [], "uv": "pin", "iat": NOW, "exp": NOW + 300,
    }))
    .expect("plain JSON")
}

/// An ID token's claims of the usual size.
fn id_token_payload() -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "iss": "http://127.0.0.1:8440", "sub": "s-0123456789abcdef0123456789abcdef",
        "aud": "online-overheid", "iat": NOW, "exp": NOW + 300, "auth_time": NOW,
        "acr": "urn:sleutel:acr:pin", "amr": ["pin", "hwk"], "name": "Jan Peeters",
        "sleutel_action": {"kind": "login", "text": "Ik log in bij Online overheid",
            "binding_message": "ABCD-1234", "request_hash": "x".repeat(43)},
    }))
    .expect("plain JSON")
}

/// The phone's approval: the response signed by the device key, then by the PIN key.
fn signed_response(device: &SigningKey, pin: &SigningKey) -> GeneralJws {
    let response = ActionResponse {
        request_id: "r-4f1c2a9e7b3d4c5e8f9a0b1c2d3e4f5a".into(),
        request_hash: jose::sha256_b64(b"the request's compact JWS"),
        decision: Decision::Approve,
        reason: None,
        method: Some(UvMethod::Pin),
        claims: vec!["name".into()],
        number: None,
        iat: NOW,
    };
    let mut jws = GeneralJws::new(&response.to_payload());
    let Ok(()) = jws.add_signature(&ActionResponse::device_header(), device);
    let Ok(()) = jws.add_signature(&ActionResponse::uv_header(UvMethod::Pin), pin);
    jws
}

/// The library that checks the ECDSA equation, and the server signs with.
const BACKEND: &str = if cfg!(feature = "ring") {
    "ring"
} else {
    "p256"
};

/// The server's signing key as the server holds it: through ring with the feature.
#[cfg(feature = "ring")]
fn server_signer(key: &SigningKey) -> jose::RingSigningKey {
    jose::RingSigningKey::from_p256(key).expect("ring takes a valid P-256 key")
}

/// The server's signing key as the server holds it: p256's without the feature.
#[cfg(not(feature = "ring"))]
fn server_signer(key: &SigningKey) -> SigningKey {
    key.clone()
}

fn benchmarks(c: &mut Criterion) {
    let (device, pin) = (key(1), key(2));
    let server = server_signer(&key(3));
    let jwk = Jwk::from_verifying_key(device.verifying_key());
    let body = br#"{"a":"response body"}"#;
    let path = "/v1/requests/r-4f1c2a9e7b3d4c5e8f9a0b1c2d3e4f5a/response";
    let url = format!("http://127.0.0.1:8440{path}");
    let Ok(proof) = dpop::make_proof(&device, &jwk, "POST", &url, body, "jti-1", NOW);
    assert!(dpop::verify_proof(&proof, "POST", path, body, NOW).is_ok());

    c.bench_function(
        &format!("server: device proof check (DPoP, {BACKEND})"),
        |b| b.iter(|| dpop::verify_proof(black_box(&proof), "POST", path, body, NOW)),
    );
    let request = action_request_payload();
    let request_header = Header::es256(ACTION_TYP).with_kid("server-1");
    c.bench_function(
        &format!("server: action request signing ({BACKEND})"),
        |b| b.iter(|| jose::sign_compact(&request_header, black_box(&request), &server)),
    );
    let jws = signed_response(&device, &pin);
    let (device_key, pin_key) = (*device.verifying_key(), *pin.verifying_key());
    c.bench_function(
        &format!("server: response verification (device and PIN signatures, {BACKEND})"),
        |b| {
            b.iter(|| {
                let verified = DeviceSignedResponse::verify(black_box(jws.clone()), &device_key)
                    .expect("the device signature verifies");
                verified.verify_user(&pin_key)
            })
        },
    );
    let claims = id_token_payload();
    let id_header = Header::es256("JWT").with_kid("server-1");
    c.bench_function(&format!("server: ID token signing ({BACKEND})"), |b| {
        b.iter(|| jose::sign_compact(&id_header, black_box(&claims), &server))
    });
    c.bench_function("phone: response signing (device and PIN keys, p256)", |b| {
        b.iter(|| signed_response(black_box(&device), &pin))
    });
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    benchmarks(&mut criterion);
    criterion.final_summary();
}
