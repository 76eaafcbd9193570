//! OpenID Connect CIBA for relying parties: the endpoints' paths, the discovery document, the
//! answers of the backchannel authentication and token endpoints, the ping of ping mode, and the
//! ID token with [`verify_id_token`], the check a relying party runs on every token it gets.

use serde::{Deserialize, Serialize};

use crate::approval::ApprovedAction;
use crate::jose::{self, Jwks, UnverifiedJws};
use crate::limits::CLOCK_SKEW_SECS;
use crate::{ProtocolError, Result};

/// OIDC discovery document.
pub const PATH_DISCOVERY: &str = "/.well-known/openid-configuration";
/// JWKS of the keys that sign ID tokens (and action requests).
pub const PATH_JWKS: &str = "/oidc/jwks";
/// CIBA backchannel authentication endpoint.
pub const PATH_BC_AUTHORIZE: &str = "/oidc/bc-authorize";
/// OAuth token endpoint.
pub const PATH_TOKEN: &str = "/oidc/token";
/// Authorization endpoint of the authorization code flow (OpenID Connect Core §3.1.2): the
/// browser comes here and gets the sign-in page.
pub const PATH_AUTHORIZE: &str = "/oidc/authorize";
/// UserInfo endpoint (OpenID Connect Core §5.3): the consented claims, for an access token.
pub const PATH_USERINFO: &str = "/oidc/userinfo";
/// The authorization code grant type (RFC 6749 §4.1.3).
pub const AUTHORIZATION_CODE_GRANT_TYPE: &str = "authorization_code";
/// The CIBA grant type.
pub const CIBA_GRANT_TYPE: &str = "urn:openid:params:grant-type:ciba";

/// `client_assertion_type` of a client that authenticates with a signed JWT (RFC 7523 §2.2).
pub const CLIENT_ASSERTION_TYPE_JWT_BEARER: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Client authentication with HTTP Basic and the client secret (RFC 6749 §2.3.1).
pub const AUTH_METHOD_CLIENT_SECRET_BASIC: &str = "client_secret_basic";
/// Client authentication with a JWT signed by the client's registered key (OIDC Core §9,
/// RFC 7523).
pub const AUTH_METHOD_PRIVATE_KEY_JWT: &str = "private_key_jwt";

/// The claims of a client assertion (RFC 7523 §3, OIDC Core §9): the client (`iss` and `sub`)
/// says to the server (`aud`) that it is itself, once (`jti`), until `exp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientAssertionClaims {
    /// The client id.
    pub iss: String,
    /// The client id again.
    pub sub: String,
    /// The server's issuer identifier or its token endpoint URL.
    pub aud: String,
    /// A unique id: the server accepts each one once.
    pub jti: String,
    /// When the assertion was made.
    pub iat: i64,
    /// When it stops being acceptable.
    pub exp: i64,
}

/// The OIDC discovery document (the members this server supports).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryDocument {
    /// Issuer URL.
    pub issuer: String,
    /// JWKS URL.
    pub jwks_uri: String,
    /// Token endpoint.
    pub token_endpoint: String,
    /// Authorization endpoint of the authorization code flow; absent in documents of servers
    /// that offer only CIBA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    /// UserInfo endpoint; absent in documents of servers that offer only CIBA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    /// PKCE methods (RFC 8414 §2): `S256` only.
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    /// Whether the authorization response carries `iss` (RFC 9207 §3).
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    /// CIBA backchannel authentication endpoint.
    pub backchannel_authentication_endpoint: String,
    /// `poll` (and `ping` where supported).
    pub backchannel_token_delivery_modes_supported: Vec<String>,
    /// Whether `user_code` is supported (no).
    pub backchannel_user_code_parameter_supported: bool,
    /// Response types (REQUIRED by OpenID Connect Discovery 1.0 §3). Defaults to empty when a
    /// document without it is read, so documents of older servers still parse.
    #[serde(default)]
    pub response_types_supported: Vec<String>,
    /// Grant types.
    pub grant_types_supported: Vec<String>,
    /// Client authentication methods.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Signing algorithms of client assertions (`private_key_jwt`) at the token endpoint, and
    /// so at the backchannel authentication endpoint, which authenticates clients the same way
    /// (CIBA §7.1). Empty when a document without it is read.
    #[serde(default)]
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// ID token signing algorithms.
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// Scopes.
    pub scopes_supported: Vec<String>,
    /// Claims.
    pub claims_supported: Vec<String>,
    /// Subject types.
    pub subject_types_supported: Vec<String>,
    /// ACR values.
    pub acr_values_supported: Vec<String>,
    /// Whether the `claims` request parameter (OIDC Core §5.5) is supported.
    #[serde(default)]
    pub claims_parameter_supported: bool,
}

