//! What the operator chooses: where to listen, where the database lives, which relying parties
//! may ask for logins, where push notifications go (FCM and APNs, or the simulator's outbox),
//! and the policy values (lifetimes, attempt limits, age, devices, push retries).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;
use sleutel_protocol::api::oidc::{AUTH_METHOD_CLIENT_SECRET_BASIC, AUTH_METHOD_PRIVATE_KEY_JWT};
use sleutel_protocol::jose::{ES256, Jwks};
use sleutel_protocol::limits::{
    MAX_ACTION_LIFETIME_SECS, MAX_ACTION_TEXT_CHARS, MAX_ID_CHARS, MAX_RP_NAME_CHARS,
};
use sleutel_protocol::{claims, display};

use crate::error::StartError;

/// Address the binary listens on when none is given.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8440";

/// Database file the binary uses when none is given.
pub const DEFAULT_DB_PATH: &str = "sleutel-server.db";

/// Default of [`Policy::request_retention_secs`]: five years, counted as 5 × 366 days so that
/// leap days never cut it short. The EU keeps payment records that long: PSD2 (Directive (EU)
/// 2015/2366) art. 21 asks payment institutions to keep records for at least five years, and
/// the anti-money-laundering directive ((EU) 2015/849, art. 40) five years after the
/// transaction. The dispute itself comes sooner: a payer may contest an unauthorised payment
/// up to 13 months after it (PSD2 art. 71), and the provider must then prove it was
/// authenticated (art. 72), which is what the kept request and signed answer do. Belgium
/// transposes both (Code of Economic Law, book VII; the anti-money-laundering law of
/// 18 September 2017), and institutions under national rules that ask for longer set longer.
pub const DEFAULT_REQUEST_RETENTION_SECS: i64 = 5 * 366 * 24 * 3600;

/// Shortest [`Policy::request_retention_secs`]: one day. Kept shorter, the records would be no
/// evidence at all, and the purge would race the windows that read recent requests (a request's
/// life of at most 15 minutes plus the token pickup, the supersession bound).
pub const MIN_REQUEST_RETENTION_SECS: i64 = 24 * 3600;

/// Everything [`crate::start`] needs.
#[derive(Clone)]
pub struct ServerConfig {
    /// Address to bind; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The SQLite database file (created with mode 0600 when missing); not used when
    /// [`ServerConfig::database_url`] is set.
    pub db_path: PathBuf,
    /// A PostgreSQL database (`postgres://user@host:port/db`) to use instead of the SQLite
    /// file: several instances may serve from one.
    pub database_url: Option<String>,
    /// The file holding the key (64 hex digits) that seals the relying parties' notification
    /// tokens in the database. Instances sharing a database need the same one; one SQLite
    /// server may go without (a key is drawn at each start).
    pub notification_key_file: Option<PathBuf>,
    /// The base URL phones and relying parties use, which is also the issuer. Defaults to
    /// `http://<bound address>`.
    pub public_url: Option<String>,
    /// The relying parties allowed to start logins.
    pub relying_parties: Vec<RelyingPartyConfig>,
    /// Lifetimes, attempt limits and the other policy values.
    pub policy: Policy,
    /// The real push services, if any; without them every push goes to the simulator's outbox.
    pub push: PushConfig,
    /// The apps that may open the sign-in links (`/app/sign-in`) as universal links / app
    /// links; without them the two `/.well-known/` files answer 404.
    pub app_links: AppLinksConfig,
}

impl std::fmt::Debug for ServerConfig {
    /// Everything but the database URL, which may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("db_path", &self.db_path)
            .field("database_url", &self.database_url.as_ref().map(|_| "<set>"))
            .field("notification_key_file", &self.notification_key_file)
            .field("public_url", &self.public_url)
            .field("relying_parties", &self.relying_parties)
            .field("policy", &self.policy)
            .field("push", &self.push)
            .field("app_links", &self.app_links)
            .finish()
    }
}

impl ServerConfig {
    /// The database this configuration names: PostgreSQL when a URL is set, else the file.
    pub fn database(&self) -> crate::store::Database {
        match &self.database_url {
            Some(url) => crate::store::Database::Postgres(url.clone()),
            None => crate::store::Database::Sqlite(self.db_path.clone()),
        }
    }
}

/// The apps whose universal links (iOS) and app links (Android) are the server's sign-in links,
/// published in `/.well-known/apple-app-site-association` and `/.well-known/assetlinks.json`.
/// The platforms fetch these files to decide whether a tap on the link opens the app.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppLinksConfig {
    /// iOS app ids, each the Apple team id and the bundle id: `ABCDE12345.be.sleutel.app`.
    pub apple_app_ids: Vec<String>,
    /// The Android app's package name: `be.sleutel.app`.
    pub android_package: Option<String>,
    /// SHA-256 fingerprints of the Android app's signing certificates, as `keytool` prints
    /// them: 32 hexadecimal bytes separated by colons.
    pub android_cert_fingerprints: Vec<String>,
}

/// Bytes of a SHA-256 certificate fingerprint.
const CERT_FINGERPRINT_BYTES: usize = 32;

/// Characters of an Apple team id.
const APPLE_TEAM_ID_CHARS: usize = 10;

impl AppLinksConfig {
    /// Refuses ids and fingerprints of the wrong shape, and an Android package without a
    /// certificate fingerprint (the platform would trust no app) or the other way round: a
    /// mistake here would silently keep the link from opening the app.
    pub fn validate(&self) -> Result<(), StartError> {
        let bad = |what: String| Err(StartError::Config(what));
        for id in &self.apple_app_ids {
            let well_formed = id.split_once('.').is_some_and(|(team, bundle)| {
                team.len() == APPLE_TEAM_ID_CHARS
                    && team.bytes().all(|b| b.is_ascii_alphanumeric())
                    && is_dotted_name(bundle)
            });
            if !well_formed {
                return bad(format!(
                    "iOS app id {id:?} is not TEAMID.bundle.id (a 10-character team id)"
                ));
            }
        }
        if let Some(package) = &self.android_package
            && !is_dotted_name(package)
        {
            return bad(format!("Android package {package:?} is not a package name"));
        }
        for fingerprint in &self.android_cert_fingerprints {
            let pairs: Vec<&str> = fingerprint.split(':').collect();
            let well_formed = pairs.len() == CERT_FINGERPRINT_BYTES
                && pairs
                    .iter()
                    .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
            if !well_formed {
                return bad(format!(
                    "certificate fingerprint {fingerprint:?} is not 32 hexadecimal bytes \
                     separated by colons"
                ));
            }
        }
        let has_package = self.android_package.is_some();
        let has_fingerprints = !self.android_cert_fingerprints.is_empty();
        if has_package != has_fingerprints {
            return bad(
                "an Android package needs its certificate fingerprints, and fingerprints need \
                 the package"
                    .into(),
            );
        }
        Ok(())
    }
}

/// Whether `name` is a reverse-domain name: at least two dot-separated parts of letters, digits,
/// `_` and `-`.
fn is_dotted_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() >= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

/// Where push notifications go. A device's token goes to the service of its platform; a
/// platform without a configured service, and a device without a token, get the simulator's
/// outbox (`GET /sim/outbox/push`), which is also all there is when nothing is configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushConfig {
    /// Firebase Cloud Messaging (Android), if configured.
    pub fcm: Option<FcmConfig>,
    /// The Apple Push Notification service (iOS), if configured.
    pub apns: Option<ApnsConfig>,
}

/// Firebase Cloud Messaging through its HTTP v1 API, authorised by a service account. The
/// server reads the account's JSON key file at start; a file it cannot use keeps it from
/// starting, with the file named and nothing of its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FcmConfig {
    /// The service account's JSON key file (as the Firebase console downloads it:
    /// `client_email`, `private_key`, `token_uri`, `project_id`).
    pub service_account_file: PathBuf,
    /// The Firebase project to send through; the file's `project_id` when not given.
    pub project_id: Option<String>,
    /// The FCM API's base URL, [`FcmConfig::DEFAULT_API_BASE`] when not given (a test bench
    /// points it at a stand-in): `https`, or `http` on loopback.
    pub api_base: Option<String>,
    /// Where the OAuth 2.0 access token is obtained; the file's `token_uri` when not given.
    pub token_uri: Option<String>,
}

