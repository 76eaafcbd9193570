//! What the person brings to an enrollment, read and checked on the phone before anything is
//! sent: the bank's return link with the identity token, the counter's activation link (the app
//! is opened with it) and the activation code handed out at the desk, and the eID website's
//! identification code.

use sleutel_protocol::ProtocolError;
use sleutel_protocol::api;
use sleutel_protocol::display::clean_display_text;
use sleutel_protocol::identity::{
    self, ACTIVATION_CODE_LENGTH, Bank, IDENTIFICATION_CODE_LENGTH, IdentitySource,
};
use sleutel_protocol::limits::MAX_JWS_BYTES;
use zeroize::Zeroizing;

use crate::error::CoreError;

/// Longest error explanation from a deep link that is shown, in characters.
const MAX_HANDOFF_REASON_CHARS: usize = 200;

/// The reason shown when the bank's error link carries no text that can be shown.
const BANK_GAVE_NO_REASON: &str = "the bank refused without giving a reason";

/// Where a new enrollment's identity comes from, as the phone starts it.
pub(crate) enum Start {
    /// The bank's app (a handoff).
    Bank(Bank),
    /// The eID website's identification code (canonical form).
    Eid(Zeroizing<String>),
    /// The counter: both factors are needed.
    Counter {
        /// The token of the e-mail's activation link.
        link_token: Zeroizing<String>,
        /// The activation code handed out at the counter (canonical form).
        code: Zeroizing<String>,
    },
}

impl Start {
    /// The identity source this start proves the identity with.
    pub(super) fn source(&self) -> IdentitySource {
        match self {
            Start::Bank(_) => IdentitySource::Bank,
            Start::Eid(_) => IdentitySource::Eid,
            Start::Counter { .. } => IdentitySource::Counter,
        }
    }
}

/// An identification code as typed, in canonical form, or [`CoreError::InvalidInput`] on
/// `identification_code`.
pub(crate) fn identification_code(typed: &str) -> Result<Zeroizing<String>, CoreError> {
    identity::normalize_identity_code(typed, IDENTIFICATION_CODE_LENGTH)
        .map(Zeroizing::new)
        .map_err(|e| CoreError::invalid("identification_code", e.to_string()))
}

/// The token of the counter e-mail's activation link the app was opened with
/// (`sleutel://enroll/counter?activation=...`); anything else, a link of the old form with the
/// code in it included, is [`CoreError::InvalidInput`] on `activation_link`.
pub(crate) fn activation_link(link: &str) -> Result<Zeroizing<String>, CoreError> {
    api::counter_activation_token(link)
        .map(Zeroizing::new)
        .map_err(|e| match e {
            ProtocolError::InvalidField { detail, .. } => {
                CoreError::invalid("activation_link", detail)
            }
            other => CoreError::invalid("activation_link", other.to_string()),
        })
}

/// The activation code as the person typed it, in canonical form, or [`CoreError::InvalidInput`]
/// on `activation_code`. A link is refused here: the code is the factor the official handed
/// out, and the e-mail must not be able to stand in for it.
pub(crate) fn activation_code(typed: &str) -> Result<Zeroizing<String>, CoreError> {
    let bad = |reason: &str| CoreError::invalid("activation_code", reason);
    if typed.contains("://") {
        return Err(bad(
            "type the activation code you received at the counter, not the e-mail's link",
        ));
    }
    identity::normalize_identity_code(typed, ACTIVATION_CODE_LENGTH)
        .map(Zeroizing::new)
        .map_err(|e| bad(&e.to_string()))
}

/// The counter's two factors, checked before anything is sent.
pub(crate) fn counter_start(link: &str, typed_code: &str) -> Result<Start, CoreError> {
    Ok(Start::Counter {
        link_token: activation_link(link)?,
        code: activation_code(typed_code)?,
    })
}