/// Successful answer of the backchannel authentication endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackchannelAuthResponse {
    /// The id to poll with.
    pub auth_req_id: String,
    /// Seconds until the request expires.
    pub expires_in: i64,
    /// Minimum seconds between polls.
    pub interval: i64,
    /// Under number matching, the two-digit number the relying party shows its user; the
    /// person picks it among three on the phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_number: Option<u8>,
}

/// The body of a CIBA ping (§10.2) to a client's notification endpoint: the request whose
/// result can now be fetched from the token endpoint. The `Authorization: Bearer` header
/// carries the `client_notification_token` the client gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingNotification {
    /// The request that has an outcome.
    pub auth_req_id: String,
}

/// Successful answer of the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// Opaque access token.
    pub access_token: String,
    /// `Bearer`.
    pub token_type: String,
    /// Lifetime of the access token.
    pub expires_in: i64,
    /// The ES256 ID token.
    pub id_token: String,
}

/// The `typ` of an ID token.
pub const ID_TOKEN_TYP: &str = "JWT";

/// The `acr` of a login confirmed on the phone with the device key and the 5-digit code. A relying
/// party that asks for it in `acr_values` (or asks nothing) gets code-only requests.
pub const ACR_CODE: &str = "urn:sleutel:acr:code";

/// The `acr` of a login confirmed with the device key and the code or the enrolled biometric. A
/// relying party asks for it in `acr_values` to let the person confirm with a fingerprint or face.
pub const ACR_CODE_OR_BIOMETRIC: &str = "urn:sleutel:acr:code-or-biometric";

/// Claims of an ID token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// Issuer.
    pub iss: String,
    /// Pairwise subject: stable per person and relying party, unlinkable across relying parties.
    pub sub: String,
    /// The relying party's client id.
    pub aud: String,
    /// Issued at.
    pub iat: i64,
    /// Expiry.
    pub exp: i64,
    /// When the person confirmed.
    pub auth_time: i64,
    /// Authentication context class.
    pub acr: String,
    /// Authentication methods (`hwk`/`swk`, `pin`/`face`/`fpt`).
    pub amr: Vec<String>,
    /// Full name, when consented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Given name, when consented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// Family name, when consented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// Date of birth (`YYYY-MM-DD`), when consented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birthdate: Option<String>,
    /// National register number, when consented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub national_register_number: Option<String>,
    /// Phone number verified by SMS (E.164), when consented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// Whether the person is 18 or older on the day of issue, when consented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_over_18: Option<bool>,
    /// The `nonce` of the authorization request (authorization code flow only, OIDC Core
    /// §3.1.3.6): the relying party checks it against the one it sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The access token's hash (authorization code flow only, OIDC Core §3.1.3.6): the
    /// base64url of the left half of its SHA-256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    /// What the person approved (claim [`crate::approval::CLAIM`]): the kind of request, the
    /// hash of the signed request that names the server's evidence, and what was shown (binding
    /// message, payment, free-text digest, document). Every ID token of this server carries it;
    /// a relying party checks it against what it asked
    /// ([`ApprovedAction::check_asked`](crate::approval::ApprovedAction::check_asked)).
    pub sleutel_action: ApprovedAction,
}

