//! The sign-in links: the rotating QR link `https://<server>/app/scan?...` that the sign-in page
//! shows as a QR code (for the app on another device), the universal link
//! `https://<server>/app/sign-in?...` it offers as an "open the app" link (for the app on the
//! same phone), the device call that hands a link to the server, and its answer.
//!
//! Both ends read a link with [`SignInLink::parse`]: the server before it looks anything up, the
//! phone before anything goes to the network, so that a foreign or malformed link never leaves
//! the phone.

use serde::{Deserialize, Serialize};

use crate::{ProtocolError, Result};

/// The path of the app-to-app sign-in link (a universal link on iOS, an app link on Android).
/// Opened in a browser without the app, the server answers with a page saying to open it on the
/// phone.
pub const PATH_APP_SIGN_IN: &str = "/app/sign-in";

/// The path of the QR link. It is NOT a universal link or app link (the association files and the
/// app's link filter name [`PATH_APP_SIGN_IN`] only): a QR link reaches the app only through its
/// camera. Were it tappable, a page on the victim's phone could offer an attacker's live QR link
/// as "open the app", and the approved sign-in would go to the attacker's browser, which holds
/// the QR session (an app-to-app session's code goes only to the return URL). Opened in a
/// browser, the server answers with a page saying to scan it with the app.
pub const PATH_APP_SCAN: &str = "/app/scan";

/// Phone API: hand a sign-in link to the server (POST [`OpenSignInLink`] ->
/// [`SignInLinkOpened`]). The first valid link of a browser session binds that session to the
/// calling device's account and starts the very action request the number form would.
pub const PATH_DEVICE_SIGN_IN: &str = "/v1/device/sign-in";

/// Parameter naming the link's kind: [`KIND_QR`] or [`KIND_APP`].
pub const PARAM_KIND: &str = "kind";
/// Parameter carrying the session's public link id (never the session cookie).
pub const PARAM_ID: &str = "id";
/// Parameter carrying the time step of a QR link.
pub const PARAM_STEP: &str = "step";
/// Parameter carrying the link's MAC.
pub const PARAM_MAC: &str = "mac";
/// The kind of a rotating QR link, scanned on another device.
pub const KIND_QR: &str = "qr";
/// The kind of an app-to-app link, tapped on the phone itself.
pub const KIND_APP: &str = "app";

/// Characters of a link id: the base64url of [`crate::limits::ID_BYTES`] random bytes.
pub const LINK_ID_CHARS: usize = 22;

/// Bytes of a link's MAC: HMAC-SHA256 truncated to 128 bits. A forger has one try per request
/// and a few seconds per step, so 128 bits is far beyond reach, and the QR stays small enough to
/// scan from a screen.
pub const LINK_MAC_BYTES: usize = 16;

/// Characters of a link's MAC in base64url (unpadded).
pub const LINK_MAC_CHARS: usize = 22;

/// Longest link accepted: the server's URL and four short parameters fit many times over;
/// anything longer is not one of ours.
pub const MAX_LINK_CHARS: usize = 512;

/// Largest time step accepted in a link: 2 s steps until far beyond any phone's lifetime, small
/// enough that no arithmetic on it can overflow.
pub const MAX_STEP: i64 = 1 << 40;

/// What a sign-in link says, once parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInLink {
    /// A rotating QR link: valid only for its time step (and the one after it).
    Qr {
        /// The session's link id.
        id: String,
        /// The time step the MAC was made for.
        step: i64,
        /// The MAC over id and step, base64url.
        mac: String,
    },
    /// An app-to-app link: one per session, not rotating, answered through the return URL.
    App {
        /// The session's link id.
        id: String,
        /// The MAC over the id, base64url.
        mac: String,
    },
}

