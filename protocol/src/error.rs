use thiserror::Error;

/// Why a message was refused. Each variant names what is wrong so that the receiving side can map
/// it to its own typed error (HTTP error code on the server, typed exception on the phone).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// The input is not well formed (bad base64, bad JSON, missing or extra parts).
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// Which message or field was malformed.
        what: &'static str,
        /// What exactly is wrong, without any secret.
        detail: String,
    },
    /// The input is larger than the protocol allows.
    #[error("{what} is too large ({size} bytes, at most {max})")]
    TooLarge {
        /// Which message was too large.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The JWS uses an algorithm or type other than the one expected.
    #[error("unexpected JOSE header: {0}")]
    UnexpectedHeader(String),
    /// The JWS header marks parameters as critical (`crit`): it relies on an extension this
    /// implementation does not understand, so it must be refused (RFC 7515 §4.1.11).
    #[error("{0} relies on critical JOSE header extensions, which are not supported")]
    CriticalHeader(&'static str),
    /// The signature does not verify with the expected key, or is not in its low-S form.
    #[error("bad signature on {0}")]
    BadSignature(&'static str),
    /// The key is not a valid P-256 public key.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The message has expired.
    #[error("{0} has expired")]
    Expired(&'static str),
    /// The message is dated in the future beyond the allowed clock skew.
    #[error("{0} is not yet valid")]
    NotYetValid(&'static str),
    /// The message is addressed to someone else (audience, account, enrollment, method or URL).
    #[error("{what} does not match: {detail}")]
    Mismatch {
        /// Which binding failed.
        what: &'static str,
        /// What was expected versus found (no secrets).
        detail: String,
    },
    /// A field has a value the protocol does not allow.
    #[error("invalid {field}: {detail}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// Why it is refused.
        detail: String,
    },
}

impl ProtocolError {
    pub(crate) fn malformed(what: &'static str, detail: impl Into<String>) -> Self {
        Self::Malformed {
            what,
            detail: detail.into(),
        }
    }

    pub(crate) fn invalid(field: &'static str, detail: impl Into<String>) -> Self {
        Self::InvalidField {
            field,
            detail: detail.into(),
        }
    }

    pub(crate) fn mismatch(what: &'static str, detail: impl Into<String>) -> Self {
        Self::Mismatch {
            what,
            detail: detail.into(),
        }
    }
}
