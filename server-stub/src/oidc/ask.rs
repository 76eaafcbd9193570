//! What a relying party asks in a backchannel authentication request, read from the form and
//! checked before anything is stored: the scope and the claims (only those the relying party is
//! registered for), the person (`login_hint`), the binding message, the kind of request with its
//! transaction or document, the ACR values, the expiry, number matching and, in ping mode, the
//! notification token. Text the person will see is refused, not cleaned, when it cannot be shown
//! safely, so that what the server signs is what the relying party sent.

use sleutel_protocol::action::{ActionKind, SignDocument, Transaction, UserVerification};
use sleutel_protocol::api::oidc;
use sleutel_protocol::limits::{
    MAX_BINDING_MESSAGE_CHARS, MAX_DOCUMENT_NAME_CHARS, MAX_RP_NAME_CHARS,
};
use sleutel_protocol::{claims, display, phone};
use zeroize::Zeroizing;

use crate::config::{DeliveryMode, RelyingPartyConfig};
use crate::error::{Result, ServerError};
use crate::extract::Params;
use crate::notify::MAX_NOTIFICATION_TOKEN_CHARS;

/// The scopes this server knows: `openid` (required), `profile` (the name) and `phone` (the
/// phone number); every other claim is asked with the `claims` parameter.
pub(super) const SUPPORTED_SCOPES: [&str; 3] = ["openid", "profile", "phone"];

/// Longest `claims` request parameter accepted: the seven claims with `essential` flags fit
/// in a few hundred bytes.
pub(super) const MAX_CLAIMS_PARAMETER_BYTES: usize = 4096;

/// The claims the `profile` scope asks for (voluntary, OIDC Core §5.4): the name.
pub(super) const PROFILE_CLAIMS: [&str; 3] =
    [claims::NAME, claims::GIVEN_NAME, claims::FAMILY_NAME];

/// The claims the `phone` scope asks for (voluntary).
pub(super) const PHONE_CLAIMS: [&str; 1] = [claims::PHONE_NUMBER];

/// What a relying party asks for in a backchannel authentication request.
pub(super) struct LoginAsk {
    /// The person's phone number (E.164), from `login_hint`.
    pub(super) phone_number: String,
    /// The scopes asked, space-separated.
    pub(super) scope: String,
    /// The text the relying party also shows, for the person to compare.
    pub(super) binding_message: Option<String>,
    /// Lifetime of the request: `requested_expiry`, at most the policy's.
    pub(super) ttl_secs: i64,
    /// How the person must confirm: the code, unless the relying party accepts a biometric.
    pub(super) uv: UserVerification,
    /// What kind of request, with its template or document.
    pub(super) kind: ActionKind,
    /// The payment or free-text order, for a transaction.
    pub(super) transaction: Option<Transaction>,
    /// The document, for a signature.
    pub(super) document: Option<SignDocument>,
    /// Claims the person must share (refusing one declines).
    pub(super) required_claims: Vec<String>,
    /// Claims the person may leave out.
    pub(super) optional_claims: Vec<String>,
    /// Whether the relying party shows a number for the person to pick on the phone.
    pub(super) number_matching: bool,
    /// The bearer token for pings (ping mode only).
    pub(super) notification_token: Option<Zeroizing<String>>,
}

/// Reads the `claims` request parameter (OIDC Core §5.5): `{"id_token": {"birthdate":
/// {"essential": true}, "age_over_18": null}}`. Returns `(claim, essential)` pairs.
fn read_claims_parameter(text: &str) -> Result<Vec<(String, bool)>> {
    let bad = |why: &str| ServerError::InvalidRequest(format!("claims parameter: {why}"));
    if text.len() > MAX_CLAIMS_PARAMETER_BYTES {
        return Err(bad("too long"));
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| bad(&format!("not JSON: {e}")))?;
    let object = value.as_object().ok_or_else(|| bad("not a JSON object"))?;
    if let Some(other) = object.keys().find(|k| *k != "id_token") {
        return Err(bad(&format!(
            "only id_token claims can be asked (UserInfo answers the same ones), not {other:?}"
        )));
    }
    let Some(requested) = object.get("id_token") else {
        return Ok(Vec::new());
    };
    let requested = requested
        .as_object()
        .ok_or_else(|| bad("id_token is not a JSON object"))?;
    let mut out = Vec::new();
    for (name, spec) in requested {
        if !claims::is_known(name) {
            return Err(bad(&format!(
                "unknown claim {name:?} (supported: {})",
                claims::ALL.join(", ")
            )));
        }
        let essential = match spec {
            serde_json::Value::Null => false,
            serde_json::Value::Object(members) => match members.get("essential") {
                None | Some(serde_json::Value::Null) => false,
                Some(serde_json::Value::Bool(essential)) => *essential,
                Some(_) => return Err(bad("essential must be true or false")),
            },
            _ => return Err(bad("each claim is null or an object")),
        };
        out.push((name.clone(), essential));
    }
    Ok(out)
}

