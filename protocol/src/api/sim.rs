//! The simulators' paths and JSON bodies (`/sim/...`): citizens with their cards, the eID
//! website, the counter, the block page, a bank's authorize form, and the SMS, e-mail and push
//! outboxes. Only the reference server and the harness use them (feature `sim`): they stand in
//! for parties a real deployment talks to in other ways, and the phone library is built without
//! them.

use serde::{Deserialize, Serialize};

use super::{PushMessage, REDACTED};
use crate::identity::{Bank, IdentitySource};

/// Simulator, eID website: identification token and card reading (POST [`EidIdentification`]
/// -> [`IdentificationCodeIssued`]).
pub const PATH_EID_IDENTIFICATION: &str = "/sim/eid/identification";
/// Simulator, counter: an official checked the person's identity (POST [`CounterActivation`]
/// -> [`ActivationCodeIssued`]); an e-mail with the activation link follows.
pub const PATH_COUNTER_ACTIVATION: &str = "/sim/counter/activation";
/// Simulator: the e-mail outbox (GET `?email=...` -> [`EmailOutbox`]).
pub const PATH_EMAIL: &str = "/sim/outbox/email";
/// Simulator: the "block my key" page for a lost phone (POST [`BlockMyKey`] -> [`KeyBlocked`]).
pub const PATH_BLOCK: &str = "/sim/block-my-key";
/// Simulator: revoke an eID card, as the register does for a card reported lost (POST, empty).
pub fn path_eid_card_revoke(serial: &str) -> String {
    format!("/sim/eid/cards/{serial}/revoke")
}
/// Simulator: create a citizen (POST [`NewCitizen`] -> [`Citizen`]).
pub const PATH_CITIZENS: &str = "/sim/citizens";
/// Simulator: the SMS outbox (GET `?phone_number=...` -> [`SmsOutbox`]).
pub const PATH_SMS: &str = "/sim/outbox/sms";
/// Simulator: the push outbox (GET `?account_id=...&after=SEQ` -> [`PushOutbox`]).
pub const PATH_PUSH: &str = "/sim/outbox/push";
/// Simulator: a bank's authorize page. GET shows a form; POST [`BankAuthorize`] as a form
/// answers `303 See Other` to the app's deep link with an identity token, or a JSON error.
pub fn path_bank_authorize(bank: Bank) -> String {
    format!("/sim/bank/{}/authorize", bank.id())
}

/// One entry of the push outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushOutboxEntry {
    /// Sequence number, increasing.
    pub seq: i64,
    /// The message.
    pub message: PushMessage,
}

/// The push outbox for one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushOutbox {
    /// Entries after the asked sequence number, oldest first.
    pub messages: Vec<PushOutboxEntry>,
}

/// One SMS in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsMessage {
    /// Recipient.
    pub phone_number: String,
    /// Text as the person reads it.
    pub text: String,
    /// When it was sent (Unix seconds).
    pub sent_at: i64,
}

/// The SMS outbox for one number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsOutbox {
    /// Messages, oldest first.
    pub messages: Vec<SmsMessage>,
}

/// Body of `POST /sim/citizens`. Missing fields are made up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCitizen {
    /// Given name.
    #[serde(default)]
    pub given_name: Option<String>,
    /// Family name.
    #[serde(default)]
    pub family_name: Option<String>,
    /// Birth date `YYYY-MM-DD`.
    #[serde(default)]
    pub birthdate: Option<String>,
    /// The bank holding the citizen's cards (KBC if absent).
    #[serde(default)]
    pub bank: Option<Bank>,
    /// Last day the eID card is valid, `YYYY-MM-DD` (ten years from today if absent); a date
    /// in the past makes an expired card.
    #[serde(default)]
    pub eid_valid_until: Option<String>,
}

/// The eID card of a simulated citizen.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EidCard {
    /// Card number (serial), 12 digits.
    pub serial: String,
    /// Card PIN, 4 digits (simulation only).
    pub pin: String,
    /// Last day of validity, `YYYY-MM-DD`.
    pub valid_until: String,
}

impl std::fmt::Debug for EidCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EidCard")
            .field("serial", &self.serial)
            .field("pin", &REDACTED)
            .field("valid_until", &self.valid_until)
            .finish()
    }
}

/// Body of `POST /sim/eid/identification`: the person creates an identification token with a
/// phone number and an e-mail address, then reads the eID in a card reader with its PIN.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EidIdentification {
    /// The phone number the code will be bound to.
    pub phone_number: String,
    /// The person's e-mail address.
    pub email: String,
    /// The eID card serial.
    pub card_serial: String,
    /// The eID PIN.
    pub card_pin: String,
}

impl std::fmt::Debug for EidIdentification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EidIdentification")
            .field("phone_number", &self.phone_number)
            .field("card_serial", &self.card_serial)
            .field("card_pin", &REDACTED)
            .finish_non_exhaustive()
    }
}

/// The identification code to type into the app.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentificationCodeIssued {
    /// The code, grouped for display (`ACDE-FGHJ`).
    pub identification_code: String,
    /// When it expires (Unix seconds).
    pub expires_at: i64,
}

