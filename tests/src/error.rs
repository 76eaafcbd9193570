use sleutel_core::CoreError;
use sleutel_protocol::api::ApiError;
use thiserror::Error;

/// What went wrong while driving a flow.
#[derive(Debug, Error)]
pub enum HarnessError {
    /// The phone core refused or failed.
    #[error("phone: {0}")]
    Core(#[from] CoreError),
    /// A simulator or OIDC endpoint answered with an error body.
    #[error("{}: {}{}", .0.error, .0.error_description, attempts(.0))]
    Api(ApiError),
    /// Transport failure or an unexpected answer.
    #[error("http: {0}")]
    Http(String),
    /// An ID token or other artefact did not verify.
    #[error("verification failed: {0}")]
    Verification(String),
    /// Waited too long for something (a push, an SMS, a token).
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// Something the simulators should already hold is not there (an SMS code, an activation
    /// link in an e-mail).
    #[error("missing: {0}")]
    Missing(String),
    /// The server could not start.
    #[error("server: {0}")]
    Server(String),
    /// The command line is incomplete.
    #[error("usage: {0}")]
    Usage(String),
    /// The server's database file, read by a test for what no HTTP call shows.
    #[error("database: {0}")]
    Database(String),
    /// Local files of the harness (state directory, keystore file).
    #[error("state: {0}")]
    State(String),
}

fn attempts(e: &ApiError) -> String {
    e.attempts_left
        .map(|n| format!(" ({n} attempts left)"))
        .unwrap_or_default()
}

impl HarnessError {
    /// The OAuth / API error code, when the failure was an error body.
    pub fn api_code(&self) -> Option<&str> {
        match self {
            HarnessError::Api(e) => Some(&e.error),
            _ => None,
        }
    }
}

impl From<reqwest::Error> for HarnessError {
    fn from(e: reqwest::Error) -> Self {
        HarnessError::Http(e.to_string())
    }
}
