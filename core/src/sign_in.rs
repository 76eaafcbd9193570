//! Signing in to an online service from a link: the rotating QR code of a sign-in page scanned
//! with the app (the page is on another device), or the "open the app" link tapped on this
//! phone (app-to-app). The link is checked here first, so that a foreign or malformed link never
//! reaches the network; the server then binds the browser's sign-in to the account and starts
//! the request, which is shown and answered like any other.

use reqwest::Method;
use sleutel_protocol::api::is_valid_id;
use sleutel_protocol::api::sign_in::{
    OpenSignInLink, PATH_DEVICE_SIGN_IN, SignInLink, SignInLinkOpened,
};
use zeroize::Zeroizing;

use crate::account::AccountStatus;
use crate::actions::{self, ActionView};
use crate::authenticator::Context;
use crate::client::DeviceKey;
use crate::error::CoreError;

/// A sign-in opened from a link: the request to show, and for a link tapped on this phone the
/// way back to the service.
#[derive(Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct SignInRequest {
    /// The request, shown and answered with `approve` or `decline` exactly as one that came by
    /// push.
    pub request: ActionView,
    /// For a link tapped on this phone (app-to-app) only: the URL to open once the person has
    /// approved or declined. It takes them back to the service's page or app, carrying the
    /// outcome; the browser that started the sign-in gets nothing without it. `None` for a
    /// scanned QR code: the page on the other device goes on by itself.
    pub return_url: Option<String>,
}

// The return URL carries a one-time token that turns into the authorization code: it stays out
// of Debug output (logs, crash reports).
impl std::fmt::Debug for SignInRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInRequest")
            .field("request", &self.request)
            .field(
                "return_url",
                &self.return_url.as_ref().map(|_| "<one-time URL>"),
            )
            .finish()
    }
}

/// Opens `link` for `account_id` as
/// [`Authenticator::open_sign_in_link`](crate::Authenticator::open_sign_in_link) documents.
pub(crate) async fn open_sign_in_link(
    ctx: &Context,
    account_id: String,
    link: String,
) -> Result<SignInRequest, CoreError> {
    // The link may not be a Sleutel link at all (any QR code can be scanned): nothing of it is
    // sent, and no account is looked at, before it parses as a link of the configured server.
    SignInLink::parse(&link, &ctx.server_url).map_err(|e| CoreError::NotASignInLink {
        reason: e.to_string(),
    })?;
    let account = actions::usable_account(ctx, &account_id)?;
    // A blocked account cannot confirm anything; binding the browser's sign-in would only
    // leave it waiting.
    if account.status == AccountStatus::Blocked {
        return Err(CoreError::AccountBlocked);
    }
    let device = DeviceKey::load(&*ctx.keystore, &account.device_alias)?;
    let body = Zeroizing::new(
        serde_json::to_vec(&OpenSignInLink { link })
            .map_err(|e| CoreError::invalid("link", e.to_string()))?,
    );
    let opened: SignInLinkOpened = ctx
        .client
        .call(
            &account.server_url,
            Method::POST,
            PATH_DEVICE_SIGN_IN,
            Some(body.to_vec()),
            &device,
        )
        .await
        .map_err(|e| actions::note_account_error(ctx, &account, e))?;
    if !is_valid_id(&opened.request_id) {
        return Err(CoreError::untrusted("the server named a malformed request"));
    }
    let return_url = opened
        .return_url
        .map(|url| check_return_url(&url, &account.server_url))
        .transpose()?;
    let request = actions::fetch_request(ctx, &account, &opened.request_id).await?;
    Ok(SignInRequest {
        request,
        return_url,
    })
}

/// Accepts a return URL only on the account's own server: the app opens it, so a server
/// answer that pointed elsewhere would send the person to a page of someone else's choosing.
pub(crate) fn check_return_url(url: &str, server_url: &str) -> Result<String, CoreError> {
    let parsed = url::Url::parse(url).map_err(|_| CoreError::untrusted("malformed return URL"))?;
    let server =
        url::Url::parse(server_url).map_err(|_| CoreError::untrusted("malformed server URL"))?;
    let same_origin = parsed.scheme() == server.scheme()
        && parsed.host() == server.host()
        && parsed.port_or_known_default() == server.port_or_known_default()
        && parsed.username().is_empty()
        && parsed.password().is_none();
    if !same_origin {
        return Err(CoreError::untrusted(
            "the return URL is not on the account's server",
        ));
    }
    Ok(parsed.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_return_url_on_the_server_is_accepted() {
        let url = "https://sleutel.example/oidc/sign-in/return?token=abc";
        assert_eq!(
            check_return_url(url, "https://sleutel.example"),
            Ok(url.to_owned())
        );
    }

    #[test]
    fn a_return_url_elsewhere_is_untrusted() {
        for url in [
            "https://evil.example/x",
            "http://sleutel.example/x",
            "https://sleutel.example:444/x",
            "https://user@sleutel.example/x",
            "javascript:alert(1)",
        ] {
            assert!(
                matches!(
                    check_return_url(url, "https://sleutel.example"),
                    Err(CoreError::ServerUntrusted { .. })
                ),
                "{url}"
            );
        }
    }
}
