//! The action request: what the server asks the person to confirm on the phone.
//!
//! It is an ES256 compact JWS of type [`ACTION_TYP`] signed by the server key the phone pinned at
//! enrollment. A request whose signature, issuer, audience or lifetime does not check out must
//! never be shown to the person.

use serde::{Deserialize, Serialize};

use crate::jose::{self, UnverifiedJws};
use crate::limits::{
    CLOCK_SKEW_SECS, MAX_ACTION_LIFETIME_SECS, MAX_ACTION_TEXT_CHARS, MAX_BINDING_MESSAGE_CHARS,
    MAX_DOCUMENT_NAME_CHARS, MAX_IBAN_CHARS, MAX_ID_CHARS, MAX_RP_NAME_CHARS,
};
use crate::{ProtocolError, Result, api, display};
use p256::ecdsa::VerifyingKey;

/// The `typ` of an action request.
pub const ACTION_TYP: &str = "sleutel-action+jwt";

/// What kind of confirmation is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum ActionKind {
    /// Log in to an online service.
    Login,
    /// Share identity data with a service.
    ShareData,
    /// Confirm a transaction.
    ConfirmTransaction,
    /// Sign a document.
    Sign,
}

/// Which user verification the relying party accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserVerification {
    /// Only the 5-digit code.
    Pin,
    /// The code or a biometric check.
    PinOrBiometric,
}

/// The relying party as the person sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelyingParty {
    /// Stable client id.
    pub id: String,
    /// Display name.
    pub name: String,
}

/// A what-you-see-is-what-you-sign template for a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum Transaction {
    /// A payment.
    Payment {
        /// Amount as a decimal string with at most two decimals (`"12.50"`).
        amount: String,
        /// ISO 4217 currency code.
        currency: String,
        /// Payee name.
        payee: String,
        /// Payee IBAN, checked with mod-97.
        iban: String,
    },
    /// Free text to confirm.
    FreeText {
        /// The text (at most 7,500 characters).
        text: String,
    },
}

/// A document to sign: what the person sees (its name) and what the signature covers (the
/// SHA-256 digest the relying party computed over the document's bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct SignDocument {
    /// The document's name as the person knows it ("Huurcontract Kerkstraat 12.pdf").
    pub name: String,
    /// SHA-256 of the document, 64 lowercase hexadecimal digits.
    pub sha256: String,
}

impl SignDocument {
    /// Checks the name (printable, at most [`MAX_DOCUMENT_NAME_CHARS`]) and the digest (64
    /// lowercase hex digits).
    pub fn validate(&self) -> Result<()> {
        check_text("document.name", &self.name, MAX_DOCUMENT_NAME_CHARS)?;
        if !is_sha256_hex(&self.sha256) {
            return Err(ProtocolError::invalid(
                "document.sha256",
                "64 lowercase hexadecimal digits",
            ));
        }
        Ok(())
    }
}

/// Whether `digest` is a SHA-256 digest written as 64 lowercase hexadecimal digits.
pub fn is_sha256_hex(digest: &str) -> bool {
    digest.len() == 64
        && digest
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The claims of an action request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// The server (its base URL).
    pub iss: String,
    /// The account the request is for.
    pub aud: String,
    /// The request id.
    pub jti: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// Who asks.
    pub rp: RelyingParty,
    /// What kind of confirmation.
    pub kind: ActionKind,
    /// The sentence to show ("Ik log in op de online overheid").
    pub text: String,
    /// Identity claims the relying party requires (`name`, `birthdate`, ...): refusing one of
    /// them declines the request.
    #[serde(default)]
    pub claims: Vec<String>,
    /// Identity claims the relying party would like but does without: the person may leave
    /// each of them out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub optional_claims: Vec<String>,
    /// The binding message the relying party also shows, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding_message: Option<String>,
    /// Which user verification is accepted.
    pub uv: UserVerification,
    /// Number-matching options, when the relying party shows a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_options: Option<Vec<u8>>,
    /// The transaction template, for `confirm_transaction`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<Transaction>,
    /// The document, for `sign`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<SignDocument>,
}

