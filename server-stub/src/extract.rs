//! Reading requests: bodies with the protocol's size limit, JSON, forms, query strings and path
//! parameters, each failure mapped to a JSON error (never axum's plain-text defaults).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::{Result, ServerError};

/// The raw request body, at most `limits::MAX_BODY_BYTES` (the router's body limit).
pub(crate) struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ServerError;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ServerError::BodyTooLarge
                } else {
                    ServerError::InvalidRequest("the request body could not be read".into())
                }
            })
    }
}

/// Parses a JSON body into `T`.
pub(crate) fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body)
        .map_err(|e| ServerError::InvalidRequest(format!("malformed JSON body: {e}")))
}

/// Parameters of a form body or query string. Each name may appear once (RFC 6749 §3.1: "request
/// and response parameters MUST NOT be included more than once"). No `Debug`: a bank form
/// carries the card PIN.
pub(crate) struct Params(HashMap<String, String>);

impl Params {
    /// Parses `application/x-www-form-urlencoded` bytes.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self> {
        let mut map = HashMap::new();
        for (name, value) in url::form_urlencoded::parse(bytes) {
            if map.insert(name.to_string(), value.into_owned()).is_some() {
                return Err(ServerError::InvalidRequest(format!(
                    "parameter {name} is given more than once"
                )));
            }
        }
        Ok(Self(map))
    }

    /// Parses a URI's query string (none is an empty set).
    pub(crate) fn query(uri: &axum::http::Uri) -> Result<Self> {
        Self::parse(uri.query().unwrap_or_default().as_bytes())
    }

    /// An optional parameter; an empty value counts as absent.
    pub(crate) fn optional(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A required parameter.
    pub(crate) fn required(&self, name: &str) -> Result<&str> {
        self.optional(name)
            .ok_or_else(|| ServerError::InvalidRequest(format!("parameter {name} is missing")))
    }

    /// A required parameter that must be one of our identifiers ([`is_valid_id`]).
    pub(crate) fn required_id(&self, name: &str) -> Result<&str> {
        let value = self.required(name)?;
        if !is_valid_id(value) {
            return Err(ServerError::InvalidRequest(format!(
                "parameter {name} is not an identifier"
            )));
        }
        Ok(value)
    }

    /// Every parameter, in no particular order (the fuzz targets check what the parse kept).
    #[cfg(feature = "fuzzing")]
    pub(crate) fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether the parameter is present at all.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

/// An identifier from the path (`/v1/requests/{id}`, `/sim/bank/{bank}/...`): 1 to
/// [`MAX_ID_CHARS`](sleutel_protocol::limits::MAX_ID_CHARS) base64url characters
/// ([`is_valid_id`]). Anything else cannot name a resource of ours and is refused before any
/// other work.
pub(crate) struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ServerError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ServerError::InvalidRequest("malformed path parameter".into()))?;
        if !is_valid_id(&id) {
            return Err(ServerError::InvalidRequest("malformed identifier".into()));
        }
        Ok(PathId(id))
    }
}

pub(crate) use sleutel_protocol::api::is_valid_id;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused() {
        assert!(Params::parse(b"a=1&a=2").is_err());
        let p = Params::parse(b"a=1&b=&c=x%20y").unwrap();
        assert_eq!(p.required("a").unwrap(), "1");
        assert!(p.optional("b").is_none());
        assert!(p.has("b"));
        assert_eq!(p.optional("c"), Some("x y"));
        assert!(p.required("d").is_err());
    }

    #[test]
    fn required_ids_must_be_identifiers() {
        let long = "a".repeat(65);
        let p = Params::parse(format!("id=aZ09-_&dot=a.b&long={long}").as_bytes()).unwrap();
        assert_eq!(p.required_id("id").unwrap(), "aZ09-_");
        for name in ["dot", "long", "missing"] {
            assert!(
                matches!(p.required_id(name), Err(ServerError::InvalidRequest(_))),
                "{name}"
            );
        }
    }
}
