//! The server's error types. [`ServerError`] is what a request can be answered with: its
//! mapping to an HTTP status and a JSON [`ApiError`] body is here. [`StartError`] is why the
//! server did not start; nothing is served then, and `sleutel-server` prints it and exits.
//!
//! Variants are named after what the caller can do about them. Descriptions never carry a
//! secret (codes, PINs, keys); internal faults are logged and answered with a generic text.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sleutel_protocol::api::{ApiError, codes};

/// Why the server did not start. Nothing is served; the text says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is unusable (policy, relying parties, listen address, public URL): fix
    /// what the text names.
    #[error("configuration: {0}")]
    Config(String),
    /// The listening socket could not be bound: the address is taken or not this machine's.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The database cannot be used: not a database, another program's database, corrupt,
    /// written by a newer server, unreachable, or holding a key that is no key. Point the server
    /// at another file or database, or repair or restore this one.
    #[error("database {path}: {detail}")]
    DatabaseUnusable {
        /// The file.
        path: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A push service's credentials file (the FCM service account's JSON key, the APNs `.p8`
    /// key) cannot be read or used: fix or replace the file. The text names the file and what
    /// is wrong, never anything of its contents.
    #[error("push credentials {path}: {detail}")]
    PushCredentials {
        /// The file.
        path: String,
        /// What is wrong with it.
        detail: String,
    },
    /// Preparing the database or the keys failed inside the server (a database operation, the
    /// OS random generator, a worker thread); the text and the log say what.
    #[error(transparent)]
    Fault(#[from] ServerError),
}

impl From<rusqlite::Error> for StartError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Fault(ServerError::Database(e.into()))
    }
}

impl From<crate::store::DbError> for StartError {
    fn from(e: crate::store::DbError) -> Self {
        Self::Fault(ServerError::Database(e))
    }
}

impl From<rusqlite::Error> for ServerError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Database(e.into())
    }
}