/// Longest free transaction text, in characters.
pub const MAX_TRANSACTION_TEXT_CHARS: usize = 7_500;

/// Most identity claims one request may ask for: the identity has about a dozen attributes, and
/// the person must be able to read the whole list before consenting.
pub const MAX_CLAIMS: usize = 16;

/// Longest claim name (`name`, `birthdate`, `national_register_number`, ...).
pub const MAX_CLAIM_CHARS: usize = 64;

impl ActionRequest {
    /// Checks every field that can be checked without the server key: lifetime, ids, lengths,
    /// printable text, transaction template.
    pub fn validate(&self, now: i64) -> Result<()> {
        // The request and account ids go into URL paths on the phone: base64url only.
        for (field, id) in [("aud", &self.aud), ("jti", &self.jti)] {
            if !api::is_valid_id(id) {
                return Err(ProtocolError::invalid(
                    field,
                    "not a base64url id of at most 64 characters",
                ));
            }
        }
        // Client ids may carry dots (registered names such as `bank.example`).
        if self.rp.id.is_empty() || self.rp.id.len() > MAX_ID_CHARS {
            return Err(ProtocolError::invalid("rp.id", "empty or too long"));
        }
        if self.exp <= now {
            return Err(ProtocolError::Expired("action request"));
        }
        if self.iat > now + CLOCK_SKEW_SECS {
            return Err(ProtocolError::NotYetValid("action request"));
        }
        // Both times come from the wire: their difference can exceed an i64 (an `iat` far in
        // the past with an `exp` far in the future), which is a lifetime out of range, not an
        // overflow.
        if self.exp <= self.iat
            || self
                .exp
                .checked_sub(self.iat)
                .is_none_or(|lifetime| lifetime > MAX_ACTION_LIFETIME_SECS)
        {
            return Err(ProtocolError::invalid("exp", "lifetime out of range"));
        }
        check_text("rp.name", &self.rp.name, MAX_RP_NAME_CHARS)?;
        check_text("text", &self.text, MAX_ACTION_TEXT_CHARS)?;
        if let Some(message) = &self.binding_message {
            check_text("binding_message", message, MAX_BINDING_MESSAGE_CHARS)?;
        }
        let all_claims = || self.claims.iter().chain(&self.optional_claims);
        if self.claims.len() + self.optional_claims.len() > MAX_CLAIMS
            || all_claims().any(|c| c.is_empty() || c.len() > MAX_CLAIM_CHARS)
        {
            return Err(ProtocolError::invalid("claims", "too many or malformed"));
        }
        // A claim both required and optional would make the consent screen contradict itself.
        if all_claims()
            .enumerate()
            .any(|(i, c)| all_claims().skip(i + 1).any(|d| d == c))
        {
            return Err(ProtocolError::invalid("claims", "a claim is asked twice"));
        }
        if let Some(options) = &self.number_options
            && (options.len() != 3 || options.iter().any(|n| *n > 99))
        {
            return Err(ProtocolError::invalid(
                "number_options",
                "three numbers 0-99",
            ));
        }
        if let Some(transaction) = &self.transaction {
            transaction.validate()?;
        }
        if let Some(document) = &self.document {
            document.validate()?;
        }
        // What the person confirms must be on the screen: a transaction confirmation carries
        // its template and a signature its document, and nothing else carries either.
        if (self.kind == ActionKind::ConfirmTransaction) != self.transaction.is_some() {
            return Err(ProtocolError::invalid(
                "transaction",
                "present exactly for confirm_transaction",
            ));
        }
        if (self.kind == ActionKind::Sign) != self.document.is_some() {
            return Err(ProtocolError::invalid(
                "document",
                "present exactly for sign",
            ));
        }
        Ok(())
    }

