//! Form bodies and query strings as the server reads them (`Params::parse`: each name once),
//! and the grant of a token request (`POST /oidc/token`, `read_grant`). Checks that the
//! parameters kept, written out as a form again, read back to the same set, and that an accepted
//! grant names one of our identifiers (CIBA) or carries every part of a code exchange.
use sleutel_protocol::api::is_valid_id;
use sleutel_server::fuzzing::{Grant, form, token_form};

/// Runs the target on `data`; true when the reader under test accepted it.
pub fn run(data: &[u8]) -> bool {
    let Ok(mut pairs) = form(data) else {
        assert!(token_form(data).is_err());
        return false;
    };
    let mut written = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in &pairs {
        written.append_pair(name, value);
    }
    let again = form(written.finish().as_bytes());
    pairs.sort();
    assert_eq!(
        again
            .map(|mut p| {
                p.sort();
                p
            })
            .ok(),
        Some(pairs)
    );
    match token_form(data) {
        Ok(Grant::Ciba { auth_req_id }) => {
            assert!(is_valid_id(&auth_req_id));
            true
        }
        Ok(Grant::Code {
            code,
            redirect_uri,
            verifier,
        }) => {
            assert!(!code.is_empty() && !redirect_uri.is_empty() && !verifier.is_empty());
            true
        }
        Err(_) => false,
    }
}