impl FcmConfig {
    /// The FCM HTTP v1 API.
    pub const DEFAULT_API_BASE: &str = "https://fcm.googleapis.com";

    /// FCM through the service account whose key file is `service_account_file`, with the
    /// project, API and token endpoint the file names.
    pub fn new(service_account_file: impl Into<PathBuf>) -> Self {
        Self {
            service_account_file: service_account_file.into(),
            project_id: None,
            api_base: None,
            token_uri: None,
        }
    }
}

/// Which APNs environment a provider talks to: the app's build decides (a development build
/// gets sandbox tokens, an App Store or TestFlight build production ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApnsEnvironment {
    /// `api.push.apple.com`.
    #[default]
    Production,
    /// `api.sandbox.push.apple.com`.
    Sandbox,
}

impl ApnsEnvironment {
    /// The environment's base URL.
    pub fn base_url(self) -> &'static str {
        match self {
            ApnsEnvironment::Production => "https://api.push.apple.com",
            ApnsEnvironment::Sandbox => "https://api.sandbox.push.apple.com",
        }
    }

    /// `production` or `sandbox`, as the command line names them.
    pub fn parse(name: &str) -> Result<Self, StartError> {
        match name {
            "production" => Ok(ApnsEnvironment::Production),
            "sandbox" => Ok(ApnsEnvironment::Sandbox),
            other => Err(StartError::Config(format!(
                "APNs environment {other:?}: give production or sandbox"
            ))),
        }
    }
}

/// The Apple Push Notification service over HTTP/2 with token-based authentication: a signing
/// key (`.p8`) of the Apple developer account. The key file is read at start; a file it cannot
/// use keeps the server from starting, with the file named and nothing of its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApnsConfig {
    /// The `.p8` file of the APNs signing key (a PKCS#8 P-256 key in PEM).
    pub key_file: PathBuf,
    /// The key's id (10 characters, shown with the key in the developer account).
    pub key_id: String,
    /// The developer team's id (10 characters).
    pub team_id: String,
    /// The app's bundle id, the `apns-topic` of every push.
    pub topic: String,
    /// Production or sandbox.
    pub environment: ApnsEnvironment,
    /// A base URL in place of the environment's (a test bench's stand-in): `https`, or `http`
    /// on loopback, where the server speaks HTTP/2 without TLS.
    pub endpoint: Option<String>,
}

impl ApnsConfig {
    /// The base URL pushes go to: the override, or the environment's.
    pub fn base_url(&self) -> &str {
        self.endpoint
            .as_deref()
            .unwrap_or(self.environment.base_url())
    }
}

/// A push service's URL must be `https`, or plain `http` to a loopback address, where a test
/// bench's stand-in runs: the OAuth assertion, the access token and the device tokens travel on
/// it.
pub(crate) fn check_service_url(what: &str, url: &str) -> Result<String, StartError> {
    check_notification_endpoint(url)
        .map_err(|_| StartError::Config(format!("{what} must be https (or http on loopback)")))?;
    Ok(url.trim_end_matches('/').to_owned())
}

/// A relying party (OpenID Connect client) registered with the server.
#[derive(Clone, PartialEq, Eq)]
pub struct RelyingPartyConfig {
    /// The OAuth client id.
    pub client_id: String,
    /// How the client authenticates at the token and backchannel endpoints: one method, as
    /// registered.
    pub authentication: ClientAuthentication,
    /// The name the person sees on the phone.
    pub name: String,
    /// The identity claims this relying party may ask for (`protocol::claims`); a request for
    /// any other is refused with `invalid_scope`.
    pub allowed_claims: Vec<String>,
    /// How the relying party learns that a request has an outcome.
    pub delivery_mode: DeliveryMode,
    /// Where pings go (CIBA §10.2), for [`DeliveryMode::Ping`]: `https`, or plain `http` to a
    /// loopback address on a test bench.
    pub notification_endpoint: Option<String>,
    /// Where the authorization code flow may send the browser back (OIDC Core §3.1.2.1): each
    /// compared exactly, character for character, with the `redirect_uri` of a request; `https`,
    /// or plain `http` to a loopback address. None: the relying party uses CIBA only.
    pub redirect_uris: Vec<String>,
}

/// How a relying party proves who it is at the token endpoint and the backchannel
/// authentication endpoint. One method per client: a secret client cannot authenticate with an
/// assertion, nor a key client with a secret, so that a leaked secret of a client that moved to
/// keys opens nothing.
#[derive(Clone, PartialEq, Eq)]
pub enum ClientAuthentication {
    /// `client_secret_basic` (RFC 6749 §2.3.1): HTTP Basic with this secret.
    SecretBasic(String),
    /// `private_key_jwt` (OIDC Core §9, RFC 7523): a JWT signed with ES256 by one of these
    /// public keys (EC P-256, each with its own `kid`), checked by
    /// [`RelyingPartyConfig::validate`].
    PrivateKeyJwt(Jwks),
}

impl ClientAuthentication {
    /// The method's name in registrations and discovery.
    pub fn method(&self) -> &'static str {
        match self {
            Self::SecretBasic(_) => AUTH_METHOD_CLIENT_SECRET_BASIC,
            Self::PrivateKeyJwt(_) => AUTH_METHOD_PRIVATE_KEY_JWT,
        }
    }
}

// The secret never appears in Debug output (and so never in logs); key ids are public.
impl fmt::Debug for ClientAuthentication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SecretBasic(_) => f.write_str("SecretBasic(<redacted>)"),
            Self::PrivateKeyJwt(jwks) => f
                .debug_tuple("PrivateKeyJwt")
                .field(&jwks.keys.iter().map(|k| &k.kid).collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// The client authentication methods of a registration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
enum TokenEndpointAuthMethod {
    #[default]
    ClientSecretBasic,
    PrivateKeyJwt,
}

/// The members of a JWK that hold private key material (RFC 7518 §6.2.2, §6.3.2, §6.4.1): a
/// registration holds public keys only, and a private key found in a file has leaked already.
const PRIVATE_JWK_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The CIBA token delivery modes this server offers (push is not: it would hand the ID token to
/// an endpoint instead of to an authenticated token request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryMode {
    /// The relying party polls the token endpoint.
    #[default]
    Poll,
    /// The server pings the relying party's notification endpoint, which then fetches the token.
    Ping,
}

impl DeliveryMode {
    /// The mode's name in discovery and in registrations.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryMode::Poll => "poll",
            DeliveryMode::Ping => "ping",
        }
    }
}

/// One relying party in a registration file (`--rp-file`): a JSON array of these.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Registration {
    client_id: String,
    /// Left out: taken from `SLEUTEL_RP_SECRET_<ID>`.
    #[serde(default)]
    secret: Option<String>,
    name: String,
    #[serde(default)]
    allowed_claims: Option<Vec<String>>,
    #[serde(default)]
    delivery_mode: DeliveryMode,
    #[serde(default)]
    notification_endpoint: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    /// `client_secret_basic` (the default) or `private_key_jwt`.
    #[serde(default)]
    token_endpoint_auth_method: TokenEndpointAuthMethod,
    /// For `private_key_jwt`: the client's public keys as a JWK Set. Read as JSON first, so
    /// that private key material in it is found and refused (the typed key would drop it).
    #[serde(default)]
    jwks: Option<serde_json::Value>,
}

// The secret never appears in Debug output (and so never in logs).
impl fmt::Debug for RelyingPartyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelyingPartyConfig")
            .field("client_id", &self.client_id)
            .field("authentication", &self.authentication)
            .field("name", &self.name)
            .field("allowed_claims", &self.allowed_claims)
            .field("delivery_mode", &self.delivery_mode)
            .field("notification_endpoint", &self.notification_endpoint)
            .field("redirect_uris", &self.redirect_uris)
            .finish()
    }
}