    /// Every claim asked for, required ones first.
    pub fn all_claims(&self) -> Vec<String> {
        self.claims
            .iter()
            .chain(&self.optional_claims)
            .cloned()
            .collect()
    }
}

impl Transaction {
    /// Checks amount, currency and IBAN, or the length of free text.
    pub fn validate(&self) -> Result<()> {
        match self {
            Transaction::Payment {
                amount,
                currency,
                payee,
                iban,
            } => {
                check_amount(amount)?;
                if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(ProtocolError::invalid("currency", "ISO 4217 code"));
                }
                check_text("payee", payee, MAX_RP_NAME_CHARS)?;
                check_iban(iban)
            }
            Transaction::FreeText { text } => {
                check_text("transaction.text", text, MAX_TRANSACTION_TEXT_CHARS)
            }
        }
    }
}

/// Refuses text over `max` characters, or that once cleaned for display has no letter or digit:
/// nothing but invisible or blank-looking characters would show an empty line, and nothing but
/// punctuation or symbols ("—", ".") names nobody. Both ends apply it, so the phone refuses such
/// a request as untrusted even if a server let it through.
fn check_text(field: &'static str, text: &str, max: usize) -> Result<()> {
    if text.chars().count() > max
        || !display::has_letter_or_digit(&display::clean_display_text(text, max))
    {
        return Err(ProtocolError::invalid(
            field,
            format!("blank or over {max} characters"),
        ));
    }
    Ok(())
}

fn check_amount(amount: &str) -> Result<()> {
    let bad = || ProtocolError::invalid("amount", format!("{amount:?} is not a positive amount"));
    let (whole, cents) = amount.split_once('.').unwrap_or((amount, ""));
    if whole.is_empty()
        || whole.len() > 12
        || cents.len() > 2
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !cents.bytes().all(|b| b.is_ascii_digit())
        || (amount.contains('.') && cents.is_empty())
    {
        return Err(bad());
    }
    if whole.bytes().all(|b| b == b'0') && cents.bytes().all(|b| b == b'0') {
        return Err(bad());
    }
    Ok(())
}

/// Checks an IBAN with the ISO 13616 mod-97 rule (spaces allowed).
pub fn check_iban(iban: &str) -> Result<()> {
    let bad = || ProtocolError::invalid("iban", "not a valid IBAN");
    // Only spaces are left out of the check; the IBAN is shown as written, so it is bounded as
    // written, and a space only ever separates two characters.
    if iban.len() > MAX_IBAN_CHARS
        || iban.starts_with(' ')
        || iban.ends_with(' ')
        || iban.contains("  ")
    {
        return Err(bad());
    }
    let compact: String = iban.chars().filter(|c| *c != ' ').collect();
    if !(15..=34).contains(&compact.len()) || !compact.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(bad());
    }
    let rearranged = format!("{}{}", &compact[4..], &compact[..4]);
    let mut remainder: u32 = 0;
    for c in rearranged.chars() {
        let value = c.to_digit(36).ok_or_else(bad)?;
        if c.is_ascii_lowercase() {
            return Err(bad());
        }
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    if remainder == 1 { Ok(()) } else { Err(bad()) }
}

/// A verified action request together with the exact JWS it came in (the response is bound to
/// the SHA-256 of that string).
#[derive(Debug, Clone)]
pub struct VerifiedAction {
    /// The claims.
    pub request: ActionRequest,
    /// The compact JWS as received.
    pub jws: String,
}

/// Verifies an action request JWS with the pinned server key and checks issuer, audience and
/// every field.
pub fn verify_action(
    jws: &str,
    server_key: &VerifyingKey,
    expected_iss: &str,
    expected_aud: &str,
    now: i64,
) -> Result<VerifiedAction> {
    let payload = UnverifiedJws::parse(jws, "action request")?.verify(
        server_key,
        ACTION_TYP,
        "action request",
    )?;
    let request: ActionRequest = jose::parse_claims(&payload, "action request")?;
    if request.iss != expected_iss {
        return Err(ProtocolError::mismatch("action.iss", request.iss));
    }
    if request.aud != expected_aud {
        return Err(ProtocolError::mismatch(
            "action.aud",
            "request is for another account",
        ));
    }
    request.validate(now)?;
    Ok(VerifiedAction {
        request,
        jws: jws.to_owned(),
    })
}