impl std::fmt::Debug for IdentificationCodeIssued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentificationCodeIssued")
            .field("identification_code", &REDACTED)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Body of `POST /sim/counter/activation`: what the official enters after checking the person's
/// identity document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterActivation {
    /// The national register number of the person at the counter.
    pub national_register_number: String,
    /// The identity document the official checked (card number), recorded as evidence.
    pub document_number: String,
    /// The person's e-mail address, where the activation link goes.
    pub email: String,
}

/// The activation code the official hands out; the e-mail with the link is in the outbox.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationCodeIssued {
    /// The code, grouped for display (`ACDE-FGHJ-KMNP`).
    pub activation_code: String,
    /// When code and link expire (Unix seconds).
    pub expires_at: i64,
}

impl std::fmt::Debug for ActivationCodeIssued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActivationCodeIssued")
            .field("activation_code", &REDACTED)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// One e-mail in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailMessage {
    /// Recipient.
    pub email: String,
    /// Subject.
    pub subject: String,
    /// Text as the person reads it.
    pub text: String,
    /// When it was sent (Unix seconds).
    pub sent_at: i64,
}

/// The e-mail outbox for one address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailOutbox {
    /// Messages, oldest first.
    pub messages: Vec<EmailMessage>,
}

/// Body of `POST /sim/block-my-key`: the person proves their identity through any source and
/// blocks their digital key (the phone was lost or stolen).
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockMyKey {
    /// How the identity is proven.
    pub source: Option<IdentitySource>,
    /// Bank: the debit card number.
    #[serde(default)]
    pub card_number: Option<String>,
    /// eID: the card serial.
    #[serde(default)]
    pub card_serial: Option<String>,
    /// Bank or eID: the card PIN.
    #[serde(default)]
    pub card_pin: Option<String>,
    /// Counter: the activation code the official handed out (used up by the block), with
    /// `activation_token`.
    #[serde(default)]
    pub activation_code: Option<String>,
    /// Counter: the token of the e-mail's activation link ([`counter_activation_token`](super::counter_activation_token)); the
    /// code alone, or the link alone, proves nothing.
    #[serde(default)]
    pub activation_token: Option<String>,
}

impl std::fmt::Debug for BlockMyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockMyKey")
            .field("source", &self.source)
            .field("card_number", &self.card_number)
            .field("card_serial", &self.card_serial)
            .finish_non_exhaustive()
    }
}

/// The digital key is blocked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyBlocked {
    /// Always `blocked`.
    pub status: String,
}

/// A payment card of a simulated citizen.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    /// Card number.
    pub number: String,
    /// Card PIN (simulation only).
    pub pin: String,
    /// `debit` or `credit`.
    pub kind: String,
}

/// A simulated citizen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Citizen {
    /// Citizen id in the simulator.
    pub citizen_id: String,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Birth date.
    pub birthdate: String,
    /// National register number (valid check digits).
    pub national_register_number: String,
    /// The bank.
    pub bank: Bank,
    /// Bank debit card: accepted for identification.
    pub debit_card: Card,
    /// Credit card: refused for identification.
    pub credit_card: Card,
    /// The eID card.
    pub eid_card: EidCard,
}

/// Form fields of the bank's authorize POST.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankAuthorize {
    /// The enrollment id from the handoff URL.
    pub enrollment_id: String,
    /// The nonce from the handoff URL.
    pub nonce: String,
    /// Where to return (must be [`DEEP_LINK_BANK_RETURN`](super::DEEP_LINK_BANK_RETURN)).
    pub redirect_uri: String,
    /// Card number.
    pub card_number: String,
    /// Card PIN.
    pub card_pin: String,
}

impl std::fmt::Debug for Card {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Card")
            .field("number", &self.number)
            .field("pin", &REDACTED)
            .field("kind", &self.kind)
            .finish()
    }
}

impl std::fmt::Debug for BankAuthorize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BankAuthorize")
            .field("enrollment_id", &self.enrollment_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("card_number", &self.card_number)
            .field("card_pin", &REDACTED)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A well-formed link token.
    const TOKEN: &str = "Q2xpY2sgdGhlIGxpbmsgYW5kIHR5cGUgdGhlIGNvZGU";

    #[test]
    fn debug_output_never_shows_card_pins_or_codes() {
        let card = format!(
            "{:?}",
            Card {
                number: "6703".into(),
                pin: "7351".into(),
                kind: "debit".into()
            }
        );
        let form = format!(
            "{:?}",
            BankAuthorize {
                enrollment_id: "e".into(),
                nonce: "n".into(),
                redirect_uri: super::super::DEEP_LINK_BANK_RETURN.into(),
                card_number: "6703".into(),
                card_pin: "7351".into(),
            }
        );
        let block = format!(
            "{:?}",
            BlockMyKey {
                source: Some(IdentitySource::Counter),
                activation_code: Some("ACDEFGHJKMNP".into()),
                activation_token: Some(TOKEN.into()),
                ..BlockMyKey::default()
            }
        );
        assert!(!card.contains("7351") && !form.contains("7351"));
        assert!(
            !block.contains("ACDEFGHJKMNP") && !block.contains(TOKEN),
            "{block}"
        );
    }
}