/// Verifies an ID token as a relying party must: ES256 signature by the key of `jwks` its header
/// names, type, issuer, audience (the relying party's client id), expiry and issue time.
pub fn verify_id_token(
    id_token: &str,
    jwks: &Jwks,
    issuer: &str,
    client_id: &str,
    now: i64,
) -> Result<IdTokenClaims> {
    let jws = UnverifiedJws::parse(id_token, "id token")?;
    let kid = jws.header.kid.clone().unwrap_or_default();
    let key = jwks
        .find(&kid)
        .ok_or_else(|| {
            ProtocolError::mismatch("id_token.kid", format!("no key {kid:?} in the JWKS"))
        })?
        .to_verifying_key()?;
    let payload = jws.verify(&key, ID_TOKEN_TYP, "id token")?;
    let claims: IdTokenClaims = jose::parse_claims(&payload, "id token")?;
    if claims.iss != issuer {
        return Err(ProtocolError::mismatch("id_token.iss", claims.iss));
    }
    if claims.aud != client_id {
        return Err(ProtocolError::mismatch("id_token.aud", claims.aud));
    }
    if claims.exp <= now {
        return Err(ProtocolError::Expired("id token"));
    }
    if claims.iat > now + CLOCK_SKEW_SECS {
        return Err(ProtocolError::NotYetValid("id token"));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::{Header, Jwk, sign_compact};
    use p256::ecdsa::SigningKey;
    use p256::elliptic_curve::Generate;

    const NOW: i64 = 1_800_000_000;

    fn claims() -> IdTokenClaims {
        IdTokenClaims {
            iss: "http://server".into(),
            sub: "pairwise".into(),
            aud: "rp".into(),
            iat: NOW,
            exp: NOW + 300,
            auth_time: NOW,
            acr: "urn:sleutel:acr:code".into(),
            amr: vec!["pin".into()],
            name: Some("Lotte Aerts".into()),
            given_name: None,
            family_name: None,
            birthdate: None,
            national_register_number: None,
            phone_number: None,
            age_over_18: None,
            nonce: None,
            at_hash: None,
            sleutel_action: ApprovedAction {
                kind: crate::action::ActionKind::Login,
                request_hash: "hash".into(),
                binding_message: None,
                transaction: None,
                document: None,
            },
        }
    }

    fn signed(key: &SigningKey, kid: &str, claims: &IdTokenClaims) -> String {
        let header = Header::es256(ID_TOKEN_TYP).with_kid(kid);
        sign_compact(&header, &serde_json::to_vec(claims).unwrap(), key).unwrap()
    }

    fn jwks(key: &SigningKey, kid: &str) -> Jwks {
        Jwks {
            keys: vec![Jwk::from_verifying_key(key.verifying_key()).published(kid)],
        }
    }

    #[test]
    fn a_valid_token_gives_its_claims() {
        let key = SigningKey::generate();
        let token = signed(&key, "k1", &claims());
        let got = verify_id_token(&token, &jwks(&key, "k1"), "http://server", "rp", NOW);
        assert_eq!(got, Ok(claims()));
    }

    #[test]
    fn a_token_that_does_not_say_what_was_approved_is_refused() {
        let key = SigningKey::generate();
        let mut claims = serde_json::to_value(claims()).unwrap();
        claims.as_object_mut().unwrap().remove("sleutel_action");
        let header = Header::es256(ID_TOKEN_TYP).with_kid("k1");
        let token = sign_compact(&header, &serde_json::to_vec(&claims).unwrap(), &key).unwrap();

        let got = verify_id_token(&token, &jwks(&key, "k1"), "http://server", "rp", NOW);

        assert!(
            matches!(got, Err(ProtocolError::Malformed { .. })),
            "{got:?}"
        );
    }

    #[test]
    fn another_key_issuer_audience_or_time_is_refused() {
        let key = SigningKey::generate();
        let set = jwks(&key, "k1");
        let token = signed(&key, "k1", &claims());
        let check =
            |t: &str, iss: &str, aud: &str, now: i64| verify_id_token(t, &set, iss, aud, now);

        let forged = signed(&SigningKey::generate(), "k1", &claims());
        assert_eq!(
            check(&forged, "http://server", "rp", NOW),
            Err(ProtocolError::BadSignature("id token"))
        );
        let unknown_kid = signed(&key, "k2", &claims());
        assert!(matches!(
            check(&unknown_kid, "http://server", "rp", NOW),
            Err(ProtocolError::Mismatch { .. })
        ));
        assert!(matches!(
            check(&token, "http://other", "rp", NOW),
            Err(ProtocolError::Mismatch {
                what: "id_token.iss",
                ..
            })
        ));
        assert!(matches!(
            check(&token, "http://server", "other-rp", NOW),
            Err(ProtocolError::Mismatch {
                what: "id_token.aud",
                ..
            })
        ));
        assert_eq!(
            check(&token, "http://server", "rp", NOW + 300),
            Err(ProtocolError::Expired("id token"))
        );
        let mut early = claims();
        early.iat = NOW + CLOCK_SKEW_SECS + 1;
        early.exp = NOW + 600;
        let early = signed(&key, "k1", &early);
        assert_eq!(
            check(&early, "http://server", "rp", NOW),
            Err(ProtocolError::NotYetValid("id token"))
        );
    }
}