/// The key id a request JWS names, to choose among pinned server keys.
pub fn action_kid(jws: &str) -> Result<Option<String>> {
    Ok(UnverifiedJws::parse(jws, "action request")?.header.kid)
}

/// Cleans every field of a request that is shown to the person (see [`display`]): the relying
/// party, the text, the binding message, the claims asked for and the transaction's payee or
/// free text. Used by both ends: the server before it signs, the phone before it shows.
pub fn clean_for_display(request: &mut ActionRequest) {
    use display::clean_display_text as clean;
    request.rp.id = clean(&request.rp.id, MAX_ID_CHARS);
    request.rp.name = clean(&request.rp.name, MAX_RP_NAME_CHARS);
    request.text = clean(&request.text, MAX_ACTION_TEXT_CHARS);
    // A binding message that cleans to nothing is not shown at all, rather than as an empty
    // box (`validate` refuses one, so only a request that skipped it gets here).
    request.binding_message = request
        .binding_message
        .as_deref()
        .map(shown_binding_message)
        .filter(|message| !message.is_empty());
    for claim in request
        .claims
        .iter_mut()
        .chain(request.optional_claims.iter_mut())
    {
        *claim = clean(claim, MAX_CLAIM_CHARS);
    }
    request.document = request.document.as_ref().map(shown_document);
    request.transaction = request.transaction.as_ref().map(shown_transaction);
}

/// A binding message as the phone shows it ([`display::clean_display_text`]).
pub fn shown_binding_message(message: &str) -> String {
    display::clean_display_text(message, MAX_BINDING_MESSAGE_CHARS)
}

/// A document as the phone shows it: the name cleaned, the digest as given.
pub fn shown_document(document: &SignDocument) -> SignDocument {
    SignDocument {
        name: display::clean_display_text(&document.name, MAX_DOCUMENT_NAME_CHARS),
        sha256: document.sha256.clone(),
    }
}