/// Checks the bank's return link for `enrollment_id` and returns the identity token it carries.
/// The link is `sleutel://enroll/bank?enrollment_id=...&identity_token=...`, or
/// `...?error=...&error_description=...` when the bank refused.
pub(crate) fn parse_bank_return(link: &str, enrollment_id: &str) -> Result<String, CoreError> {
    let refused = |reason: &str| CoreError::HandoffRefused {
        reason: reason.to_owned(),
    };
    let base = link.split(['?', '#']).next().unwrap_or_default();
    if base != api::DEEP_LINK_BANK_RETURN {
        return Err(refused("not a bank return link"));
    }
    let url = url::Url::parse(link).map_err(|_| refused("malformed link"))?;
    let mut params = std::collections::HashMap::new();
    for (name, value) in url.query_pairs() {
        // A repeated parameter could make two parsers disagree about the token: refuse it.
        if params
            .insert(name.into_owned(), value.into_owned())
            .is_some()
        {
            return Err(refused("a parameter is repeated"));
        }
    }
    if let Some(error) = params.get("error") {
        // Cleaned before the choice: a text of control or invisible characters cleans to
        // nothing, and the person must still be told something.
        let shown = |text: &String| {
            Some(clean_display_text(text, MAX_HANDOFF_REASON_CHARS)).filter(|t| !t.is_empty())
        };
        let reason = params
            .get("error_description")
            .and_then(shown)
            .or_else(|| shown(error))
            .unwrap_or_else(|| BANK_GAVE_NO_REASON.to_owned());
        return Err(refused(&reason));
    }
    if params.get("enrollment_id").map(String::as_str) != Some(enrollment_id) {
        return Err(refused("the link is for another enrollment"));
    }
    match params.remove("identity_token") {
        Some(token) if !token.is_empty() && token.len() <= MAX_JWS_BYTES => Ok(token),
        Some(_) => Err(refused("the identity token is empty or too large")),
        None => Err(refused("the link carries no identity token")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINK: &str = "sleutel://enroll/bank";

    fn refused(result: Result<String, CoreError>) -> bool {
        matches!(result, Err(CoreError::HandoffRefused { .. }))
    }

    #[test]
    fn bank_return_link_yields_the_identity_token() {
        let link = format!("{LINK}?enrollment_id=e1&identity_token=a.b.c");
        assert_eq!(parse_bank_return(&link, "e1"), Ok("a.b.c".into()));
    }

    /// A well-formed link token.
    const TOKEN: &str = "Q2xpY2sgdGhlIGxpbmsgYW5kIHR5cGUgdGhlIGNvZGU";

    fn invalid(result: Result<Start, CoreError>, field: &str) -> bool {
        matches!(result, Err(CoreError::InvalidInput { field: ref f, .. }) if f == field)
    }

    #[test]
    fn the_counter_takes_the_links_token_and_the_typed_code() {
        let link = format!("sleutel://enroll/counter?activation={TOKEN}");

        let start = counter_start(&link, "acde fghj-kmnp").unwrap();

        let Start::Counter { link_token, code } = start else {
            panic!("not a counter start");
        };
        assert_eq!(link_token.as_str(), TOKEN);
        assert_eq!(code.as_str(), "ACDEFGHJKMNP");
    }

    #[test]
    fn a_typed_code_that_is_a_link_is_refused() {
        let link = format!("sleutel://enroll/counter?activation={TOKEN}");
        for typed in [
            link.as_str(),
            "sleutel://enroll/counter?activation_code=ACDEFGHJKMNP",
        ] {
            assert!(
                invalid(counter_start(&link, typed), "activation_code"),
                "{typed}"
            );
        }
    }

    #[test]
    fn a_code_with_a_look_alike_or_of_another_length_is_refused() {
        let link = format!("sleutel://enroll/counter?activation={TOKEN}");
        for typed in [
            "ACDEFGHJKMN0",
            "ACDEFGHJKMNO",
            "ACDEFGHJKMN",
            "ACDEFGHJ",
            "",
        ] {
            assert!(
                invalid(counter_start(&link, typed), "activation_code"),
                "{typed}"
            );
        }
        assert!(identification_code("acde fghj").is_ok());
        assert!(identification_code("ACDEFGHJKMNP").is_err());
    }

    #[test]
    fn a_link_that_is_not_the_counters_or_has_two_tokens_is_refused() {
        for link in [
            format!("sleutel://enroll/bank?activation={TOKEN}"),
            format!("https://evil.example/?activation={TOKEN}"),
            format!("sleutel://enroll/counter?activation={TOKEN}&activation={TOKEN}"),
            "sleutel://enroll/counter?activation_code=ACDEFGHJKMNP".to_owned(),
            "sleutel://enroll/counter".to_owned(),
            "ACDE-FGHJ-KMNP".to_owned(),
        ] {
            assert!(
                invalid(counter_start(&link, "ACDEFGHJKMNP"), "activation_link"),
                "{link}"
            );
        }
    }

    #[test]
    fn link_with_another_scheme_or_path_is_refused() {
        for link in [
            "https://enroll/bank?enrollment_id=e1&identity_token=t",
            "sleutel://enroll/eid?enrollment_id=e1&identity_token=t",
            "sleutel://enroll/bank/x?enrollment_id=e1&identity_token=t",
            "not a link",
            "",
        ] {
            assert!(refused(parse_bank_return(link, "e1")), "{link}");
        }
    }

    #[test]
    fn link_with_an_error_shows_the_banks_reason() {
        let link = format!(
            "{LINK}?error=credit_card_refused&error_description=Credit%20cards%20cannot%20be%20used"
        );
        assert_eq!(
            parse_bank_return(&link, "e1"),
            Err(CoreError::HandoffRefused {
                reason: "Credit cards cannot be used".into()
            })
        );
        let link = format!("{LINK}?error=access_denied&enrollment_id=e1&identity_token=t");
        assert_eq!(
            parse_bank_return(&link, "e1"),
            Err(CoreError::HandoffRefused {
                reason: "access_denied".into()
            })
        );
    }

    #[test]
    fn a_bank_error_whose_text_cleans_to_nothing_still_gives_a_reason() {
        // Found by the `bank_return_link` fuzz target: an error of control characters was
        // shown as an empty reason (fuzz/seeds/bank_return_link/no-error-of-control-characters).
        for link in [
            format!("{LINK}?error=%00%00%00%00"),
            format!("{LINK}?error=%00&error_description=%E2%80%8B%00"),
        ] {
            assert_eq!(
                parse_bank_return(&link, "e1"),
                Err(CoreError::HandoffRefused {
                    reason: BANK_GAVE_NO_REASON.into()
                }),
                "{link}"
            );
        }
        // A description that cleans to nothing gives way to the error code.
        let link = format!("{LINK}?error=access_denied&error_description=%00%00");
        assert_eq!(
            parse_bank_return(&link, "e1"),
            Err(CoreError::HandoffRefused {
                reason: "access_denied".into()
            })
        );
    }

    #[test]
    fn link_for_another_enrollment_is_refused() {
        let link = format!("{LINK}?enrollment_id=e2&identity_token=t");
        assert!(refused(parse_bank_return(&link, "e1")));
        let link = format!("{LINK}?identity_token=t");
        assert!(refused(parse_bank_return(&link, "e1")));
    }

    #[test]
    fn link_without_a_token_is_refused() {
        assert!(refused(parse_bank_return(
            &format!("{LINK}?enrollment_id=e1"),
            "e1"
        )));
        assert!(refused(parse_bank_return(
            &format!("{LINK}?enrollment_id=e1&identity_token="),
            "e1"
        )));
    }

    #[test]
    fn link_with_a_repeated_token_is_refused() {
        let link = format!("{LINK}?enrollment_id=e1&identity_token=t&identity_token=u");
        assert!(refused(parse_bank_return(&link, "e1")));
    }
}