impl RelyingPartyConfig {
    /// Client id of the demo relying party.
    pub const DEMO_CLIENT_ID: &str = "online-overheid";
    /// Client secret of the demo relying party (a demo: never use it outside a test bench).
    pub const DEMO_SECRET: &str = "demo-secret";
    /// Display name of the demo relying party.
    pub const DEMO_NAME: &str = "Online overheid";
    /// The sentence the phone shows for a login at the demo relying party.
    pub const DEMO_LOGIN_TEXT: &str = "Ik log in op de online overheid";
    /// Where the demo relying party gets the browser back: a loopback address, since the demo
    /// site runs on the same machine as the browser.
    pub const DEMO_REDIRECT_URI: &str = "http://127.0.0.1:8081/callback";

    /// The claims a relying party registered without a list may ask for: the name (scope
    /// `profile`), which is all a relying party could ask for before claims were registered.
    pub const DEFAULT_ALLOWED_CLAIMS: [&str; 3] =
        [claims::NAME, claims::GIVEN_NAME, claims::FAMILY_NAME];

    /// A poll-mode relying party allowed [`RelyingPartyConfig::DEFAULT_ALLOWED_CLAIMS`].
    pub fn new(client_id: &str, secret: &str, name: &str) -> Self {
        Self {
            client_id: client_id.into(),
            authentication: ClientAuthentication::SecretBasic(secret.into()),
            name: name.into(),
            allowed_claims: Self::DEFAULT_ALLOWED_CLAIMS
                .iter()
                .map(|c| (*c).to_owned())
                .collect(),
            delivery_mode: DeliveryMode::Poll,
            notification_endpoint: None,
            redirect_uris: Vec::new(),
        }
    }

    /// The same relying party authenticating with `private_key_jwt` and the public keys `jwks`
    /// instead of a secret.
    pub fn with_private_key_jwt(mut self, jwks: Jwks) -> Self {
        self.authentication = ClientAuthentication::PrivateKeyJwt(jwks);
        self
    }

    /// The same relying party with `uris` as its registered redirect URIs.
    pub fn with_redirect_uris(mut self, uris: &[&str]) -> Self {
        self.redirect_uris = uris.iter().map(|u| (*u).to_owned()).collect();
        self
    }

    /// The same relying party allowed exactly `allowed` claims.
    pub fn with_claims(mut self, allowed: &[&str]) -> Self {
        self.allowed_claims = allowed.iter().map(|c| (*c).to_owned()).collect();
        self
    }

    /// The same relying party in ping mode, pinged at `endpoint`.
    pub fn with_ping(mut self, endpoint: &str) -> Self {
        self.delivery_mode = DeliveryMode::Ping;
        self.notification_endpoint = Some(endpoint.to_owned());
        self
    }

    /// The demo relying party "Online overheid", used when no relying party is configured. It
    /// may ask for every claim, so that the demo can show each kind of request.
    pub fn demo() -> Self {
        Self::new(Self::DEMO_CLIENT_ID, Self::DEMO_SECRET, Self::DEMO_NAME)
            .with_claims(&claims::ALL)
            .with_redirect_uris(&[Self::DEMO_REDIRECT_URI])
    }

    /// Reads a registration file: a JSON array of objects with `client_id`, `name`, `secret`
    /// (or the secret in `SLEUTEL_RP_SECRET_<ID>`), `allowed_claims` (default: the name),
    /// `delivery_mode` (`poll` or `ping`), `notification_endpoint` (for ping),
    /// `redirect_uris` (for the authorization code flow), and `token_endpoint_auth_method`:
    /// `client_secret_basic` (the default) or `private_key_jwt` with the client's public keys in
    /// `jwks` (a JWK Set of EC P-256 keys, each with a `kid`) and no secret.
    pub fn parse_file(json: &str) -> Result<Vec<Self>, StartError> {
        Self::parse_file_with(json, |name| std::env::var(name).ok())
    }