/// A form value that the person will see, refused (not cleaned) when it cannot be shown safely
/// (see `display::check_showable`: blank, invisible characters, stacked marks, a word mixing
/// scripts), so that what is signed is what the relying party sent.
fn showable_param(params: &Params, name: &str, max: usize) -> Result<String> {
    let value = params.required(name)?;
    display::check_showable(value, max)
        .map_err(|why| ServerError::InvalidRequest(format!("{name} cannot be shown: {why}")))?;
    Ok(value.to_owned())
}

/// The kind of request and its template or document.
fn read_kind(params: &Params) -> Result<(ActionKind, Option<Transaction>, Option<SignDocument>)> {
    let kind = match params.optional("kind").unwrap_or("login") {
        "login" => ActionKind::Login,
        "share_data" => ActionKind::ShareData,
        "confirm_transaction" => ActionKind::ConfirmTransaction,
        "sign" => ActionKind::Sign,
        other => {
            return Err(ServerError::InvalidRequest(format!(
                "unknown kind {other:?} (login, share_data, confirm_transaction, sign)"
            )));
        }
    };
    let transaction_params = [
        "transaction_amount",
        "transaction_currency",
        "transaction_payee",
        "transaction_iban",
        "transaction_text",
    ];
    let document_params = ["document_name", "document_sha256"];
    let stray = |names: &[&str]| {
        names
            .iter()
            .find(|n| params.has(n))
            .map(|n| (*n).to_owned())
    };
    if kind != ActionKind::ConfirmTransaction
        && let Some(name) = stray(&transaction_params)
    {
        return Err(ServerError::InvalidRequest(format!(
            "{name} belongs to kind confirm_transaction"
        )));
    }
    if kind != ActionKind::Sign
        && let Some(name) = stray(&document_params)
    {
        return Err(ServerError::InvalidRequest(format!(
            "{name} belongs to kind sign"
        )));
    }
    let invalid = |e: sleutel_protocol::ProtocolError| ServerError::InvalidRequest(e.to_string());
    match kind {
        ActionKind::ConfirmTransaction => {
            let transaction = if params.has("transaction_text") {
                if let Some(name) = stray(&transaction_params[..4]) {
                    return Err(ServerError::InvalidRequest(format!(
                        "{name} does not go with transaction_text: a transaction is a payment \
                         or free text"
                    )));
                }
                let text = params.required("transaction_text")?;
                // Line breaks are folded to spaces; anything else invisible is refused.
                if text
                    .chars()
                    .any(|c| display::is_forbidden_char(c) && c != '\n' && c != '\t')
                {
                    return Err(ServerError::InvalidRequest(
                        "transaction_text holds control, invisible or bidirectional characters"
                            .into(),
                    ));
                }
                Transaction::FreeText {
                    text: text.to_owned(),
                }
            } else {
                Transaction::Payment {
                    amount: params.required("transaction_amount")?.to_owned(),
                    currency: params.required("transaction_currency")?.to_owned(),
                    payee: showable_param(params, "transaction_payee", MAX_RP_NAME_CHARS)?,
                    iban: params.required("transaction_iban")?.to_owned(),
                }
            };
            transaction.validate().map_err(invalid)?;
            Ok((kind, Some(transaction), None))
        }
        ActionKind::Sign => {
            let document = SignDocument {
                name: showable_param(params, "document_name", MAX_DOCUMENT_NAME_CHARS)?,
                sha256: params.required("document_sha256")?.to_owned(),
            };
            document.validate().map_err(invalid)?;
            Ok((kind, None, Some(document)))
        }
        ActionKind::Login | ActionKind::ShareData => Ok((kind, None, None)),
    }
}

