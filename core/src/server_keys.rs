//! The server's signing keys as the phone pins them at enrollment. The enrollment fetches them
//! (`GET /v1/server-keys`) before it registers any key, and keeps only keys that can verify ES256
//! and carry a key id, and, when the app was built with the expected key's thumbprint, only that
//! key. Every action request is later verified against the pinned set, so a server that publishes
//! no usable (or not the expected) key never gets this phone enrolled.

use sleutel_protocol::jose::{self, Jwk, Jwks};

use crate::error::CoreError;

/// The keys to pin from the set the server published: the usable ones ([`usable`]), and with a
/// configured thumbprint only the expected one ([`expected_only`]).
pub(crate) fn to_pin(fetched: Jwks, thumbprint: Option<&str>) -> Result<Jwks, CoreError> {
    expected_only(usable(fetched)?, thumbprint)
}

/// Keeps only keys that can verify ES256 and carry a key id; refuses a set with none.
fn usable(jwks: Jwks) -> Result<Jwks, CoreError> {
    let keys: Vec<Jwk> = jwks
        .keys
        .into_iter()
        .filter(|k| k.kid.as_deref().is_some_and(|kid| !kid.is_empty()))
        .filter(|k| k.alg.as_deref().is_none_or(|alg| alg == jose::ES256))
        .filter(|k| k.to_verifying_key().is_ok())
        .collect();
    if keys.is_empty() {
        return Err(CoreError::untrusted(
            "the server publishes no usable signing key",
        ));
    }
    Ok(Jwks { keys })
}

/// When the app was configured with a key thumbprint, keeps only that key, and refuses a set
/// that lacks it: a server that does not publish the expected key is not the one the app was
/// built for and must not get this phone enrolled.
fn expected_only(keys: Jwks, thumbprint: Option<&str>) -> Result<Jwks, CoreError> {
    let Some(thumbprint) = thumbprint else {
        return Ok(keys);
    };
    let keys: Vec<Jwk> = keys
        .keys
        .into_iter()
        .filter(|k| k.thumbprint() == thumbprint)
        .collect();
    if keys.is_empty() {
        return Err(CoreError::untrusted(
            "the server does not publish the signing key this app was configured with",
        ));
    }
    Ok(Jwks { keys })
}

/// Adds the usable (and, with a configured thumbprint, expected) keys of the completion answer
/// that the fetched set lacks (both came from the same server over the same connection
/// security).
pub(crate) fn merge(mut pinned: Jwks, extra: Jwks, thumbprint: Option<&str>) -> Jwks {
    if let Ok(extra) = usable(extra).and_then(|k| expected_only(k, thumbprint)) {
        for key in extra.keys {
            if pinned
                .find(key.kid.as_deref().unwrap_or_default())
                .is_none()
            {
                pinned.keys.push(key);
            }
        }
    }
    pinned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_keys_without_kid_or_valid_point_are_not_pinned() {
        use p256::ecdsa::SigningKey;
        use p256::elliptic_curve::Generate;
        let good = Jwk::from_verifying_key(SigningKey::generate().verifying_key()).published("k1");
        let no_kid = Jwk::from_verifying_key(SigningKey::generate().verifying_key());
        let mut off_curve = good.clone().published("k2");
        off_curve.y = off_curve.x.clone();
        let kept = usable(Jwks {
            keys: vec![good.clone(), no_kid, off_curve],
        })
        .unwrap();
        assert_eq!(kept.keys, vec![good]);
        assert!(matches!(
            usable(Jwks { keys: vec![] }),
            Err(CoreError::ServerUntrusted { .. })
        ));
    }
}