/// A transaction as the phone shows it: the payee or the free text cleaned (white space folded
/// to single spaces, trimmed, invisible characters dropped); amount, currency and IBAN as given.
pub fn shown_transaction(transaction: &Transaction) -> Transaction {
    use display::clean_display_text as clean;
    match transaction {
        Transaction::Payment {
            amount,
            currency,
            payee,
            iban,
        } => Transaction::Payment {
            amount: amount.clone(),
            currency: currency.clone(),
            payee: clean(payee, MAX_RP_NAME_CHARS),
            iban: iban.clone(),
        },
        Transaction::FreeText { text } => Transaction::FreeText {
            text: clean(text, MAX_TRANSACTION_TEXT_CHARS),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::{Header, sign_compact};
    use p256::ecdsa::SigningKey;
    use p256::elliptic_curve::Generate;

    const NOW: i64 = 1_800_000_000;

    fn request() -> ActionRequest {
        ActionRequest {
            iss: "http://server".into(),
            aud: "acct".into(),
            jti: "req".into(),
            iat: NOW,
            exp: NOW + 300,
            rp: RelyingParty {
                id: "online-overheid".into(),
                name: "Online overheid".into(),
            },
            kind: ActionKind::Login,
            text: "Ik log in op de online overheid".into(),
            claims: vec!["name".into()],
            binding_message: Some("AB12".into()),
            uv: UserVerification::Pin,
            number_options: None,
            transaction: None,
            optional_claims: vec![],
            document: None,
        }
    }

    fn signed(key: &SigningKey, r: &ActionRequest) -> String {
        sign_compact(
            &Header::es256(ACTION_TYP),
            &serde_json::to_vec(r).unwrap(),
            key,
        )
        .unwrap()
    }

    #[test]
    fn a_lifetime_too_large_for_an_i64_is_refused_not_overflowed() {
        // `exp - iat` overflowed here (a panic in debug builds, across the FFI on a phone) for
        // an `iat` far in the past; fuzz/seeds/action_request keeps such a request.
        let mut r = request();
        (r.iat, r.exp) = (i64::MIN, i64::MAX);
        assert_eq!(
            r.validate(NOW),
            Err(ProtocolError::invalid("exp", "lifetime out of range"))
        );
        (r.iat, r.exp) = (-1, i64::MAX);
        assert_eq!(
            r.validate(NOW),
            Err(ProtocolError::invalid("exp", "lifetime out of range"))
        );
    }

    #[test]
    fn valid_request_verifies() {
        let key = SigningKey::generate();
        let jws = signed(&key, &request());
        let v = verify_action(&jws, key.verifying_key(), "http://server", "acct", NOW).unwrap();
        assert_eq!(v.request, request());
    }

    #[test]
    fn other_account_other_key_and_expiry_are_refused() {
        let key = SigningKey::generate();
        let jws = signed(&key, &request());
        assert!(matches!(
            verify_action(&jws, key.verifying_key(), "http://server", "other", NOW),
            Err(ProtocolError::Mismatch { .. })
        ));
        let other = SigningKey::generate();
        assert!(matches!(
            verify_action(&jws, other.verifying_key(), "http://server", "acct", NOW),
            Err(ProtocolError::BadSignature(_))
        ));
        assert!(matches!(
            verify_action(
                &jws,
                key.verifying_key(),
                "http://server",
                "acct",
                NOW + 301
            ),
            Err(ProtocolError::Expired(_))
        ));
    }

    #[test]
    fn a_request_id_that_would_change_a_url_path_is_refused() {
        let mut r = request();
        r.jti = "../enrollments/x/complete?".into();
        assert!(matches!(
            r.validate(NOW),
            Err(ProtocolError::InvalidField { field: "jti", .. })
        ));
    }

    #[test]
    fn text_of_only_invisible_characters_is_refused() {
        let mut r = request();
        r.text = "\u{200B}\u{202E} \u{FEFF}".into();
        assert!(matches!(
            r.validate(NOW),
            Err(ProtocolError::InvalidField { field: "text", .. })
        ));
    }

    fn payment_to(payee: &str) -> ActionRequest {
        let mut r = request();
        r.kind = ActionKind::ConfirmTransaction;
        r.transaction = Some(Transaction::Payment {
            amount: "100.00".into(),
            currency: "EUR".into(),
            payee: payee.into(),
            iban: "BE68 5390 0754 7034".into(),
        });
        r
    }

    #[test]
    fn a_payee_of_braille_blanks_is_refused() {
        assert!(payment_to("Stad Gent").validate(NOW).is_ok());
        assert!(matches!(
            payment_to("\u{2800}").validate(NOW),
            Err(ProtocolError::InvalidField { field: "payee", .. })
        ));
    }

    #[test]
    fn a_payee_of_only_punctuation_is_refused() {
        for payee in [".", "—", "- -"] {
            assert!(
                matches!(
                    payment_to(payee).validate(NOW),
                    Err(ProtocolError::InvalidField { field: "payee", .. })
                ),
                "{payee:?}"
            );
        }
    }

    #[test]
    fn a_braille_blank_binding_message_is_refused() {
        let mut r = request();
        r.binding_message = Some("\u{2800}\u{2800}".into());
        assert!(matches!(
            r.validate(NOW),
            Err(ProtocolError::InvalidField {
                field: "binding_message",
                ..
            })
        ));
    }

    #[test]
    fn a_signed_request_with_a_blank_payee_is_refused_by_the_phone() {
        let key = SigningKey::generate();
        let jws = signed(&key, &payment_to("\u{2800}"));
        assert!(matches!(
            verify_action(&jws, key.verifying_key(), "http://server", "acct", NOW),
            Err(ProtocolError::InvalidField { field: "payee", .. })
        ));
    }

    #[test]
    fn a_binding_message_that_cleans_to_nothing_is_not_shown() {
        let mut r = request();
        r.binding_message = Some("\u{2800}\u{200B}".into());
        clean_for_display(&mut r);
        assert_eq!(r.binding_message, None);
    }

    #[test]
    fn cleaning_for_display_covers_claims_and_the_transaction() {
        let mut r = request();
        r.rp.id = "online\u{200B}-overheid".into();
        r.kind = ActionKind::ConfirmTransaction;
        r.claims = vec!["na\u{202E}me".into()];
        r.transaction = Some(Transaction::Payment {
            amount: "12.50".into(),
            currency: "EUR".into(),
            payee: "Bank\u{202E}\u{200B} of Trust".into(),
            iban: "BE68 5390 0754 7034".into(),
        });
        clean_for_display(&mut r);
        assert_eq!(r.rp.id, "online-overheid");
        assert_eq!(r.claims, vec!["name".to_string()]);
        assert_eq!(
            r.transaction,
            Some(Transaction::Payment {
                amount: "12.50".into(),
                currency: "EUR".into(),
                payee: "Bank of Trust".into(),
                iban: "BE68 5390 0754 7034".into(),
            })
        );

        r.transaction = Some(Transaction::FreeText {
            text: "Pay\u{2066} now\u{2069}".into(),
        });
        clean_for_display(&mut r);
        assert_eq!(
            r.transaction,
            Some(Transaction::FreeText {
                text: "Pay now".into()
            })
        );
    }

    #[test]
    fn a_signature_request_carries_a_document_with_a_sha256_digest() {
        let mut r = request();
        r.kind = ActionKind::Sign;
        assert!(r.validate(NOW).is_err());
        r.document = Some(SignDocument {
            name: "Huurcontract.pdf".into(),
            sha256: "ab".repeat(32),
        });
        assert!(r.validate(NOW).is_ok());
        r.document = Some(SignDocument {
            name: "Huurcontract.pdf".into(),
            sha256: "AB".repeat(32),
        });
        assert!(r.validate(NOW).is_err());
    }

    #[test]
    fn a_transaction_template_belongs_only_to_a_transaction_confirmation() {
        let mut r = request();
        r.transaction = Some(Transaction::FreeText { text: "x".into() });
        assert!(r.validate(NOW).is_err());
        r.kind = ActionKind::ConfirmTransaction;
        assert!(r.validate(NOW).is_ok());
    }

    #[test]
    fn a_claim_both_required_and_optional_is_refused() {
        let mut r = request();
        r.optional_claims = vec!["name".into()];
        assert!(r.validate(NOW).is_err());
    }

    #[test]
    fn iban_mod97() {
        assert!(check_iban("BE68 5390 0754 7034").is_ok());
        assert!(check_iban("BE68 5390 0754 7035").is_err());
        assert!(check_iban("be68539007547034").is_err());
    }

    #[test]
    fn an_iban_is_bounded_as_written() {
        assert!(check_iban("BE68539007547034").is_ok());
        let padded = format!("BE68 5390 0754{}7034", " ".repeat(5_000));
        assert!(check_iban(&padded).is_err());
        for bad in [
            " BE68 5390 0754 7034",
            "BE68 5390 0754 7034 ",
            "BE68  5390 0754 7034",
        ] {
            assert!(check_iban(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn amounts() {
        for ok in ["1", "12.5", "12.50", "0.01"] {
            assert!(check_amount(ok).is_ok(), "{ok}");
        }
        for bad in ["", "0", "0.00", "-1", "1.", "1.234", "1e3", "abc"] {
            assert!(check_amount(bad).is_err(), "{bad}");
        }
    }
}
