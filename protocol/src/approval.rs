//! What an ID token says the person approved: the `sleutel_action` claim.
//!
//! Without it the ID token of a payment looks like the one of a login, and neither the relying
//! party nor anyone settling a dispute can tell from the token what the person confirmed. The
//! claim names the kind of request, points at the evidence the server keeps by the hash of the
//! signed request (the very value the phone's signatures cover), and repeats what the phone
//! showed that a relying party can compare with what it asked: the binding message, a
//! payment's fields, a digest of free text, a document's name and digest.
//!
//! It is one JSON object under a name of our own rather than several top-level claims, so that
//! none of its members can collide with a registered JWT or OpenID Connect claim (`txn` of
//! RFC 8417 is a transaction *identifier*; `authorization_details` of RFC 9396 has its own
//! structure for requests made with it; `kind` or `document` are free today, but not ours to
//! take), a relying party that does not know it ignores one member, and it changes as one
//! whole. RFC 7519 §4.3 leaves such private names to producer and consumer; the `sleutel_`
//! prefix keeps it clear of anyone else's.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::action::{
    self, ActionKind, ActionRequest, SignDocument, Transaction, shown_binding_message,
    shown_document,
};
use crate::{ProtocolError, Result, jose};

/// The name of the claim in the ID token.
pub const CLAIM: &str = "sleutel_action";

/// What the person approved, as the [`CLAIM`] claim of an ID token. Every value is taken from
/// the action request the server signed and the phone showed (the one whose hash the phone
/// signed), never from anything the relying party could change after the person answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovedAction {
    /// What the person approved: `login`, `share_data`, `confirm_transaction` or `sign`. A
    /// relying party must check it: the ID token of a login confirms no payment, and the one of
    /// a payment is no login.
    pub kind: ActionKind,
    /// base64url (no padding) of the SHA-256 of the action request's compact JWS, byte for byte
    /// as the server signed it and the phone received it. The phone's response carries and signs
    /// this same value (`request_hash` of [`crate::response::ActionResponse`]) with the device
    /// key and, for an approval, the code's or the biometric key, so it names the evidence the
    /// server keeps: the signed request and the phone's signed answer.
    pub request_hash: String,
    /// The binding message the phone showed with the request, when the relying party gave one
    /// (as shown: see [`action::shown_binding_message`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding_message: Option<String>,
    /// For `confirm_transaction`: the payment as shown, or the digest of the free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<ApprovedTransaction>,
    /// For `sign`: the document's name as shown and the SHA-256 of the document (64 lowercase
    /// hexadecimal digits) exactly as the relying party gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<SignDocument>,
}

/// The transaction of an [`ApprovedAction`], in the shape of the request's template (a `type`
/// member, `payment` or `free_text`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ApprovedTransaction {
    /// A payment, each field as the phone showed it.
    Payment {
        /// Amount, a decimal string with at most two decimals (`"125.50"`), as given.
        amount: String,
        /// ISO 4217 currency code, as given.
        currency: String,
        /// Payee name as shown (see [`action::shown_transaction`]).
        payee: String,
        /// Payee IBAN as given and shown, spaces included.
        iban: String,
    },
    /// Free text, by its digest: the text may have 7,500 characters, too many to repeat in every
    /// token, and the relying party has it.
    FreeText {
        /// SHA-256, as 64 lowercase hexadecimal digits, of the UTF-8 bytes of the text as the
        /// phone showed it: the `transaction.text` of the signed request, which is the relying
        /// party's `transaction_text` with invisible characters dropped, every run of white
        /// space (line breaks, tabs, spaces) folded to one space and both ends trimmed
        /// ([`action::shown_transaction`]); no terminating newline, no Unicode normalisation.
        text_sha256: String,
    },
}

/// SHA-256 of `text`'s UTF-8 bytes as 64 lowercase hexadecimal digits: the digest of free text
/// in [`ApprovedTransaction::FreeText`]. `text` must already be the text as shown.
pub fn free_text_sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