    /// As [`RelyingPartyConfig::parse_file`], reading variables with `variable`.
    pub fn parse_file_with(
        json: &str,
        variable: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<Self>, StartError> {
        let registrations: Vec<Registration> = serde_json::from_str(json)
            .map_err(|e| StartError::Config(format!("relying-party file: {e}")))?;
        registrations
            .into_iter()
            .map(|r| {
                Self::check_client_id(&r.client_id)?;
                let variable_name = Self::secret_variable(&r.client_id);
                let from_environment = variable(&variable_name).filter(|s| !s.is_empty());
                let refuse = |why: String| {
                    Err(StartError::Config(format!(
                        "relying party {}: {why}",
                        r.client_id
                    )))
                };
                let authentication = match (r.token_endpoint_auth_method, r.jwks) {
                    (TokenEndpointAuthMethod::PrivateKeyJwt, _)
                        if r.secret.is_some() || from_environment.is_some() =>
                    {
                        return refuse(format!(
                            "a private_key_jwt client has no secret; remove \"secret\" (and \
                             {variable_name})"
                        ));
                    }
                    (TokenEndpointAuthMethod::PrivateKeyJwt, Some(jwks)) => {
                        match read_client_jwks(jwks) {
                            Ok(jwks) => ClientAuthentication::PrivateKeyJwt(jwks),
                            Err(why) => return refuse(why),
                        }
                    }
                    (TokenEndpointAuthMethod::PrivateKeyJwt, None) => {
                        return refuse(
                            "private_key_jwt needs the client's public keys in \"jwks\"".into(),
                        );
                    }
                    (TokenEndpointAuthMethod::ClientSecretBasic, Some(_)) => {
                        return refuse(
                            "\"jwks\" is only for token_endpoint_auth_method private_key_jwt"
                                .into(),
                        );
                    }
                    (TokenEndpointAuthMethod::ClientSecretBasic, None) => {
                        match (r.secret, from_environment) {
                            (Some(_), Some(_)) => {
                                return refuse(format!(
                                    "the secret is both in the file and in {variable_name}"
                                ));
                            }
                            (Some(secret), None) | (None, Some(secret)) => {
                                ClientAuthentication::SecretBasic(secret)
                            }
                            (None, None) => {
                                return refuse(format!(
                                    "no secret; give \"secret\" or set {variable_name}"
                                ));
                            }
                        }
                    }
                };
                let mut rp = Self::new(&r.client_id, "", &r.name);
                rp.authentication = authentication;
                if let Some(allowed) = r.allowed_claims {
                    rp.allowed_claims = allowed;
                }
                rp.delivery_mode = r.delivery_mode;
                rp.notification_endpoint = r.notification_endpoint;
                rp.redirect_uris = r.redirect_uris;
                rp.validate()?;
                Ok(rp)
            })
            .collect()
    }

    /// Prefix of the environment variable that may hold a relying party's secret; see
    /// [`RelyingPartyConfig::secret_variable`].
    pub const SECRET_VARIABLE_PREFIX: &str = "SLEUTEL_RP_SECRET_";

    /// The environment variable that holds the secret of `client_id` when the command line
    /// leaves it out: `SLEUTEL_RP_SECRET_` and the id in capitals, with `-` and `.` as `_`
    /// (shells accept only letters, digits and `_` in variable names).
    pub fn secret_variable(client_id: &str) -> String {
        let mut name = String::from(Self::SECRET_VARIABLE_PREFIX);
        name.extend(client_id.chars().map(|c| match c {
            '-' | '.' => '_',
            c => c.to_ascii_uppercase(),
        }));
        name
    }

    /// Parses a relying party as given on the command line, taking a secret left out of the
    /// command line from the process environment (see [`RelyingPartyConfig::parse_with`]).
    pub fn parse(spec: &str) -> Result<Self, StartError> {
        Self::parse_with(spec, |name| std::env::var(name).ok())
    }

    /// Parses `ID:SECRET:NAME`, or `ID:NAME` / `ID::NAME` with the secret in the variable
    /// [`RelyingPartyConfig::secret_variable`] (read with `variable`), so that the secret need
    /// not appear in the process list. The name may contain colons (use `ID::NAME` or
    /// `ID:SECRET:NAME` then); the id and secret may not. A secret given both ways is refused:
    /// with a name containing a colon, `ID:NAME` would otherwise be read as `ID:SECRET:NAME` and
    /// part of the name taken for the secret.
    pub fn parse_with(
        spec: &str,
        variable: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, StartError> {
        const FORMS: &str = "a relying party is given as ID:SECRET:NAME, or as ID:NAME with the \
                             secret in the environment";
        let mut parts = spec.splitn(3, ':');
        let (Some(client_id), Some(second)) = (parts.next(), parts.next()) else {
            return Err(StartError::Config(FORMS.into()));
        };
        Self::check_client_id(client_id)?;
        let variable_name = Self::secret_variable(client_id);
        let from_environment = variable(&variable_name).filter(|s| !s.is_empty());
        let (secret, name) = match (parts.next(), from_environment) {
            (Some(name), Some(secret)) if second.is_empty() => (secret, name),
            (None, Some(secret)) => (secret, second),
            (Some(_), Some(_)) => {
                return Err(StartError::Config(format!(
                    "relying party {client_id}: the secret is both on the command line and in \
                     {variable_name}; give ID:NAME (or ID::NAME for a name with colons) to use \
                     the variable"
                )));
            }
            (Some(name), None) if !second.is_empty() => (second.to_owned(), name),
            (_, None) => {
                return Err(StartError::Config(format!(
                    "relying party {client_id}: no secret; give ID:SECRET:NAME or set \
                     {variable_name}"
                )));
            }
        };
        let rp = Self::new(client_id, &secret, name);
        rp.validate()?;
        Ok(rp)
    }

    fn check_client_id(client_id: &str) -> Result<(), StartError> {
        let id_ok = !client_id.is_empty()
            && client_id.len() <= MAX_ID_CHARS
            && client_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !id_ok {
            return Err(StartError::Config(format!(
                "relying party id {client_id:?} must be 1-{MAX_ID_CHARS} letters, digits, '-', '_' or '.'"
            )));
        }
        Ok(())
    }

    /// Checks that the id is a short token, the secret is not empty and the name can be shown.
    pub fn validate(&self) -> Result<(), StartError> {
        Self::check_client_id(&self.client_id)?;
        match &self.authentication {
            ClientAuthentication::SecretBasic(secret) if secret.is_empty() => {
                return Err(StartError::Config(format!(
                    "relying party {} has an empty secret",
                    self.client_id
                )));
            }
            ClientAuthentication::SecretBasic(_) => {}
            ClientAuthentication::PrivateKeyJwt(jwks) => {
                check_client_jwks(jwks).map_err(|why| {
                    StartError::Config(format!("relying party {}: {why}", self.client_id))
                })?
            }
        }
        if let Err(why) = display::check_showable(&self.name, MAX_RP_NAME_CHARS) {
            return Err(StartError::Config(format!(
                "relying party {}: its name cannot be shown: {why}",
                self.client_id
            )));
        }
        if let Some(unknown) = self.allowed_claims.iter().find(|c| !claims::is_known(c)) {
            return Err(StartError::Config(format!(
                "relying party {}: unknown claim {unknown:?} (known: {})",
                self.client_id,
                claims::ALL.join(", ")
            )));
        }
        match (self.delivery_mode, &self.notification_endpoint) {
            (DeliveryMode::Ping, None) => {
                return Err(StartError::Config(format!(
                    "relying party {}: ping mode needs a notification endpoint",
                    self.client_id
                )));
            }
            (DeliveryMode::Poll, Some(_)) => {
                return Err(StartError::Config(format!(
                    "relying party {}: a notification endpoint is only for ping mode",
                    self.client_id
                )));
            }
            (DeliveryMode::Ping, Some(endpoint)) => {
                check_notification_endpoint(endpoint).map_err(|why| {
                    StartError::Config(format!("relying party {}: {why}", self.client_id))
                })?
            }
            (DeliveryMode::Poll, None) => {}
        }
        for uri in &self.redirect_uris {
            check_redirect_uri(uri).map_err(|why| {
                StartError::Config(format!("relying party {}: {why}", self.client_id))
            })?;
        }
        Ok(())
    }

    /// The sentence the phone shows for a login at this relying party.
    pub fn login_text(&self) -> String {
        if self.name == Self::DEMO_NAME {
            Self::DEMO_LOGIN_TEXT.to_owned()
        } else {
            let text = format!("Ik log in bij {}", self.name);
            display::clean_display_text(&text, MAX_ACTION_TEXT_CHARS)
        }
    }
}

/// Reads the `jwks` of a registration: a JWK Set without private key material.
fn read_client_jwks(value: serde_json::Value) -> Result<Jwks, String> {
    let keys = value
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .ok_or("\"jwks\" must be a JWK Set: an object with a \"keys\" array")?;
    for key in keys {
        if let Some(member) = PRIVATE_JWK_MEMBERS.iter().find(|m| key.get(**m).is_some()) {
            return Err(format!(
                "\"jwks\" holds private key material ({member:?}): register the public keys \
                 only, and replace the private key, which has left its owner"
            ));
        }
    }
    serde_json::from_value(value).map_err(|e| format!("\"jwks\": {e} (EC P-256 keys only)"))
}

/// Checks a client's registered keys: at least one; each an EC P-256 point for ES256, for
/// signing, with a `kid` of its own, so that an assertion's `kid` names exactly one key.
fn check_client_jwks(jwks: &Jwks) -> Result<(), String> {
    if jwks.keys.is_empty() {
        return Err("\"jwks\" has no keys".into());
    }
    for (i, key) in jwks.keys.iter().enumerate() {
        let Some(kid) = key.kid.as_deref().filter(|k| !k.is_empty()) else {
            return Err(format!("key {} of \"jwks\" has no \"kid\"", i + 1));
        };
        if jwks.keys[..i].iter().any(|k| k.kid.as_deref() == Some(kid)) {
            return Err(format!("\"jwks\" has two keys with kid {kid:?}"));
        }
        key.to_verifying_key()
            .map_err(|e| format!("key {kid:?} of \"jwks\" is not usable: {e}"))?;
        if let Some(alg) = key.alg.as_deref().filter(|a| *a != ES256) {
            return Err(format!(
                "key {kid:?} of \"jwks\" is for {alg}; only {ES256} is accepted"
            ));
        }
        if let Some(use_) = key.use_.as_deref().filter(|u| *u != "sig") {
            return Err(format!(
                "key {kid:?} of \"jwks\" is for use {use_:?}, not \"sig\""
            ));
        }
    }
    Ok(())
}

/// A notification endpoint must be `https` (CIBA §7.1 asks for TLS), or plain `http` to a
/// loopback address, where the reference server and a test relying party share a machine.
fn check_notification_endpoint(endpoint: &str) -> Result<(), String> {
    let url = url::Url::parse(endpoint).map_err(|e| format!("notification endpoint: {e}"))?;
    let loopback = is_loopback(&url);
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err("the notification endpoint must be https (or http on loopback)".into()),
    }
}

/// Checks a registered redirect URI: absolute, `https` (or `http` on loopback, RFC 8252 §7.3),
/// without a fragment (RFC 6749 §3.1.2) and without user information.
fn check_redirect_uri(uri: &str) -> Result<(), String> {
    let url = url::Url::parse(uri).map_err(|e| format!("redirect URI {uri:?}: {e}"))?;
    if url.fragment().is_some() {
        return Err(format!("redirect URI {uri:?} must not have a fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "redirect URI {uri:?} must not hold user information"
        ));
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        _ => Err(format!(
            "redirect URI {uri:?} must be https (or http on loopback)"
        )),
    }
}

/// Whether `url` names a loopback host.
pub(crate) fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The policy values: lifetimes, attempt limits, age, devices, open requests, where to listen.
/// [`Policy::default`] gives the production values; tests shorten lifetimes. An operator (or a
/// load test, which must raise the per-client call rates) sets values in a JSON file
/// ([`Policy::from_json`], the server's `--policy-file`): the fields it names, the defaults for
/// the rest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// How long an enrollment may take from start to completion (seconds).
    pub enrollment_ttl_secs: i64,
    /// How long an SMS control code is valid (seconds).
    pub sms_code_ttl_secs: i64,
    /// Wrong SMS codes after which the enrollment ends.
    pub sms_max_attempts: u32,
    /// Seconds before another SMS code may be asked for.
    pub sms_resend_after_secs: i64,
    /// SMS codes sent per enrollment at most (the first one included).
    pub sms_max_sends: u32,
    /// Consecutive wrong codes after which the account is blocked.
    pub pin_max_failures: u32,
    /// Lifetime of an action request (seconds), at most the protocol's maximum.
    pub request_ttl_secs: i64,
    /// Minimum seconds between two token polls of a relying party (CIBA `interval`).
    pub ciba_poll_interval_secs: i64,
    /// Minimum age to activate a digital key.
    pub min_age_years: u32,
    /// Active devices per person; a new activation revokes the oldest beyond this number.
    pub max_devices: u32,
    /// Consecutive wrong card PINs after which the simulated bank blocks the card.
    pub card_pin_max_failures: u32,
    /// Lifetime of an ID token (seconds).
    pub id_token_ttl_secs: i64,
    /// Lifetime of an identification code from the eID website (seconds): the person types it
    /// into the app right away.
    pub identification_code_ttl_secs: i64,
    /// Lifetime of an activation code and its e-mail link from the counter (seconds): 14 days,
    /// as the counter tells the person.
    pub activation_code_ttl_secs: i64,
    /// Wrong tries of one identification code before it stops working, and wrong identification
    /// or activation codes per enrollment before the enrollment ends.
    pub identity_code_max_failures: u32,
    /// Open (pending, unexpired) action requests per person at most; a relying party asking
    /// for one more gets `access_denied`. It keeps the phone's list short enough to read, and
    /// limits "MFA fatigue" attacks, where someone who knows the phone number floods the person
    /// with logins hoping for one careless approval. Answering or declining frees a place.
    pub max_pending_per_account: u32,
    /// Backchannel authentication calls per relying party per minute at most, refused or not;
    /// more get `slow_down` (429). It bounds the pushes one relying party can cause and how fast
    /// it can probe which phone numbers have a digital key.
    pub max_backchannel_per_client_per_minute: u32,
    /// Enrollments one device key may start per hour. The app makes a new key for every
    /// enrollment, an unblock included, so only a script (or an app that predates key
    /// replacement) comes back with the same key; more get `rate_limited` (429).
    pub max_enrollment_starts_per_key_per_hour: u32,
    /// Enrollments started from one source address (an IPv4 address, an IPv6 /64) per minute:
    /// anyone can make a device key, so the address is what a script cannot renew for free. A
    /// phone starts one or two; a carrier's shared address (CGNAT) still has room for many
    /// people at once.
    pub max_enrollment_starts_per_source_per_minute: u32,
    /// Enrollments started per minute on the whole server: a circuit breaker far above the
    /// per-address rate, so that a flood from many addresses fills neither the enrollments nor
    /// the proof table beyond this rate times their lifetimes. The price, written down in the
    /// design: a flood from that many addresses holds up every activation while it lasts.
    pub max_enrollment_starts_per_minute: u32,
    /// SMS control codes sent to one phone number per hour, all enrollments together (every
    /// admitted identity and every resend sends one). Each needs an identity proven first, so a
    /// stranger cannot use it to hold up someone's activation; it bounds the texts a number can
    /// be flooded with.
    pub max_sms_per_number_per_hour: u32,
    /// Wrong SMS control codes one person (by national register number) may type for one phone
    /// number per day, all enrollments together. Each enrollment already ends after
    /// `sms_max_attempts`; this stops starting enrollment after enrollment to guess on. Beyond
    /// it the check is refused (`rate_limited`), not the enrollment ended.
    pub max_sms_failures_per_person_and_number_per_day: u32,
    /// Wrong SMS control codes for one phone number per day, whoever typed them: the bound
    /// when several identities guess on one number. Higher than the per-person number, so that
    /// a stranger with one identity cannot hold up the number's own activation.
    pub max_sms_failures_per_number_per_day: u32,
    /// Wrong codes (the 5-digit code) typed on one device in 30 days, whatever the right codes
    /// in between. The consecutive count (`pin_max_failures`) is cleared by the right code, so a
    /// copy of a phone, which shares its device key, would get fresh guesses each time the
    /// person uses the phone; this count blocks the account at its limit all the same.
    pub max_wrong_codes_per_device_per_month: u32,
    /// Wrong identity codes (eID identification codes, counter activation codes with their
    /// link) from one source address (an IPv4 address, an IPv6 /64) per hour, on the phone API
    /// and the block page together. Each code has its own try limit
    /// (`identity_code_max_failures`); this bounds one client guessing across many codes or
    /// links. Beyond it a guess is refused (`rate_limited`, 429) before it is compared, so it
    /// costs no code a try.
    pub max_wrong_identity_codes_per_source_per_hour: u32,
    /// Wrong identity codes per minute on the whole server, from any address: the bound on a
    /// guessing campaign spread over many addresses. Beyond it every guess is refused
    /// (`rate_limited`, 429) before it is compared, until the minute has passed.
    pub max_wrong_identity_codes_per_minute: u32,
    /// Failed client authentications from one source address (an IPv4 address, an IPv6 /64)
    /// per minute; beyond it that address gets `slow_down` (429) for every client id until the
    /// window has passed.
    pub max_client_auth_failures_per_source_per_minute: u32,
    /// Failed client authentications naming one registered client id per minute, from all
    /// addresses together, beyond which the operator is alerted (a warning in the log). It
    /// refuses nothing: refusing would let anyone hold a relying party up, and would tell which
    /// client ids exist. Relying-party secrets must be long random values.
    pub alert_client_auth_failures_per_client_per_minute: u32,
    /// After the person reported a request as not theirs (or picked a wrong number), the
    /// account accepts at most one new request per this many seconds (seconds): whoever is
    /// trying to get an approval cannot keep pushing.
    pub suspicious_throttle_secs: i64,
    /// How long after such a report the throttle lasts (seconds).
    pub suspicious_window_secs: i64,
    /// How long a request is kept once settled (answered, closed, or expired), with the
    /// phone's signed response as evidence of what was approved or declined (seconds). Older
    /// requests are purged: keeping personal data longer than its purpose needs is what the GDPR
    /// (art. 5(1)(e)) forbids. At least [`MIN_REQUEST_RETENTION_SECS`] and at least
    /// `suspicious_window_secs`; default [`DEFAULT_REQUEST_RETENTION_SECS`] (five years).
    pub request_retention_secs: i64,
    /// Whether a "this was not me" report blocks the account (until the person activates
    /// again). Off by default: the report may be a mistake, and a block costs the person a new
    /// activation; the alert and the throttle already stop an attack by pushing.
    pub block_on_not_me: bool,
    /// Whether the server may listen on an address other than loopback. The reference server
    /// is a simulator (its `/sim/` routes show SMS codes and mint identities; the demo relying
    /// party has a published secret), so it refuses by default; turn this on only on a closed
    /// test network.
    pub allow_remote_listen: bool,
    /// The first wait before a push that FCM or APNs answered with 429 or a 5xx is tried again
    /// (milliseconds); each further wait doubles, with random jitter, up to a minute, and a
    /// `Retry-After` the service gives is waited at least. A second gives a busy service room
    /// while a retry still comes long before the request expires; tests make it tiny.
    pub push_retry_base_millis: u64,
    /// Attempts at one push, the first included. Phones also poll, so a push that does not get
    /// through is given up rather than retried for ever; no attempt is made after the request
    /// expires.
    pub push_max_attempts: u32,
    /// Connections open at once. Beyond it a new connection is answered 503 at once and closed,
    /// without reading it, so that a flood of connections costs the server a few bytes each
    /// and cannot exhaust its file descriptors or memory: each connection holds at most a
    /// request head's buffer ([`crate::serve::MAX_REQUEST_HEAD_BYTES`]), so the default bounds
    /// the heads in memory at 128 MiB. A phone or a relying party needs one connection at a
    /// time.
    pub max_connections: u32,
    /// Connections open at once from one source address (an IPv4 address, an IPv6 /64); beyond
    /// it that address's new connections are refused as beyond `max_connections`, so that one
    /// address cannot take every place. A phone or a relying party needs one or a few; behind
    /// a carrier-grade NAT many phones share an address, hence a generous default. Behind a
    /// reverse proxy every client shares the proxy's address: raise it to `max_connections`.
    pub max_connections_per_address: u32,
    /// How long a connection may stay open (seconds); then it finishes the request in flight
    /// and closes, and the client opens another. Without it, a client that sends a cheap
    /// request within every head timeout would keep its places for ever.
    pub max_connection_age_secs: u64,
    /// How long one write of an answer may wait for the client to read (milliseconds); then the
    /// connection is closed. A client that stops reading would otherwise hold its connection
    /// and the handler's answer in memory for ever.
    pub response_write_timeout_millis: u64,
    /// How long a client may take to send a request's head, from the connection's start or
    /// the end of its previous answer (milliseconds). A connection that sends its head a byte
    /// at a time (slowloris), or lies idle, is closed after it: otherwise a few hundred such
    /// connections would hold every place under `max_connections`. A phone on a slow network
    /// sends a head of a few hundred bytes in well under a second.
    pub request_head_timeout_millis: u64,
    /// How long a request may take from its head to its answer, the body's upload included
    /// (milliseconds); beyond it the answer is 408 `request_timeout`. A body trickled in (64
    /// KiB at most) must not hold a connection and a handler for ever.
    pub request_timeout_millis: u64,
    /// Failed proofs (a phone call whose DPoP-style proof is malformed, for another call, too
    /// old, or whose signature does not verify; a call with no proof at all is refused at once
    /// and not counted) from one source address per minute;
    /// beyond it every phone call from that address is `rate_limited` (429) before its proof is
    /// looked at, until the window has passed. A proof's signature check is the costliest thing
    /// an anonymous caller can make the server do; a phone whose clock is wrong fails every
    /// proof, so the limit is well above a phone's retries.
    pub max_proof_failures_per_source_per_minute: u32,
    /// The shortest time a backchannel authentication request or a sign-in form's number is
    /// answered in (milliseconds), whatever the number: a registered person's request is
    /// signed and stored with its push, a number without a usable key only recorded, and the
    /// difference must not show in the answer's timing ([decision
    /// 0030](../../docs/decisions/0030-every-valid-number-gets-a-request.md)). The answer waits
    /// without holding a thread or the database. Set it above the slower path's usual time.
    pub min_number_answer_millis: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            enrollment_ttl_secs: 900,
            sms_code_ttl_secs: 300,
            sms_max_attempts: 3,
            sms_resend_after_secs: 30,
            sms_max_sends: 3,
            pin_max_failures: 3,
            request_ttl_secs: 300,
            ciba_poll_interval_secs: 2,
            min_age_years: 18,
            max_devices: 1,
            card_pin_max_failures: 3,
            id_token_ttl_secs: 300,
            identification_code_ttl_secs: 30 * 60,
            activation_code_ttl_secs: 14 * 24 * 3600,
            identity_code_max_failures: 5,
            max_pending_per_account: 5,
            max_backchannel_per_client_per_minute: 60,
            max_enrollment_starts_per_key_per_hour: 10,
            max_enrollment_starts_per_source_per_minute: 30,
            max_enrollment_starts_per_minute: 3000,
            max_sms_per_number_per_hour: 10,
            max_sms_failures_per_person_and_number_per_day: 10,
            max_sms_failures_per_number_per_day: 30,
            max_wrong_codes_per_device_per_month: 10,
            max_wrong_identity_codes_per_source_per_hour: 30,
            max_wrong_identity_codes_per_minute: 300,
            max_client_auth_failures_per_source_per_minute: 10,
            alert_client_auth_failures_per_client_per_minute: 30,
            suspicious_throttle_secs: 300,
            suspicious_window_secs: 3600,
            request_retention_secs: DEFAULT_REQUEST_RETENTION_SECS,
            block_on_not_me: false,
            allow_remote_listen: false,
            push_retry_base_millis: 1000,
            push_max_attempts: 5,
            max_connections: 2048,
            max_connections_per_address: 256,
            max_connection_age_secs: 300,
            response_write_timeout_millis: 30_000,
            request_head_timeout_millis: 10_000,
            request_timeout_millis: 30_000,
            max_proof_failures_per_source_per_minute: 60,
            min_number_answer_millis: 50,
        }
    }
}