/// Reads and checks the ask of `client` from the form, with `max_ttl` as the longest lifetime.
/// The parts are read in a fixed order, so that a form with several faults is always refused
/// for the same one.
pub(super) fn read_ask(
    params: &Params,
    max_ttl: i64,
    client: &RelyingPartyConfig,
) -> Result<LoginAsk> {
    if params.has("login_hint_token") || params.has("id_token_hint") {
        return Err(ServerError::InvalidRequest(
            "login_hint_token and id_token_hint are not supported; use login_hint".into(),
        ));
    }
    // The discovery document says backchannel_user_code_parameter_supported: false.
    if params.has("user_code") {
        return Err(ServerError::InvalidRequest(
            "user_code is not supported".into(),
        ));
    }
    let scopes = read_scopes(params)?;
    let hint = params.required("login_hint")?;
    // A malformed number says nothing about who is registered; every valid one gets a request
    // (decision 0030).
    let phone_number = phone::normalize_belgian_mobile(hint).map_err(|_| {
        ServerError::InvalidRequest("login_hint is not a Belgian mobile number".into())
    })?;
    let binding_message = read_binding_message(params)?;
    let ttl_secs = read_expiry(params, max_ttl)?;
    let uv = read_acr_values(params)?;
    let (kind, transaction, document) = read_kind(params)?;
    let (required_claims, optional_claims) = read_asked_claims(params, &scopes, kind, client)?;
    let number_matching = match params.optional("number_matching") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ServerError::InvalidRequest(
                "number_matching is true or false".into(),
            ));
        }
    };
    let notification_token = read_notification_token(params, client)?;
    Ok(LoginAsk {
        uv,
        phone_number,
        scope: scopes.join(" "),
        binding_message,
        ttl_secs,
        kind,
        transaction,
        document,
        required_claims,
        optional_claims,
        number_matching,
        notification_token,
    })
}

/// The scopes asked: only [`SUPPORTED_SCOPES`], `openid` among them.
pub(super) fn read_scopes(params: &Params) -> Result<Vec<&str>> {
    let scope = params
        .optional("scope")
        .ok_or_else(|| ServerError::InvalidScope("scope is missing (openid is required)".into()))?;
    let scopes: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
    if let Some(unknown) = scopes.iter().find(|s| !SUPPORTED_SCOPES.contains(s)) {
        return Err(ServerError::InvalidScope(format!(
            "unsupported scope {unknown:?}"
        )));
    }
    if !scopes.contains(&"openid") {
        return Err(ServerError::InvalidScope(
            "the scope must contain openid".into(),
        ));
    }
    Ok(scopes)
}

/// The binding message, if any, refused when it cannot be shown as sent.
fn read_binding_message(params: &Params) -> Result<Option<String>> {
    let Some(message) = params.optional("binding_message") else {
        return Ok(None);
    };
    display::check_showable(message, MAX_BINDING_MESSAGE_CHARS)
        .map_err(|why| ServerError::InvalidBindingMessage(format!("cannot be shown: {why}")))?;
    Ok(Some(message.to_owned()))
}

/// The request's lifetime: `requested_expiry`, at most `max_ttl`, which is also the default.
fn read_expiry(params: &Params, max_ttl: i64) -> Result<i64> {
    match params.optional("requested_expiry") {
        None => Ok(max_ttl),
        Some(text) => match text.parse::<i64>() {
            Ok(secs) if secs > 0 => Ok(secs.min(max_ttl)),
            _ => Err(ServerError::InvalidRequest(
                "requested_expiry must be a positive number of seconds".into(),
            )),
        },
    }
}

/// How the person must confirm, from `acr_values`: the list of what the relying party accepts,
/// most preferred first (OIDC Core §3.1.2.1). The code is always acceptable; a biometric only
/// when the relying party names it.
pub(super) fn read_acr_values(params: &Params) -> Result<UserVerification> {
    let Some(values) = params.optional("acr_values") else {
        return Ok(UserVerification::Pin);
    };
    let values: Vec<&str> = values.split(' ').filter(|v| !v.is_empty()).collect();
    if let Some(unknown) = values
        .iter()
        .find(|v| **v != oidc::ACR_CODE && **v != oidc::ACR_CODE_OR_BIOMETRIC)
    {
        return Err(ServerError::InvalidRequest(format!(
            "unsupported acr value {unknown:?}"
        )));
    }
    Ok(if values.contains(&oidc::ACR_CODE_OR_BIOMETRIC) {
        UserVerification::PinOrBiometric
    } else {
        UserVerification::Pin
    })
}