impl ApprovedTransaction {
    /// The approved form of a transaction taken from a signed request (whose text is already
    /// the text as shown).
    pub fn of(transaction: &Transaction) -> Self {
        match transaction {
            Transaction::Payment {
                amount,
                currency,
                payee,
                iban,
            } => ApprovedTransaction::Payment {
                amount: amount.clone(),
                currency: currency.clone(),
                payee: payee.clone(),
                iban: iban.clone(),
            },
            Transaction::FreeText { text } => ApprovedTransaction::FreeText {
                text_sha256: free_text_sha256(text),
            },
        }
    }
}

impl ApprovedAction {
    /// What an ID token says of `request`, the signed action request whose compact JWS is
    /// `request_jws` (the server's stored copy, which the phone showed and signed the hash of).
    pub fn of_request(request: &ActionRequest, request_jws: &str) -> Self {
        Self {
            kind: request.kind,
            request_hash: jose::sha256_b64(request_jws),
            binding_message: request.binding_message.clone(),
            transaction: request.transaction.as_ref().map(ApprovedTransaction::of),
            document: request.document.clone(),
        }
    }

    /// Checks, as a relying party does, that this is the approval of what it asked: the same
    /// kind, binding message, transaction and document, each compared in the form the phone
    /// shows what was asked (white space folded, invisible characters dropped; free text by
    /// its digest). The first difference is a [`ProtocolError::Mismatch`] naming the member.
    pub fn check_asked(
        &self,
        kind: ActionKind,
        binding_message: Option<&str>,
        transaction: Option<&Transaction>,
        document: Option<&SignDocument>,
    ) -> Result<()> {
        let differs = |what: &'static str, approved: String, asked: String| {
            Err(ProtocolError::mismatch(
                what,
                format!("the person approved {approved}, the relying party asked {asked}"),
            ))
        };
        if self.kind != kind {
            return differs(
                "sleutel_action.kind",
                format!("{:?}", self.kind),
                format!("{kind:?}"),
            );
        }
        let message = binding_message.map(shown_binding_message);
        if self.binding_message != message {
            return differs(
                "sleutel_action.binding_message",
                format!("{:?}", self.binding_message),
                format!("{message:?}"),
            );
        }
        let transaction =
            transaction.map(|t| ApprovedTransaction::of(&action::shown_transaction(t)));
        if self.transaction != transaction {
            return differs(
                "sleutel_action.transaction",
                format!("{:?}", self.transaction),
                format!("{transaction:?}"),
            );
        }
        let document = document.map(shown_document);
        if self.document != document {
            return differs(
                "sleutel_action.document",
                format!("{:?}", self.document),
                format!("{document:?}"),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::{RelyingParty, UserVerification};

    fn request(kind: ActionKind) -> ActionRequest {
        ActionRequest {
            iss: "http://server".into(),
            aud: "acct".into(),
            jti: "req".into(),
            iat: 0,
            exp: 300,
            rp: RelyingParty {
                id: "online-overheid".into(),
                name: "Online overheid".into(),
            },
            kind,
            text: "Ik log in op de online overheid".into(),
            claims: vec![],
            optional_claims: vec![],
            binding_message: None,
            uv: UserVerification::Pin,
            number_options: None,
            transaction: None,
            document: None,
        }
    }

    fn payment() -> Transaction {
        Transaction::Payment {
            amount: "125.50".into(),
            currency: "EUR".into(),
            payee: "Stad Gent".into(),
            iban: "BE68 5390 0754 7034".into(),
        }
    }

    #[test]
    fn a_payment_approval_names_kind_hash_message_and_the_payment_on_the_wire() {
        let mut r = request(ActionKind::ConfirmTransaction);
        r.binding_message = Some("AB12".into());
        r.transaction = Some(payment());

        let approved = ApprovedAction::of_request(&r, "h.p.s");

        assert_eq!(
            serde_json::to_value(&approved).unwrap(),
            serde_json::json!({
                "kind": "confirm_transaction",
                "request_hash": jose::sha256_b64("h.p.s"),
                "binding_message": "AB12",
                "transaction": {
                    "type": "payment",
                    "amount": "125.50",
                    "currency": "EUR",
                    "payee": "Stad Gent",
                    "iban": "BE68 5390 0754 7034"
                }
            })
        );
    }

    #[test]
    fn a_login_approval_carries_no_transaction_or_document() {
        let approved = ApprovedAction::of_request(&request(ActionKind::Login), "h.p.s");

        assert_eq!(
            serde_json::to_value(&approved).unwrap(),
            serde_json::json!({"kind": "login", "request_hash": jose::sha256_b64("h.p.s")})
        );
    }

    #[test]
    fn free_text_is_approved_by_the_lowercase_hex_sha256_of_its_utf8_bytes() {
        let mut r = request(ActionKind::ConfirmTransaction);
        r.transaction = Some(Transaction::FreeText { text: "abc".into() });

        let approved = ApprovedAction::of_request(&r, "h.p.s");

        // FIPS 180-2 test vector for "abc".
        assert_eq!(
            approved.transaction,
            Some(ApprovedTransaction::FreeText {
                text_sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
                    .into()
            })
        );
    }

    #[test]
    fn free_text_asked_with_line_breaks_matches_the_digest_of_the_folded_text() {
        let asked = Transaction::FreeText {
            text: "Huur mei\n\tKerkstraat  12 ".into(),
        };
        let mut r = request(ActionKind::ConfirmTransaction);
        r.transaction = Some(action::shown_transaction(&asked));
        let approved = ApprovedAction::of_request(&r, "h.p.s");

        assert_eq!(
            approved.transaction,
            Some(ApprovedTransaction::FreeText {
                text_sha256: free_text_sha256("Huur mei Kerkstraat 12")
            })
        );
        assert_eq!(
            approved.check_asked(ActionKind::ConfirmTransaction, None, Some(&asked), None),
            Ok(())
        );
    }

    #[test]
    fn the_approval_of_a_login_does_not_pass_for_a_payment() {
        let approved = ApprovedAction::of_request(&request(ActionKind::Login), "h.p.s");

        let checked =
            approved.check_asked(ActionKind::ConfirmTransaction, None, Some(&payment()), None);

        assert!(matches!(
            checked,
            Err(ProtocolError::Mismatch {
                what: "sleutel_action.kind",
                ..
            })
        ));
    }

    #[test]
    fn a_payment_to_another_iban_or_another_message_does_not_pass() {
        let mut r = request(ActionKind::ConfirmTransaction);
        r.binding_message = Some("AB12".into());
        r.transaction = Some(payment());
        let approved = ApprovedAction::of_request(&r, "h.p.s");
        let other = Transaction::Payment {
            amount: "125.50".into(),
            currency: "EUR".into(),
            payee: "Stad Gent".into(),
            iban: "BE71 0961 2345 6769".into(),
        };

        let other_iban = approved.check_asked(
            ActionKind::ConfirmTransaction,
            Some("AB12"),
            Some(&other),
            None,
        );
        let other_message = approved.check_asked(
            ActionKind::ConfirmTransaction,
            Some("ZZ99"),
            Some(&payment()),
            None,
        );

        assert!(matches!(
            other_iban,
            Err(ProtocolError::Mismatch {
                what: "sleutel_action.transaction",
                ..
            })
        ));
        assert!(matches!(
            other_message,
            Err(ProtocolError::Mismatch {
                what: "sleutel_action.binding_message",
                ..
            })
        ));
        assert_eq!(
            approved.check_asked(
                ActionKind::ConfirmTransaction,
                Some("AB12"),
                Some(&payment()),
                None
            ),
            Ok(())
        );
    }

    #[test]
    fn a_signature_approval_carries_the_document_name_and_digest() {
        let document = SignDocument {
            name: "Huurcontract.pdf".into(),
            sha256: "ab".repeat(32),
        };
        let mut r = request(ActionKind::Sign);
        r.document = Some(document.clone());

        let approved = ApprovedAction::of_request(&r, "h.p.s");

        assert_eq!(approved.document, Some(document.clone()));
        let other = SignDocument {
            sha256: "cd".repeat(32),
            ..document
        };
        assert!(matches!(
            approved.check_asked(ActionKind::Sign, None, None, Some(&other)),
            Err(ProtocolError::Mismatch {
                what: "sleutel_action.document",
                ..
            })
        ));
    }
}