impl SignInLink {
    /// Reads `link` as a sign-in link of the server whose base URL is `server_url`: the same
    /// scheme, host and port, the path of its kind under the server's base path ([`PATH_APP_SCAN`]
    /// for a QR link, [`PATH_APP_SIGN_IN`] for an app link), and exactly the parameters of its
    /// kind, each once and well formed. Anything else is
    /// [`ProtocolError::InvalidField`] on `link`.
    pub fn parse(link: &str, server_url: &str) -> Result<Self> {
        let bad = |detail: &str| ProtocolError::invalid("link", detail);
        if link.len() > MAX_LINK_CHARS {
            return Err(bad("too long to be a sign-in link"));
        }
        let url = url::Url::parse(link.trim()).map_err(|_| bad("not a URL"))?;
        let server = url::Url::parse(server_url).map_err(|_| bad("the server URL is not a URL"))?;
        if url.scheme() != server.scheme()
            || url.host() != server.host()
            || url.port_or_known_default() != server.port_or_known_default()
            || !url.username().is_empty()
            || url.password().is_some()
            || url.fragment().is_some()
        {
            return Err(bad("not a link of this app's server"));
        }
        let base = server.path().trim_end_matches('/');
        let Some(path_kind) = url.path().strip_prefix(base).and_then(|path| match path {
            PATH_APP_SCAN => Some(KIND_QR),
            PATH_APP_SIGN_IN => Some(KIND_APP),
            _ => None,
        }) else {
            return Err(bad("not a sign-in link"));
        };
        let (mut kind, mut id, mut step, mut mac) = (None, None, None, None);
        for (name, value) in url.query_pairs() {
            let slot = match name.as_ref() {
                PARAM_KIND => &mut kind,
                PARAM_ID => &mut id,
                PARAM_STEP => &mut step,
                PARAM_MAC => &mut mac,
                _ => return Err(bad("the link carries an unexpected parameter")),
            };
            // A repeated parameter could make two readers disagree about the link.
            if slot.replace(value.into_owned()).is_some() {
                return Err(bad("the link repeats a parameter"));
            }
        }
        let id = id
            .filter(|id| is_b64url(id, LINK_ID_CHARS))
            .ok_or_else(|| bad("the link's id is missing or malformed"))?;
        let mac = mac
            .filter(|mac| is_b64url(mac, LINK_MAC_CHARS))
            .ok_or_else(|| bad("the link's MAC is missing or malformed"))?;
        if kind.as_deref().is_some_and(|kind| kind != path_kind) {
            // A QR link under the tappable path would open the app from a page: refused.
            return Err(bad("the link's kind does not match its path"));
        }
        match kind.as_deref() {
            Some(KIND_QR) => {
                let step = step
                    .filter(|s| {
                        !s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_digit())
                    })
                    .and_then(|s| s.parse::<i64>().ok())
                    .filter(|s| (0..=MAX_STEP).contains(s))
                    .ok_or_else(|| bad("the link's step is missing or malformed"))?;
                Ok(Self::Qr { id, step, mac })
            }
            Some(KIND_APP) if step.is_none() => Ok(Self::App { id, mac }),
            Some(KIND_APP) => Err(bad("an app link carries no step")),
            _ => Err(bad("the link's kind is missing or unknown")),
        }
    }

    /// The link as a URL under `server_url` (a base URL without a trailing slash).
    pub fn to_url(&self, server_url: &str) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        let path = match self {
            Self::Qr { .. } => PATH_APP_SCAN,
            Self::App { .. } => PATH_APP_SIGN_IN,
        };
        match self {
            Self::Qr { id, step, mac } => query
                .append_pair(PARAM_KIND, KIND_QR)
                .append_pair(PARAM_ID, id)
                .append_pair(PARAM_STEP, &step.to_string())
                .append_pair(PARAM_MAC, mac),
            Self::App { id, mac } => query
                .append_pair(PARAM_KIND, KIND_APP)
                .append_pair(PARAM_ID, id)
                .append_pair(PARAM_MAC, mac),
        };
        format!(
            "{}{path}?{}",
            server_url.trim_end_matches('/'),
            query.finish()
        )
    }

    /// The session's link id.
    pub fn id(&self) -> &str {
        match self {
            Self::Qr { id, .. } | Self::App { id, .. } => id,
        }
    }
}

/// Whether `text` is exactly `chars` base64url characters.
fn is_b64url(text: &str, chars: usize) -> bool {
    text.len() == chars
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Body of `POST /v1/device/sign-in`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenSignInLink {
    /// The link as the app received it.
    pub link: String,
}

/// The server bound the browser session to the account and started its action request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInLinkOpened {
    /// The action request to fetch and show (`GET /v1/requests/{id}`), answered as any other.
    pub request_id: String,
    /// For an app-to-app link only: the URL that takes the person back once they answered. It
    /// carries a one-time token and is the only way the authorization code leaves the server
    /// for such a session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: &str = "https://sleutel.example";
    const ID: &str = "AAAAAAAAAAAAAAAAAAAAAA";
    const MAC: &str = "BBBBBBBBBBBBBBBBBBBBBB";

    fn qr() -> SignInLink {
        SignInLink::Qr {
            id: ID.into(),
            step: 880_000_123,
            mac: MAC.into(),
        }
    }

    #[test]
    fn a_link_reads_back_as_it_was_written() {
        let app = SignInLink::App {
            id: ID.into(),
            mac: MAC.into(),
        };
        for link in [qr(), app] {
            assert_eq!(SignInLink::parse(&link.to_url(SERVER), SERVER), Ok(link));
        }
    }

    #[test]
    fn a_link_of_another_host_scheme_or_port_is_refused() {
        let link = qr().to_url(SERVER);
        for server in [
            "https://evil.example",
            "http://sleutel.example",
            "https://sleutel.example:8443",
        ] {
            assert!(SignInLink::parse(&link, server).is_err(), "{server}");
        }
        let foreign = link.replace("sleutel.example", "sleutel.example.evil.example");
        assert!(SignInLink::parse(&foreign, SERVER).is_err());
    }

    #[test]
    fn a_link_with_a_path_a_parameter_or_a_value_out_of_place_is_refused() {
        let good = qr().to_url(SERVER);
        for bad in [
            good.replace("/app/scan", "/app/other"),
            // A QR link under the tappable app-to-app path.
            good.replace("/app/scan", "/app/sign-in"),
            // An app link under the QR path.
            format!("{SERVER}/app/scan?kind=app&id={ID}&mac={MAC}"),
            format!("{good}&extra=1"),
            format!("{good}&id={ID}"),
            format!("{good}#x"),
            good.replace("step=880000123", "step=-1"),
            good.replace("step=880000123", "step=1e9"),
            good.replace("kind=qr", "kind=xx"),
            good.replace(MAC, "short"),
            good.replace("https://", "https://user@"),
            "not a link".into(),
            "sleutel://enroll/bank".into(),
            format!("{SERVER}/app/sign-in?kind=app&id={ID}&mac={MAC}&step=1"),
        ] {
            assert!(SignInLink::parse(&bad, SERVER).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_server_under_a_base_path_has_its_links_under_it() {
        let server = "https://sleutel.example/base";
        let link = qr().to_url(server);
        assert!(link.starts_with("https://sleutel.example/base/app/scan?"));
        assert_eq!(SignInLink::parse(&link, server), Ok(qr()));
        assert!(SignInLink::parse(&qr().to_url(SERVER), server).is_err());
    }
}