/// Everything a request can be refused or fail with, each with its HTTP status and error code.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    // --- Server faults (500) -----------------------------------------------------------------
    /// A database operation failed.
    #[error("database error: {0}")]
    Database(#[from] crate::store::DbError),
    /// The database kept refusing the work for conflicts with concurrent work on the same
    /// data (several instances on one PostgreSQL database); nothing was changed.
    #[error("busy with conflicting work; try again")]
    Busy,
    /// The server has as many connections open as its policy allows; a new one is refused
    /// before it is read.
    #[error("too many connections; try again")]
    TooManyConnections,
    /// Something else inside the server failed (randomness, a worker thread).
    #[error("internal error: {0}")]
    Internal(String),

    // --- Any endpoint -------------------------------------------------------------------------
    /// The request is malformed: bad JSON, form or query, a missing or invalid field.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The body is larger than the protocol allows.
    #[error("request body too large")]
    BodyTooLarge,
    /// The request, its body's upload included, took longer than the policy allows.
    #[error("request timeout: the request took too long to arrive or to answer")]
    RequestTimeout,
    /// No such path (or no such simulated resource).
    #[error("not found: {0}")]
    NotFound(String),
    /// The path exists but not with this HTTP method.
    #[error("method not allowed")]
    HttpMethodNotAllowed,

    // --- Phone API: proof and device ----------------------------------------------------------
    /// The DPoP-style proof is missing, malformed, stale or does not match the request.
    #[error("invalid proof: {0}")]
    InvalidProof(String),
    /// The proof's id was seen before.
    #[error("proof replayed")]
    ProofReplayed,
    /// The proof's key is not a registered device.
    #[error("unknown device")]
    UnknownDevice,
    /// The device was revoked (a newer activation replaced it).
    #[error("device revoked")]
    DeviceRevoked,
    /// The push token is malformed for its platform; the text says why, never the token.
    #[error("invalid push token: {0}")]
    InvalidPushToken(String),

    // --- Phone API: enrollment ----------------------------------------------------------------
    /// No such enrollment for this device.
    #[error("unknown enrollment")]
    UnknownEnrollment,
    /// The enrollment ran out of time; start again.
    #[error("enrollment expired")]
    EnrollmentExpired,
    /// The enrollment is not at the step this call belongs to.
    #[error("wrong step: {0}")]
    WrongStep(String),
    /// The identity token is invalid; the text says why.
    #[error("invalid identity token: {0}")]
    InvalidIdentityToken(String),
    /// The identity is valid but not admitted.
    #[error("identity refused: {0}")]
    IdentityRefused(String),
    /// Wrong SMS code.
    #[error("wrong SMS code ({attempts_left} attempts left)")]
    WrongSmsCode {
        /// Attempts before the enrollment ends.
        attempts_left: u32,
    },
    /// The SMS code expired; ask for a new one.
    #[error("SMS code expired")]
    SmsCodeExpired,
    /// Too many wrong SMS codes: the enrollment is over.
    #[error("too many attempts")]
    TooManyAttempts,
    /// A new SMS code was asked for too soon (or too often).
    #[error("new SMS code asked too soon: {detail}")]
    ResendTooSoon {
        /// Seconds to wait.
        retry_after: u64,
        /// Why.
        detail: String,
    },

    /// Too many enrollments started (by this key, from this address, or on the whole server),
    /// SMS codes sent to this number, or wrong SMS codes for this number today: try again after
    /// `retry_after` seconds.
    #[error("rate limited: {detail}")]
    RateLimited {
        /// Seconds to wait.
        retry_after: u64,
        /// What was counted.
        detail: String,
    },

    // --- Phone API: action requests -----------------------------------------------------------
    /// No such request for this account.
    #[error("unknown request")]
    UnknownRequest,
    /// The request expired.
    #[error("request expired")]
    RequestExpired,
    /// The request was already answered (or closed).
    #[error("request already answered")]
    RequestAlreadyAnswered,
    /// The response is malformed, its device signature or its binding is wrong.
    #[error("invalid response: {0}")]
    InvalidResponse(String),
    /// The request does not accept this user-verification method.
    #[error("method not allowed: {0}")]
    UvMethodNotAllowed(String),
    /// Wrong code.
    #[error("wrong code ({attempts_left} attempts left)")]
    WrongPin {
        /// Attempts before the account is blocked.
        attempts_left: u32,
    },
    /// The account is blocked after too many wrong codes.
    #[error("account blocked")]
    AccountBlocked,
    /// A code change that arrived after the phone was told it did not take effect: refused
    /// without checking anything, so the device keeps its PIN key.
    #[error("this code change was declared void; the code is unchanged")]
    CodeChangeVoid,
    /// The number picked is not the one the relying party shows: the request was declined and
    /// recorded as suspicious.
    #[error("wrong number: the request is declined")]
    WrongNumber,

    // --- Phone API: sign-in links ------------------------------------------------------------
    /// The sign-in link was not made by this server's sign-in page (malformed, a MAC that does
    /// not verify, a step from the future).
    #[error("invalid sign-in link: {0}")]
    SignInLinkInvalid(String),
    /// The sign-in link's QR step is over, or its browser sign-in has ended.
    #[error("the sign-in link has expired; scan the code the page shows now")]
    SignInLinkExpired,
    /// The browser sign-in was already bound by an earlier link or the number form.
    #[error("the sign-in link was already used")]
    SignInLinkUsed,

    // --- Bank simulator -----------------------------------------------------------------------
    /// Credit cards cannot prove an identity.
    #[error("credit cards are refused")]
    CreditCardRefused,
    /// Wrong card PIN.
    #[error("wrong card PIN ({attempts_left} attempts left)")]
    WrongCardPin {
        /// Attempts before the card is blocked.
        attempts_left: u32,
    },
    /// The card number is unknown at this bank.
    #[error("unknown card")]
    UnknownCard,
    /// The card is blocked after too many wrong PINs.
    #[error("card blocked")]
    CardBlocked,

    // --- eID website, counter and identity codes -------------------------------------------------
    /// The eID card has expired.
    #[error("the eID card has expired")]
    EidCardExpired,
    /// The eID card was revoked.
    #[error("the eID card was revoked")]
    EidCardRevoked,
    /// Wrong identification or activation code.
    #[error("wrong code ({attempts_left} attempts left)")]
    WrongIdentityCode {
        /// Tries before the code (or the enrollment) stops accepting codes.
        attempts_left: u32,
    },
    /// The identification or activation code has expired.
    #[error("the code has expired; ask for a new one")]
    IdentityCodeExpired,
    /// The identification or activation code was already used.
    #[error("the code was already used; each code works once")]
    IdentityCodeUsed,
    /// Too many wrong tries of the identification code.
    #[error("too many wrong tries; this code no longer works, ask for a new one")]
    IdentityCodeBlocked,

    // --- OpenID Connect CIBA -----------------------------------------------------------------
    /// Client authentication failed.
    #[error("invalid client")]
    InvalidClient,
    /// Client authentication failed for the reason given (a check of a client assertion, two
    /// methods in one request): never the assertion itself, which could be replayed.
    #[error("invalid client: {0}")]
    InvalidClientAuthentication(&'static str),
    /// The scope is not acceptable.
    #[error("invalid scope: {0}")]
    InvalidScope(String),
    /// The binding message cannot be shown.
    #[error("invalid binding message: {0}")]
    InvalidBindingMessage(String),
    /// The person declined or the request was closed (token endpoint: 400, RFC 6749 §5.2).
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// The backchannel authentication endpoint refuses to start a login (blocked account, too
    /// many open requests): `access_denied` with 403, as CIBA §13 says for this endpoint.
    #[error("access denied: {0}")]
    BackchannelDenied(String),
    /// A relying party asks for a claim it is not registered for.
    #[error("invalid scope: {0}")]
    ClaimNotAllowed(String),
    /// A relying party made more backchannel calls in the last minute than policy allows.
    #[error("slow down: too many backchannel authentication requests")]
    BackchannelRateLimited {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// Too many failed client authentications for this client id or from this address in the
    /// last minute: every authentication is refused until the window has passed.
    #[error("slow down: too many failed client authentications")]
    ClientAuthRateLimited {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// The grant type is not CIBA.
    #[error("unsupported grant type")]
    UnsupportedGrantType,
    /// The `auth_req_id` is unknown, another client's, or already exchanged.
    #[error("invalid grant: {0}")]
    InvalidGrant(String),
    /// The person has not answered yet.
    #[error("authorization pending")]
    AuthorizationPending,
    /// Polled faster than the interval.
    #[error("slow down")]
    SlowDown,
    /// The request expired before an answer.
    #[error("expired token")]
    ExpiredToken,
}

impl ServerError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        use ServerError::*;
        match self {
            Database(_) | Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Busy | TooManyConnections => StatusCode::SERVICE_UNAVAILABLE,
            BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            NotFound(_) | UnknownEnrollment | UnknownRequest => StatusCode::NOT_FOUND,
            HttpMethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            InvalidProof(_)
            | ProofReplayed
            | UnknownDevice
            | DeviceRevoked
            | InvalidClient
            | InvalidClientAuthentication(_) => StatusCode::UNAUTHORIZED,
            EnrollmentExpired | RequestExpired | IdentityCodeExpired | IdentityCodeUsed
            | SignInLinkExpired => StatusCode::GONE,
            WrongStep(_) | RequestAlreadyAnswered | SignInLinkUsed | CodeChangeVoid => {
                StatusCode::CONFLICT
            }
            IdentityRefused(_) | AccountBlocked | CardBlocked | BackchannelDenied(_)
            | EidCardExpired | EidCardRevoked | IdentityCodeBlocked => StatusCode::FORBIDDEN,
            ResendTooSoon { .. }
            | RateLimited { .. }
            | BackchannelRateLimited { .. }
            | ClientAuthRateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            InvalidRequest(_)
            | InvalidPushToken(_)
            | SignInLinkInvalid(_)
            | InvalidIdentityToken(_)
            | WrongSmsCode { .. }
            | SmsCodeExpired
            | TooManyAttempts
            | InvalidResponse(_)
            | UvMethodNotAllowed(_)
            | WrongPin { .. }
            | WrongNumber
            | ClaimNotAllowed(_)
            | CreditCardRefused
            | WrongCardPin { .. }
            | UnknownCard
            | WrongIdentityCode { .. }
            | InvalidScope(_)
            | InvalidBindingMessage(_)
            | AccessDenied(_)
            | UnsupportedGrantType
            | InvalidGrant(_)
            | AuthorizationPending
            | SlowDown
            | ExpiredToken => StatusCode::BAD_REQUEST,
        }
    }

    /// The machine-readable code of this error (the `error` member of the body).
    pub fn code(&self) -> &'static str {
        use ServerError::*;
        match self {
            Database(_) | Internal(_) => codes::INTERNAL_ERROR,
            Busy | TooManyConnections => codes::TEMPORARILY_UNAVAILABLE,
            RequestTimeout => codes::REQUEST_TIMEOUT,
            InvalidRequest(_) | HttpMethodNotAllowed => codes::INVALID_REQUEST,
            BodyTooLarge => codes::BODY_TOO_LARGE,
            NotFound(_) => codes::NOT_FOUND,
            InvalidProof(_) => codes::INVALID_PROOF,
            ProofReplayed => codes::PROOF_REPLAYED,
            UnknownDevice => codes::UNKNOWN_DEVICE,
            DeviceRevoked => codes::DEVICE_REVOKED,
            InvalidPushToken(_) => codes::INVALID_PUSH_TOKEN,
            SignInLinkInvalid(_) => codes::SIGN_IN_LINK_INVALID,
            SignInLinkExpired => codes::SIGN_IN_LINK_EXPIRED,
            SignInLinkUsed => codes::SIGN_IN_LINK_USED,
            UnknownEnrollment => codes::UNKNOWN_ENROLLMENT,
            EnrollmentExpired => codes::ENROLLMENT_EXPIRED,
            WrongStep(_) => codes::WRONG_STEP,
            InvalidIdentityToken(_) => codes::INVALID_IDENTITY_TOKEN,
            IdentityRefused(_) => codes::IDENTITY_REFUSED,
            WrongSmsCode { .. } => codes::WRONG_SMS_CODE,
            SmsCodeExpired => codes::SMS_CODE_EXPIRED,
            TooManyAttempts => codes::TOO_MANY_ATTEMPTS,
            ResendTooSoon { .. } => codes::RESEND_TOO_SOON,
            RateLimited { .. } => codes::RATE_LIMITED,
            UnknownRequest => codes::UNKNOWN_REQUEST,
            RequestExpired => codes::REQUEST_EXPIRED,
            RequestAlreadyAnswered => codes::REQUEST_ALREADY_ANSWERED,
            InvalidResponse(_) => codes::INVALID_RESPONSE,
            UvMethodNotAllowed(_) => codes::METHOD_NOT_ALLOWED,
            WrongPin { .. } => codes::WRONG_PIN,
            AccountBlocked => codes::ACCOUNT_BLOCKED,
            CodeChangeVoid => codes::CODE_CHANGE_VOID,
            WrongNumber => codes::WRONG_NUMBER,
            ClaimNotAllowed(_) => codes::INVALID_SCOPE,
            BackchannelRateLimited { .. } | ClientAuthRateLimited { .. } => codes::SLOW_DOWN,
            CreditCardRefused => codes::CREDIT_CARD_REFUSED,
            WrongCardPin { .. } => codes::WRONG_CARD_PIN,
            UnknownCard => codes::UNKNOWN_CARD,
            CardBlocked => codes::CARD_BLOCKED,
            EidCardExpired => codes::EID_CARD_EXPIRED,
            EidCardRevoked => codes::EID_CARD_REVOKED,
            WrongIdentityCode { .. } => codes::WRONG_IDENTITY_CODE,
            IdentityCodeExpired => codes::IDENTITY_CODE_EXPIRED,
            IdentityCodeUsed => codes::IDENTITY_CODE_USED,
            IdentityCodeBlocked => codes::IDENTITY_CODE_BLOCKED,
            InvalidClient | InvalidClientAuthentication(_) => codes::INVALID_CLIENT,
            InvalidScope(_) => codes::INVALID_SCOPE,
            InvalidBindingMessage(_) => codes::INVALID_BINDING_MESSAGE,
            AccessDenied(_) | BackchannelDenied(_) => codes::ACCESS_DENIED,
            UnsupportedGrantType => codes::UNSUPPORTED_GRANT_TYPE,
            InvalidGrant(_) => codes::INVALID_GRANT,
            AuthorizationPending => codes::AUTHORIZATION_PENDING,
            SlowDown => codes::SLOW_DOWN,
            ExpiredToken => codes::EXPIRED_TOKEN,
        }
    }

    /// The JSON body for this error.
    pub fn to_api_error(&self) -> ApiError {
        let internal = self.status() == StatusCode::INTERNAL_SERVER_ERROR;
        ApiError {
            error: self.code().to_owned(),
            // Internal details (SQL, paths) stay in the log, not in the answer.
            error_description: if internal {
                "internal server error; nothing was changed".to_owned()
            } else {
                self.to_string()
            },
            attempts_left: match self {
                Self::WrongSmsCode { attempts_left }
                | Self::WrongPin { attempts_left }
                | Self::WrongCardPin { attempts_left }
                | Self::WrongIdentityCode { attempts_left } => Some(*attempts_left),
                Self::AccountBlocked
                | Self::TooManyAttempts
                | Self::CardBlocked
                | Self::IdentityCodeBlocked => Some(0),
                _ => None,
            },
            retry_after: match self {
                Self::ResendTooSoon { retry_after, .. }
                | Self::RateLimited { retry_after, .. }
                | Self::BackchannelRateLimited { retry_after }
                | Self::ClientAuthRateLimited { retry_after } => Some(*retry_after),
                Self::Busy | Self::TooManyConnections => Some(1),
                _ => None,
            },
        }
    }
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::debug!(
                code = self.code(),
                status = status.as_u16(),
                "request refused"
            );
        }
        let mut response = (status, Json(self.to_api_error())).into_response();
        let headers = response.headers_mut();
        // Error answers are about one request only; no cache may keep them (RFC 6749 §5.2).
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match &self {
            // RFC 6749 §5.2: a 401 for client authentication names the scheme.
            Self::InvalidClient | Self::InvalidClientAuthentication(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"sleutel\""),
                );
            }
            Self::ResendTooSoon { retry_after, .. }
            | Self::RateLimited { retry_after, .. }
            | Self::BackchannelRateLimited { retry_after }
            | Self::ClientAuthRateLimited { retry_after } => {
                if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
                    headers.insert(header::RETRY_AFTER, value);
                }
            }
            _ => {}
        }
        response
    }
}

/// Result type of this crate.
pub(crate) type Result<T, E = ServerError> = std::result::Result<T, E>;