impl Policy {
    /// The policy of a JSON object naming some of the fields by name (`{"max_backchannel_per_client_per_minute": 1000000}`),
    /// the defaults for the others, checked by [`Policy::validate`]. A field name that is not
    /// a policy value is refused rather than ignored: a misspelt limit would silently stay at
    /// its default.
    pub fn from_json(json: &str) -> Result<Self, StartError> {
        let policy: Policy = serde_json::from_str(json)
            .map_err(|e| StartError::Config(format!("policy file: {e}")))?;
        policy.validate()?;
        Ok(policy)
    }

    /// Refuses values that would make the server misbehave (zero limits, lifetimes the protocol
    /// does not allow).
    pub fn validate(&self) -> Result<(), StartError> {
        let positive = [
            ("enrollment_ttl_secs", self.enrollment_ttl_secs),
            ("sms_code_ttl_secs", self.sms_code_ttl_secs),
            ("sms_resend_after_secs", self.sms_resend_after_secs),
            ("request_ttl_secs", self.request_ttl_secs),
            ("ciba_poll_interval_secs", self.ciba_poll_interval_secs),
            ("id_token_ttl_secs", self.id_token_ttl_secs),
            (
                "identification_code_ttl_secs",
                self.identification_code_ttl_secs,
            ),
            ("activation_code_ttl_secs", self.activation_code_ttl_secs),
            ("suspicious_throttle_secs", self.suspicious_throttle_secs),
            ("suspicious_window_secs", self.suspicious_window_secs),
        ];
        for (name, value) in positive {
            if value <= 0 {
                return Err(StartError::Config(format!(
                    "policy {name} must be positive"
                )));
            }
        }
        let counts = [
            ("sms_max_attempts", self.sms_max_attempts),
            ("sms_max_sends", self.sms_max_sends),
            ("pin_max_failures", self.pin_max_failures),
            ("max_devices", self.max_devices),
            ("card_pin_max_failures", self.card_pin_max_failures),
            (
                "identity_code_max_failures",
                self.identity_code_max_failures,
            ),
            ("max_pending_per_account", self.max_pending_per_account),
            (
                "max_backchannel_per_client_per_minute",
                self.max_backchannel_per_client_per_minute,
            ),
            (
                "max_enrollment_starts_per_key_per_hour",
                self.max_enrollment_starts_per_key_per_hour,
            ),
            (
                "max_enrollment_starts_per_source_per_minute",
                self.max_enrollment_starts_per_source_per_minute,
            ),
            (
                "max_sms_per_number_per_hour",
                self.max_sms_per_number_per_hour,
            ),
            (
                "max_sms_failures_per_person_and_number_per_day",
                self.max_sms_failures_per_person_and_number_per_day,
            ),
            (
                "max_wrong_codes_per_device_per_month",
                self.max_wrong_codes_per_device_per_month,
            ),
            (
                "max_wrong_identity_codes_per_source_per_hour",
                self.max_wrong_identity_codes_per_source_per_hour,
            ),
            (
                "max_wrong_identity_codes_per_minute",
                self.max_wrong_identity_codes_per_minute,
            ),
            (
                "max_enrollment_starts_per_minute",
                self.max_enrollment_starts_per_minute,
            ),
            (
                "max_sms_failures_per_number_per_day",
                self.max_sms_failures_per_number_per_day,
            ),
            (
                "alert_client_auth_failures_per_client_per_minute",
                self.alert_client_auth_failures_per_client_per_minute,
            ),
            (
                "max_client_auth_failures_per_source_per_minute",
                self.max_client_auth_failures_per_source_per_minute,
            ),
            ("push_max_attempts", self.push_max_attempts),
            ("max_connections", self.max_connections),
            (
                "max_connections_per_address",
                self.max_connections_per_address,
            ),
            (
                "max_proof_failures_per_source_per_minute",
                self.max_proof_failures_per_source_per_minute,
            ),
        ];
        for (name, value) in counts {
            if value == 0 {
                return Err(StartError::Config(format!(
                    "policy {name} must be at least 1"
                )));
            }
        }
        let durations = [
            ("push_retry_base_millis", self.push_retry_base_millis),
            (
                "request_head_timeout_millis",
                self.request_head_timeout_millis,
            ),
            ("request_timeout_millis", self.request_timeout_millis),
            (
                "response_write_timeout_millis",
                self.response_write_timeout_millis,
            ),
            ("max_connection_age_secs", self.max_connection_age_secs),
        ];
        for (name, value) in durations {
            if value == 0 {
                return Err(StartError::Config(format!(
                    "policy {name} must be at least 1"
                )));
            }
        }
        // The floor must stay far below a request's own timeout, or every number would time out.
        if self.min_number_answer_millis >= self.request_timeout_millis {
            return Err(StartError::Config(
                "policy min_number_answer_millis must be below request_timeout_millis".into(),
            ));
        }
        if self.request_ttl_secs > MAX_ACTION_LIFETIME_SECS {
            return Err(StartError::Config(format!(
                "policy request_ttl_secs must be at most {MAX_ACTION_LIFETIME_SECS}"
            )));
        }
        // The throttle after a suspicious answer reads the requests made since the report.
        let shortest_retention = MIN_REQUEST_RETENTION_SECS.max(self.suspicious_window_secs);
        if self.request_retention_secs < shortest_retention {
            return Err(StartError::Config(format!(
                "policy request_retention_secs must be at least {shortest_retention} (a day, \
                 and the suspicious window)"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_file_sets_the_values_it_names_and_keeps_the_defaults() {
        let policy =
            Policy::from_json(r#"{"max_backchannel_per_client_per_minute": 1000000}"#).unwrap();
        assert_eq!(policy.max_backchannel_per_client_per_minute, 1_000_000);
        assert_eq!(
            Policy {
                max_backchannel_per_client_per_minute: Policy::default()
                    .max_backchannel_per_client_per_minute,
                ..policy
            },
            Policy::default()
        );
    }

    #[test]
    fn a_policy_file_with_a_misspelt_value_is_refused() {
        let refused = Policy::from_json(r#"{"max_backchannel_per_minute": 1000000}"#);
        assert!(matches!(refused, Err(StartError::Config(_))), "{refused:?}");
    }

    #[test]
    fn a_policy_file_with_a_value_the_server_refuses_is_refused() {
        let refused = Policy::from_json(r#"{"request_ttl_secs": 0}"#);
        assert!(matches!(refused, Err(StartError::Config(_))), "{refused:?}");
    }

    #[test]
    fn parses_id_secret_and_a_name_with_colons() {
        let rp =
            RelyingPartyConfig::parse_with("bank-x:s3cret:Bank X: online", no_environment).unwrap();
        assert_eq!(rp.client_id, "bank-x");
        assert_eq!(secret(&rp), "s3cret");
        assert_eq!(rp.name, "Bank X: online");
        assert_eq!(rp.login_text(), "Ik log in bij Bank X: online");
    }

    fn no_environment(_: &str) -> Option<String> {
        None
    }

    fn secret(rp: &RelyingPartyConfig) -> &str {
        match &rp.authentication {
            ClientAuthentication::SecretBasic(secret) => secret,
            ClientAuthentication::PrivateKeyJwt(_) => panic!("not a secret client"),
        }
    }

    /// A fresh P-256 public key as a registration file gives it, with `kid`.
    fn public_jwk(kid: &str) -> serde_json::Value {
        use p256::elliptic_curve::Generate;
        let key = p256::ecdsa::SigningKey::generate();
        let jwk = sleutel_protocol::jose::Jwk::from_verifying_key(key.verifying_key());
        serde_json::json!({"kty": "EC", "crv": "P-256", "x": jwk.x, "y": jwk.y, "kid": kid})
    }

    /// A registration file of one private_key_jwt client with `jwks`.
    fn key_client_file(jwks: serde_json::Value) -> String {
        serde_json::json!([{
            "client_id": "shop", "name": "Webwinkel",
            "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks
        }])
        .to_string()
    }

    fn start_error(json: &str) -> String {
        RelyingPartyConfig::parse_file_with(json, no_environment)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_registration_file_gives_a_private_key_jwt_client_its_keys() {
        let json =
            key_client_file(serde_json::json!({"keys": [public_jwk("k1"), public_jwk("k2")]}));

        let rps = RelyingPartyConfig::parse_file_with(&json, no_environment).unwrap();

        let ClientAuthentication::PrivateKeyJwt(jwks) = &rps[0].authentication else {
            panic!("not a key client");
        };
        assert!(jwks.find("k1").is_some() && jwks.find("k2").is_some());
    }

    #[test]
    fn a_client_jwks_without_keys_is_refused() {
        let err = start_error(&key_client_file(serde_json::json!({"keys": []})));
        assert!(err.contains("no keys"), "{err}");
    }

    #[test]
    fn a_client_key_without_kid_is_refused() {
        let mut key = public_jwk("k1");
        key.as_object_mut().unwrap().remove("kid");
        let err = start_error(&key_client_file(serde_json::json!({"keys": [key]})));
        assert!(err.contains("no \"kid\""), "{err}");
    }

    #[test]
    fn two_client_keys_with_one_kid_are_refused() {
        let jwks = serde_json::json!({"keys": [public_jwk("k1"), public_jwk("k1")]});
        let err = start_error(&key_client_file(jwks));
        assert!(err.contains("two keys with kid"), "{err}");
    }

    #[test]
    fn a_client_key_off_the_curve_is_refused() {
        let mut key = public_jwk("k1");
        key["y"] = serde_json::json!(sleutel_protocol::jose::b64([7u8; 32]));
        let err = start_error(&key_client_file(serde_json::json!({"keys": [key]})));
        assert!(err.contains("not usable"), "{err}");
    }

    #[test]
    fn a_client_key_of_another_type_is_refused() {
        let rsa = serde_json::json!({"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB"});
        let err = start_error(&key_client_file(serde_json::json!({"keys": [rsa]})));
        assert!(err.contains("EC P-256"), "{err}");
    }

    #[test]
    fn a_client_jwks_with_a_private_key_is_refused() {
        let mut key = public_jwk("k1");
        key["d"] = serde_json::json!(sleutel_protocol::jose::b64([1u8; 32]));
        let err = start_error(&key_client_file(serde_json::json!({"keys": [key]})));
        assert!(err.contains("private key material"), "{err}");
    }

    #[test]
    fn a_private_key_jwt_client_with_a_secret_is_refused() {
        let json = serde_json::json!([{
            "client_id": "shop", "name": "Webwinkel", "secret": "s",
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [public_jwk("k1")]}
        }])
        .to_string();
        let err = start_error(&json);
        assert!(err.contains("has no secret"), "{err}");
    }

    #[test]
    fn a_private_key_jwt_client_without_jwks_is_refused() {
        let json = r#"[{"client_id": "shop", "name": "Webwinkel",
                        "token_endpoint_auth_method": "private_key_jwt"}]"#;
        let err = start_error(json);
        assert!(err.contains("\"jwks\""), "{err}");
    }

    #[test]
    fn a_secret_client_with_jwks_is_refused() {
        let json = serde_json::json!([{
            "client_id": "shop", "name": "Webwinkel", "secret": "s",
            "jwks": {"keys": [public_jwk("k1")]}
        }])
        .to_string();
        let err = start_error(&json);
        assert!(err.contains("only for token_endpoint_auth_method"), "{err}");
    }

    #[test]
    fn refuses_incomplete_or_unprintable_specs() {
        for bad in [
            "only-id",
            "id:secret",
            "id::Name",
            ":s:Name",
            "id:s:\u{202E}x",
            "i d:s:N",
        ] {
            assert!(
                RelyingPartyConfig::parse_with(bad, no_environment).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_secret_variable_is_named_after_the_id_in_capitals() {
        assert_eq!(
            RelyingPartyConfig::secret_variable("bank-x.be_2"),
            "SLEUTEL_RP_SECRET_BANK_X_BE_2"
        );
    }

    #[test]
    fn id_and_name_take_the_secret_from_the_environment() {
        let environment =
            |name: &str| (name == "SLEUTEL_RP_SECRET_BANK_X").then(|| "s3cret".into());

        let short = RelyingPartyConfig::parse_with("bank-x:Bank X", environment).unwrap();
        let with_colons =
            RelyingPartyConfig::parse_with("bank-x::Bank X: online", environment).unwrap();

        assert_eq!((secret(&short), short.name.as_str()), ("s3cret", "Bank X"));
        assert_eq!(
            (secret(&with_colons), with_colons.name.as_str()),
            ("s3cret", "Bank X: online")
        );
    }

    #[test]
    fn a_secret_both_in_the_spec_and_the_environment_is_refused() {
        let environment = |_: &str| Some("s3cret".to_owned());

        // Read as ID:SECRET:NAME, this would take "Bank X" for the secret.
        let err = RelyingPartyConfig::parse_with("bank-x:Bank X: online", environment).unwrap_err();

        assert!(
            err.to_string().contains("SLEUTEL_RP_SECRET_BANK_X"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_secret_names_the_variable_to_set() {
        let err = RelyingPartyConfig::parse_with("shop:Webwinkel", no_environment).unwrap_err();

        assert!(err.to_string().contains("SLEUTEL_RP_SECRET_SHOP"), "{err}");
    }

    #[test]
    fn a_registration_file_gives_claims_and_ping_mode() {
        let json = r#"[{"client_id": "shop", "secret": "s", "name": "Webwinkel",
                        "allowed_claims": ["age_over_18"], "delivery_mode": "ping",
                        "notification_endpoint": "http://127.0.0.1:9/ping"}]"#;

        let rps = RelyingPartyConfig::parse_file_with(json, no_environment).unwrap();

        assert_eq!(rps[0].allowed_claims, vec!["age_over_18".to_string()]);
        assert_eq!(rps[0].delivery_mode, DeliveryMode::Ping);
    }

    #[test]
    fn a_registration_file_gives_redirect_uris() {
        let json = r#"[{"client_id": "shop", "secret": "s", "name": "Webwinkel",
                        "redirect_uris": ["https://shop.example/cb", "http://127.0.0.1:9/cb"]}]"#;

        let rps = RelyingPartyConfig::parse_file_with(json, no_environment).unwrap();

        assert_eq!(
            rps[0].redirect_uris,
            vec!["https://shop.example/cb", "http://127.0.0.1:9/cb"]
        );
    }

    #[test]
    fn a_redirect_uri_with_a_fragment_user_or_plain_http_elsewhere_is_refused() {
        for uri in [
            "https://shop.example/cb#x",
            "https://user@shop.example/cb",
            "http://shop.example/cb",
            "/cb",
        ] {
            let rp = RelyingPartyConfig::new("shop", "s", "Webwinkel").with_redirect_uris(&[uri]);
            assert!(rp.validate().is_err(), "{uri}");
        }
    }

    #[test]
    fn a_registration_with_an_unknown_claim_or_ping_without_endpoint_is_refused() {
        for json in [
            r#"[{"client_id": "a", "secret": "s", "name": "A", "allowed_claims": ["email"]}]"#,
            r#"[{"client_id": "a", "secret": "s", "name": "A", "delivery_mode": "ping"}]"#,
            r#"[{"client_id": "a", "secret": "s", "name": "A", "delivery_mode": "ping",
                 "notification_endpoint": "http://example.com/ping"}]"#,
            r#"[{"client_id": "a", "name": "A"}]"#,
        ] {
            assert!(
                RelyingPartyConfig::parse_file_with(json, no_environment).is_err(),
                "{json}"
            );
        }
    }

    #[test]
    fn the_command_line_form_allows_the_name_and_polls() {
        let rp = RelyingPartyConfig::parse_with("bank-x:s3cret:Bank X", no_environment).unwrap();

        assert_eq!(rp.allowed_claims, vec!["name", "given_name", "family_name"]);
        assert_eq!(rp.delivery_mode, DeliveryMode::Poll);
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let shown = format!("{:?}", RelyingPartyConfig::demo());
        assert!(!shown.contains(RelyingPartyConfig::DEMO_SECRET));
    }

    #[test]
    fn demo_relying_party_logs_in_on_the_online_government() {
        assert_eq!(
            RelyingPartyConfig::demo().login_text(),
            "Ik log in op de online overheid"
        );
    }

    #[test]
    fn default_policy_is_valid_and_zero_limits_are_not() {
        assert!(Policy::default().validate().is_ok());
        let bad = Policy {
            pin_max_failures: 0,
            ..Policy::default()
        };
        assert!(bad.validate().is_err());
        let too_long = Policy {
            request_ttl_secs: MAX_ACTION_LIFETIME_SECS + 1,
            ..Policy::default()
        };
        assert!(too_long.validate().is_err());
        let no_pending = Policy {
            max_pending_per_account: 0,
            ..Policy::default()
        };
        assert!(no_pending.validate().is_err());
    }

    #[test]
    fn push_retries_need_an_attempt_and_a_positive_base() {
        let no_attempt = Policy {
            push_max_attempts: 0,
            ..Policy::default()
        };
        let no_wait = Policy {
            push_retry_base_millis: 0,
            ..Policy::default()
        };

        assert!(no_attempt.validate().is_err());
        assert!(no_wait.validate().is_err());
    }

    #[test]
    fn apns_environments_are_production_and_sandbox() {
        assert_eq!(
            ApnsEnvironment::parse("sandbox").unwrap().base_url(),
            "https://api.sandbox.push.apple.com"
        );
        assert_eq!(
            ApnsEnvironment::parse("production").unwrap().base_url(),
            "https://api.push.apple.com"
        );
        assert!(ApnsEnvironment::parse("development").is_err());
    }

    #[test]
    fn a_push_service_url_is_https_or_http_on_loopback() {
        assert_eq!(
            check_service_url("x", "https://fcm.googleapis.com/").unwrap(),
            "https://fcm.googleapis.com"
        );
        assert!(check_service_url("x", "http://127.0.0.1:9").is_ok());
        for bad in ["http://fcm.googleapis.com", "ftp://127.0.0.1", "not a url"] {
            assert!(check_service_url("x", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_retention_shorter_than_a_day_or_the_suspicious_window_is_refused() {
        let an_hour = Policy {
            request_retention_secs: 3600,
            ..Policy::default()
        };
        let shorter_than_the_window = Policy {
            request_retention_secs: 2 * MIN_REQUEST_RETENTION_SECS,
            suspicious_window_secs: 3 * MIN_REQUEST_RETENTION_SECS,
            ..Policy::default()
        };
        let a_day = Policy {
            request_retention_secs: MIN_REQUEST_RETENTION_SECS,
            ..Policy::default()
        };

        assert!(an_hour.validate().is_err());
        assert!(shorter_than_the_window.validate().is_err());
        assert!(a_day.validate().is_ok());
    }
}