/// The claims asked, as `(required, optional)`, each in the protocol's order (the order of the
/// consent screen). The scopes ask voluntarily, the claims parameter essentially or voluntarily;
/// a claim asked both ways is required. Every claim must be one `client` is registered for, and
/// a request to share data asks at least one.
pub(super) fn read_asked_claims(
    params: &Params,
    scopes: &[&str],
    kind: ActionKind,
    client: &RelyingPartyConfig,
) -> Result<(Vec<String>, Vec<String>)> {
    let mut asked: Vec<(String, bool)> = Vec::new();
    let mut ask = |claim: &str, essential: bool| match asked.iter_mut().find(|(c, _)| c == claim) {
        Some((_, e)) => *e |= essential,
        None => asked.push((claim.to_owned(), essential)),
    };
    if scopes.contains(&"profile") {
        PROFILE_CLAIMS.iter().for_each(|c| ask(c, false));
    }
    if scopes.contains(&"phone") {
        PHONE_CLAIMS.iter().for_each(|c| ask(c, false));
    }
    if let Some(text) = params.optional("claims") {
        for (claim, essential) in read_claims_parameter(text)? {
            ask(&claim, essential);
        }
    }
    if let Some((claim, _)) = asked
        .iter()
        .find(|(c, _)| !client.allowed_claims.contains(c))
    {
        return Err(ServerError::ClaimNotAllowed(format!(
            "this client is not registered for the claim {claim:?}"
        )));
    }
    if kind == ActionKind::ShareData && asked.is_empty() {
        return Err(ServerError::InvalidRequest(
            "share_data asks for at least one claim (scope or claims parameter)".into(),
        ));
    }
    let in_order = |essential: bool| -> Vec<String> {
        claims::ALL
            .iter()
            .filter(|c| asked.iter().any(|(a, e)| a == *c && *e == essential))
            .map(|c| (*c).to_owned())
            .collect()
    };
    Ok((in_order(true), in_order(false)))
}

/// The bearer token for pings: required of a ping-mode client, meaningless to a poll-mode one
/// (CIBA §7.1).
fn read_notification_token(
    params: &Params,
    client: &RelyingPartyConfig,
) -> Result<Option<Zeroizing<String>>> {
    match client.delivery_mode {
        DeliveryMode::Poll => return Ok(None),
        DeliveryMode::Ping => {}
    }
    let token = params
        .optional("client_notification_token")
        .ok_or_else(|| {
            ServerError::InvalidRequest("client_notification_token is required in ping mode".into())
        })?;
    if token.is_empty()
        || token.len() > MAX_NOTIFICATION_TOKEN_CHARS
        || !token.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(ServerError::InvalidRequest(format!(
            "client_notification_token must be 1-{MAX_NOTIFICATION_TOKEN_CHARS} \
             printable ASCII characters"
        )));
    }
    Ok(Some(Zeroizing::new(token.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ask of the demo relying party (poll mode, allowed the name).
    fn read_login_ask(params: &Params, max_ttl: i64) -> Result<LoginAsk> {
        read_ask(params, max_ttl, &RelyingPartyConfig::demo())
    }

    #[test]
    fn login_asks_are_checked() {
        let ask = |body: &str| read_login_ask(&Params::parse(body.as_bytes()).unwrap(), 300);
        let ok =
            ask("scope=openid+profile&login_hint=%2B32470123456&binding_message=AB12").unwrap();
        assert_eq!(
            ok.optional_claims,
            vec!["name", "given_name", "family_name"]
        );
        assert_eq!(ok.phone_number, "+32470123456");
        assert!(matches!(
            ask("scope=profile&login_hint=%2B32470123456"),
            Err(ServerError::InvalidScope(_))
        ));
        assert!(matches!(
            ask("scope=openid+email&login_hint=%2B32470123456"),
            Err(ServerError::InvalidScope(_))
        ));
        assert!(matches!(
            ask("scope=openid"),
            Err(ServerError::InvalidRequest(_))
        ));
        assert!(matches!(
            ask("scope=openid&login_hint=x&id_token_hint=y"),
            Err(ServerError::InvalidRequest(_))
        ));
        assert!(matches!(
            ask("scope=openid&login_hint=%2B32470123456&binding_message=a%E2%80%AEb"),
            Err(ServerError::InvalidBindingMessage(_))
        ));
        let long = "x".repeat(MAX_BINDING_MESSAGE_CHARS + 1);
        assert!(matches!(
            ask(&format!(
                "scope=openid&login_hint=%2B32470123456&binding_message={long}"
            )),
            Err(ServerError::InvalidBindingMessage(_))
        ));
        assert_eq!(
            ask("scope=openid&login_hint=%2B32470123456&requested_expiry=60")
                .unwrap()
                .ttl_secs,
            60
        );
        assert_eq!(
            ask("scope=openid&login_hint=%2B32470123456&requested_expiry=6000")
                .unwrap()
                .ttl_secs,
            300
        );
    }
}
