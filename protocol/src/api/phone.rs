//! HTTP paths and JSON bodies: the phone API (`/v1/...`, every call with a DPoP-style proof),
//! the simulators (`/sim/...`) and the OpenID Connect CIBA endpoints for relying parties.
//!
//! Every error, on every path, is a JSON [`ApiError`] with an HTTP 4xx/5xx status; the OIDC
//! endpoints use the OAuth error codes of RFC 6749 / CIBA in the same shape.

use serde::{Deserialize, Serialize};

use crate::approval::ApprovedAction;
use crate::identity::{Bank, IdentitySource};
use crate::jose::{self, Es256Signer, Jwk, Jwks, UnverifiedJws};
use crate::limits::{CLOCK_SKEW_SECS, MAX_ID_CHARS};
use crate::{ProtocolError, Result};

/// Phone API: the server's action-signing keys (JWKS), fetched and pinned at enrollment.
pub const PATH_SERVER_KEYS: &str = "/v1/server-keys";
/// Phone API: start an enrollment (POST [`StartEnrollment`] -> [`EnrollmentStarted`]).
pub const PATH_ENROLLMENTS: &str = "/v1/enrollments";
/// Phone API: pending requests of the calling device's account (GET -> [`PendingRequests`]).
pub const PATH_REQUESTS: &str = "/v1/requests";

/// POST [`SubmitIdentity`] -> [`SmsSent`]: hand the identity token to the server.
pub fn path_enrollment_identity(enrollment_id: &str) -> String {
    format!("{PATH_ENROLLMENTS}/{enrollment_id}/identity")
}
/// POST [`SubmitIdentityCode`] -> [`SmsSent`]: the identification code of the eID website, or the
/// activation code of the counter with the token of its e-mail's link, for enrollments with
/// those sources.
pub fn path_enrollment_code(enrollment_id: &str) -> String {
    format!("{PATH_ENROLLMENTS}/{enrollment_id}/code")
}
/// POST [`VerifySms`] -> [`SmsVerified`]: the SMS control code.
pub fn path_enrollment_sms(enrollment_id: &str) -> String {
    format!("{PATH_ENROLLMENTS}/{enrollment_id}/sms")
}
/// POST (empty body) -> [`SmsSent`]: send a new SMS code (throttled).
pub fn path_enrollment_sms_resend(enrollment_id: &str) -> String {
    format!("{PATH_ENROLLMENTS}/{enrollment_id}/sms/resend")
}
/// POST [`CompleteEnrollment`] -> [`EnrollmentCompleted`]: register the keys.
pub fn path_enrollment_complete(enrollment_id: &str) -> String {
    format!("{PATH_ENROLLMENTS}/{enrollment_id}/complete")
}
/// GET -> [`RequestEnvelope`]: one action request.
pub fn path_request(request_id: &str) -> String {
    format!("{PATH_REQUESTS}/{request_id}")
}
/// POST a [`crate::jose::GeneralJws`] response -> [`ResponseAccepted`].
pub fn path_request_response(request_id: &str) -> String {
    format!("{PATH_REQUESTS}/{request_id}/response")
}

/// Phone API: replace the calling device's PIN key (POST [`ChangePin`] -> [`DeviceUpdated`]).
pub const PATH_DEVICE_PIN: &str = "/v1/device/pin";
/// Phone API: register the calling device's biometric key (POST [`RegisterBiometricKey`]) or
/// forget it (DELETE), -> [`DeviceUpdated`].
pub const PATH_DEVICE_BIOMETRIC: &str = "/v1/device/biometric";
/// Phone API: deactivate the calling device for good (POST, empty body -> [`DeviceUpdated`]).
pub const PATH_DEVICE_DEACTIVATE: &str = "/v1/device/deactivate";

/// Simulator, eID website: identification token and card reading (POST [`EidIdentification`]
/// -> [`IdentificationCodeIssued`]).
pub const PATH_SIM_EID_IDENTIFICATION: &str = "/sim/eid/identification";
/// Simulator, counter: an official checked the person's identity (POST [`CounterActivation`]
/// -> [`ActivationCodeIssued`]); an e-mail with the activation link follows.
pub const PATH_SIM_COUNTER_ACTIVATION: &str = "/sim/counter/activation";
/// Simulator: the e-mail outbox (GET `?email=...` -> [`EmailOutbox`]).
pub const PATH_SIM_EMAIL: &str = "/sim/outbox/email";
/// Simulator: the "block my key" page for a lost phone (POST [`BlockMyKey`] -> [`KeyBlocked`]).
pub const PATH_SIM_BLOCK: &str = "/sim/block-my-key";
/// Simulator: revoke an eID card, as the register does for a card reported lost (POST, empty).
pub fn path_sim_eid_card_revoke(serial: &str) -> String {
    format!("/sim/eid/cards/{serial}/revoke")
}
/// Simulator: create a citizen (POST [`NewCitizen`] -> [`Citizen`]).
pub const PATH_SIM_CITIZENS: &str = "/sim/citizens";
/// Simulator: the SMS outbox (GET `?phone_number=...` -> [`SmsOutbox`]).
pub const PATH_SIM_SMS: &str = "/sim/outbox/sms";
/// Simulator: the push outbox (GET `?account_id=...&after=SEQ` -> [`PushOutbox`]).
pub const PATH_SIM_PUSH: &str = "/sim/outbox/push";
/// Simulator: a bank's authorize page. GET shows a form; POST [`BankAuthorize`] as a form
/// answers `303 See Other` to the app's deep link with an identity token, or a JSON error.
pub fn path_sim_bank_authorize(bank: Bank) -> String {
    format!("/sim/bank/{}/authorize", bank.id())
}

/// OIDC discovery document.
pub const PATH_OIDC_DISCOVERY: &str = "/.well-known/openid-configuration";
/// JWKS of the keys that sign ID tokens (and action requests).
pub const PATH_OIDC_JWKS: &str = "/oidc/jwks";
/// CIBA backchannel authentication endpoint.
pub const PATH_OIDC_BC_AUTHORIZE: &str = "/oidc/bc-authorize";
/// OAuth token endpoint.
pub const PATH_OIDC_TOKEN: &str = "/oidc/token";
/// The CIBA grant type.
pub const CIBA_GRANT_TYPE: &str = "urn:openid:params:grant-type:ciba";

/// The deep link the bank's app returns to after authentication.
pub const DEEP_LINK_BANK_RETURN: &str = "sleutel://enroll/bank";

/// The deep link a bank sends the person back to the app with: [`DEEP_LINK_BANK_RETURN`] with
/// the enrollment id and the identity token as query parameters.
pub fn bank_return_link(enrollment_id: &str, identity_token: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("enrollment_id", enrollment_id)
        .append_pair("identity_token", identity_token)
        .finish();
    format!("{DEEP_LINK_BANK_RETURN}?{query}")
}

/// The app link in the counter's e-mail: [`DEEP_LINK_COUNTER_ACTIVATION`] with a random token
/// in [`COUNTER_LINK_TOKEN_PARAMETER`]. The link never carries the activation code: the official
/// hands the code to the person, who types it, so that neither the e-mail nor the code alone
/// activates a phone.
pub const DEEP_LINK_COUNTER_ACTIVATION: &str = "sleutel://enroll/counter";

/// The query parameter of the counter's activation link that carries its token.
pub const COUNTER_LINK_TOKEN_PARAMETER: &str = "activation";

/// The activation link for the link token `token` (see
/// [`crate::identity::ACTIVATION_TOKEN_BYTES`]).
pub fn counter_activation_link(token: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair(COUNTER_LINK_TOKEN_PARAMETER, token)
        .finish();
    format!("{DEEP_LINK_COUNTER_ACTIVATION}?{query}")
}

/// The token of a counter activation link as the app was opened with it. Refuses anything but
/// exactly [`DEEP_LINK_COUNTER_ACTIVATION`] with one well-formed token and no other parameter:
/// a repeated or extra parameter could make two parsers disagree about the token, and a link of
/// the old form (with the code in it) must not pass as one.
pub fn counter_activation_token(link: &str) -> Result<String> {
    let bad = |detail: &str| ProtocolError::invalid("activation_link", detail);
    let link = link.trim();
    let base = link.split(['?', '#']).next().unwrap_or_default();
    if base != DEEP_LINK_COUNTER_ACTIVATION {
        return Err(bad("not the counter's activation link"));
    }
    let url = url::Url::parse(link).map_err(|_| bad("malformed link"))?;
    let mut token = None;
    for (name, value) in url.query_pairs() {
        if name != COUNTER_LINK_TOKEN_PARAMETER {
            return Err(bad("the link carries an unexpected parameter"));
        }
        if token.replace(value).is_some() {
            return Err(bad("the link carries two activation tokens"));
        }
    }
    match token {
        Some(token) if crate::identity::is_activation_token(&token) => Ok(token.into_owned()),
        Some(_) => Err(bad("the link's activation token is malformed")),
        None => Err(bad("the link carries no activation token")),
    }
}

/// The message both PIN keys sign for a change of code: the current key authorises, the new key
/// proves possession. Bound to the device, so a signature cannot serve another phone.
pub fn pin_change_message(device_jkt: &str, new_pin_jkt: &str) -> String {
    format!("sleutel-pin-change/v1|{device_jkt}|{new_pin_jkt}")
}

/// The message the device key an enrollment replaces signs to hand its place to the
/// enrollment's new device key ([`ReplacedDevice`]). Both thumbprints are in it, so the signature
/// serves that one new key and cannot be replayed for another.
pub fn device_replacement_message(replaced_jkt: &str, new_jkt: &str) -> String {
    format!("sleutel-device-replace/v1|{replaced_jkt}|{new_jkt}")
}

/// The message the PIN key (authorising) and the new biometric key (proving possession) sign to
/// register the biometric key of a device.
pub fn biometric_enable_message(device_jkt: &str, biometric_jkt: &str) -> String {
    format!("sleutel-biometric-enable/v1|{device_jkt}|{biometric_jkt}")
}

/// Whether `id` is one of the protocol's identifiers (request, account, enrollment ids, nonces):
/// non-empty, at most [`MAX_ID_CHARS`], base64url characters only. Both ends check every id that
/// goes into a URL path or a lookup, since anything else could change the path it lands in.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The message each enrolled key signs as proof of possession.
pub fn enrollment_pop_message(role: &str, enrollment_id: &str, nonce: &str) -> String {
    format!("sleutel-enroll/v1|{role}|{enrollment_id}|{nonce}")
}

/// Body of `POST /v1/enrollments`. The proof's key becomes the enrollment's device key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartEnrollment {
    /// Belgian mobile number, E.164.
    pub phone_number: String,
    /// How the identity will be proven.
    pub source: IdentitySource,
    /// The bank, for [`IdentitySource::Bank`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank: Option<Bank>,
    /// The device this enrollment replaces: an unblock from the same phone makes a new device
    /// key, and the key it had is revoked when the enrollment completes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<ReplacedDevice>,
}

/// The device an enrollment replaces ([`StartEnrollment::replaces`]), with the proof that the
/// caller holds its key: that key's signature over [`device_replacement_message`], which names
/// the enrollment's new key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplacedDevice {
    /// The replaced device's public key.
    pub device_key: Jwk,
    /// base64url signature by `device_key` over [`device_replacement_message`].
    pub signature: String,
}

impl ReplacedDevice {
    /// The replacement of the device whose key is `device_key` by the new device key with the
    /// thumbprint `new_jkt`, signed by `signer`, which holds `device_key`.
    pub fn sign<S: Es256Signer>(
        device_key: Jwk,
        signer: &S,
        new_jkt: &str,
    ) -> std::result::Result<Self, S::Error> {
        let message = device_replacement_message(&device_key.thumbprint(), new_jkt);
        let signature = jose::b64(signer.sign_es256(message.as_bytes())?);
        Ok(Self {
            device_key,
            signature,
        })
    }

    /// The replaced device's key thumbprint, once its signature handing its place to the new
    /// device key `new_jkt` verifies. A key that is no P-256 point, the new key itself and a
    /// signature that does not verify are refused.
    pub fn verify(&self, new_jkt: &str) -> Result<String> {
        let key = self.device_key.to_verifying_key()?;
        let replaced_jkt = self.device_key.thumbprint();
        if replaced_jkt == new_jkt {
            return Err(ProtocolError::invalid(
                "replaces",
                "the device key cannot replace itself",
            ));
        }
        let signature = jose::b64_decode(&self.signature, "replaces.signature")?;
        let message = device_replacement_message(&replaced_jkt, new_jkt);
        jose::verify_es256(&key, message.as_bytes(), &signature, "replaces.signature")?;
        Ok(replaced_jkt)
    }
}

/// Answer to [`StartEnrollment`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentStarted {
    /// The enrollment id.
    pub enrollment_id: String,
    /// The nonce the identity token must carry.
    pub nonce: String,
    /// Where to send the person: the bank's app or site, for [`IdentitySource::Bank`]. The eID
    /// and counter sources have none: the person brings a code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff_url: Option<String>,
    /// When the enrollment expires (Unix seconds).
    pub expires_at: i64,
}

/// Body of `POST /v1/enrollments/{id}/identity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitIdentity {
    /// The identity token from the deep link.
    pub identity_token: String,
}

/// Body of `POST /v1/enrollments/{id}/code`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitIdentityCode {
    /// The identification code (eID) or activation code (counter), canonical form.
    pub code: String,
    /// Counter only, and required there: the token of the e-mail's activation link
    /// ([`counter_activation_token`]). The code proves the person was at the counter, the token
    /// that they read the e-mail; it is refused for the eID source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_token: Option<String>,
}

impl std::fmt::Debug for SubmitIdentityCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubmitIdentityCode")
            .field("code", &REDACTED)
            .field(
                "activation_token",
                &self.activation_token.as_ref().map(|_| REDACTED),
            )
            .finish()
    }
}

/// Body of `POST /v1/device/pin`: a new PIN key, authorised by the current one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePin {
    /// The new PIN public key.
    pub new_pin_key: Jwk,
    /// base64url signature by the current PIN key over [`pin_change_message`].
    pub current_pin_signature: String,
    /// base64url signature by the new PIN key over [`pin_change_message`].
    pub new_pin_pop: String,
}

/// Body of `POST /v1/device/biometric`: a biometric key, authorised by the PIN key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterBiometricKey {
    /// The biometric public key.
    pub biometric_key: Jwk,
    /// base64url signature by the PIN key over [`biometric_enable_message`].
    pub pin_signature: String,
    /// base64url signature by the biometric key over [`biometric_enable_message`].
    pub biometric_pop: String,
}

/// The server applied a change to the calling device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceUpdated {
    /// What changed: `pin_changed`, `biometric_enabled`, `biometric_disabled`, `deactivated`.
    pub status: String,
}

/// An SMS control code was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct SmsSent {
    /// The number, masked for display (`+32 4•• •• 34 56`).
    pub phone_number_masked: String,
    /// When the code expires (Unix seconds).
    pub expires_at: i64,
    /// Earliest time a new code may be asked for (Unix seconds).
    pub resend_after: i64,
}

/// Body of `POST /v1/enrollments/{id}/sms`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifySms {
    /// The 6-digit code.
    pub code: String,
}

impl std::fmt::Debug for VerifySms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifySms")
            .field("code", &REDACTED)
            .finish()
    }
}

/// What `Debug` shows instead of a code or PIN, so no secret reaches a log.
const REDACTED: &str = "<redacted>";

/// The phone number is verified; the keys can be registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsVerified {
    /// The name the account will carry.
    pub display_name: String,
}

/// Body of `POST /v1/enrollments/{id}/complete`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompleteEnrollment {
    /// The device key; must be the key that signed the enrollment's proofs.
    pub device_key: Jwk,
    /// The PIN public key.
    pub pin_key: Jwk,
    /// base64url signature by the device key over [`enrollment_pop_message`]`("device", ...)`.
    pub device_pop: String,
    /// base64url signature by the PIN key over [`enrollment_pop_message`]`("pin", ...)`.
    pub pin_pop: String,
}

/// The account exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentCompleted {
    /// The account id (audience of every action request).
    pub account_id: String,
    /// The person's name.
    pub display_name: String,
    /// The server's issuer URL (issuer of action requests).
    pub issuer: String,
    /// The server keys to pin.
    pub server_keys: Jwks,
}

/// Pending action requests, as compact JWS strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRequests {
    /// The requests, oldest first.
    pub requests: Vec<String>,
}

/// One action request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestEnvelope {
    /// The compact JWS.
    pub request: String,
}

/// The server accepted an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseAccepted {
    /// `approved` or `declined`.
    pub status: String,
}

/// What a push message carries: nothing but where to look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushMessage {
    /// The account.
    pub account_id: String,
    /// The request to fetch.
    pub request_id: String,
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
    /// Counter: the token of the e-mail's activation link ([`counter_activation_token`]); the
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
    /// Where to return (must be [`DEEP_LINK_BANK_RETURN`]).
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

/// The JSON error body of every endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Machine-readable code (see [`codes`]).
    pub error: String,
    /// Human-readable explanation, without secrets.
    #[serde(default)]
    pub error_description: String,
    /// Attempts left, for a wrong code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts_left: Option<u32>,
    /// Seconds to wait, for throttling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// The error codes of [`ApiError::error`].
pub mod codes {
    /// The body or a parameter is malformed.
    pub const INVALID_REQUEST: &str = "invalid_request";
    /// The body is larger than allowed.
    pub const BODY_TOO_LARGE: &str = "body_too_large";
    /// The DPoP-style proof is missing, invalid or stale.
    pub const INVALID_PROOF: &str = "invalid_proof";
    /// The proof was already used.
    pub const PROOF_REPLAYED: &str = "proof_replayed";
    /// No such enrollment (or not this device's).
    pub const UNKNOWN_ENROLLMENT: &str = "unknown_enrollment";
    /// The enrollment has expired.
    pub const ENROLLMENT_EXPIRED: &str = "enrollment_expired";
    /// The enrollment is not at the step this call belongs to.
    pub const WRONG_STEP: &str = "wrong_step";
    /// The identity token is invalid (signature, issuer, nonce, expiry, content).
    pub const INVALID_IDENTITY_TOKEN: &str = "invalid_identity_token";
    /// The identity is valid but not admitted (under age).
    pub const IDENTITY_REFUSED: &str = "identity_refused";
    /// Wrong SMS code; `attempts_left` says how many remain.
    pub const WRONG_SMS_CODE: &str = "wrong_sms_code";
    /// The SMS code expired; ask a new one.
    pub const SMS_CODE_EXPIRED: &str = "sms_code_expired";
    /// Too many wrong SMS codes: the enrollment is over.
    pub const TOO_MANY_ATTEMPTS: &str = "too_many_attempts";
    /// Asked for a new SMS code too soon; `retry_after` says when.
    pub const RESEND_TOO_SOON: &str = "resend_too_soon";
    /// Too many enrollments started (by this key, from this address, or on the server), SMS
    /// codes sent to the number, or wrong SMS codes for the number today: wait `retry_after`
    /// seconds (429).
    pub const RATE_LIMITED: &str = "rate_limited";
    /// The device is not registered.
    pub const UNKNOWN_DEVICE: &str = "unknown_device";
    /// The device was revoked.
    pub const DEVICE_REVOKED: &str = "device_revoked";
    /// No such request for this account.
    pub const UNKNOWN_REQUEST: &str = "unknown_request";
    /// The request expired.
    pub const REQUEST_EXPIRED: &str = "request_expired";
    /// The request was already answered.
    pub const REQUEST_ALREADY_ANSWERED: &str = "request_already_answered";
    /// The response is malformed or its device signature or binding is wrong.
    pub const INVALID_RESPONSE: &str = "invalid_response";
    /// Wrong code; `attempts_left` says how many remain.
    pub const WRONG_PIN: &str = "wrong_pin";
    /// The account is blocked after too many wrong codes.
    pub const ACCOUNT_BLOCKED: &str = "account_blocked";
    /// The request demands another verification method.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// Bank simulator: credit cards cannot prove an identity.
    pub const CREDIT_CARD_REFUSED: &str = "credit_card_refused";
    /// Bank simulator: wrong card PIN.
    pub const WRONG_CARD_PIN: &str = "wrong_card_pin";
    /// Bank simulator: unknown card.
    pub const UNKNOWN_CARD: &str = "unknown_card";
    /// Bank simulator: the card is blocked after too many wrong PINs.
    pub const CARD_BLOCKED: &str = "card_blocked";
    /// eID website: the card has expired.
    pub const EID_CARD_EXPIRED: &str = "eid_card_expired";
    /// eID website: the card was revoked (reported lost or stolen).
    pub const EID_CARD_REVOKED: &str = "eid_card_revoked";
    /// Wrong identification or activation code; `attempts_left` says how many remain.
    pub const WRONG_IDENTITY_CODE: &str = "wrong_identity_code";
    /// The identification or activation code has expired: ask for a new one.
    pub const IDENTITY_CODE_EXPIRED: &str = "identity_code_expired";
    /// The identification or activation code was already used: each works once.
    pub const IDENTITY_CODE_USED: &str = "identity_code_used";
    /// Too many wrong tries of the identification code: it no longer works.
    pub const IDENTITY_CODE_BLOCKED: &str = "identity_code_blocked";
    /// No such resource.
    pub const NOT_FOUND: &str = "not_found";
    /// A server fault; nothing was changed.
    pub const INTERNAL_ERROR: &str = "internal_error";

    // OAuth 2.0 (RFC 6749 §5.2) and CIBA (§13, §11) error codes of the OIDC endpoints.

    /// Client authentication failed (unknown client, wrong secret, no credentials).
    pub const INVALID_CLIENT: &str = "invalid_client";
    /// The `auth_req_id` is unknown, belongs to another client, or its token was already issued.
    pub const INVALID_GRANT: &str = "invalid_grant";
    /// The grant type is not the CIBA grant.
    pub const UNSUPPORTED_GRANT_TYPE: &str = "unsupported_grant_type";
    /// The scope is missing `openid` or names an unsupported scope.
    pub const INVALID_SCOPE: &str = "invalid_scope";
    /// CIBA: the `login_hint` names nobody the server knows.
    pub const UNKNOWN_USER_ID: &str = "unknown_user_id";
    /// CIBA: the binding message is too long or has characters that cannot be shown.
    pub const INVALID_BINDING_MESSAGE: &str = "invalid_binding_message";
    /// The person declined, or the request was closed (account blocked).
    pub const ACCESS_DENIED: &str = "access_denied";
    /// CIBA poll: the person has not answered yet.
    pub const AUTHORIZATION_PENDING: &str = "authorization_pending";
    /// CIBA poll: polled faster than the interval; wait longer (the client adds 5 seconds).
    pub const SLOW_DOWN: &str = "slow_down";
    /// CIBA poll: the request expired before the person answered.
    pub const EXPIRED_TOKEN: &str = "expired_token";
    /// The number picked on the phone is not the one the relying party shows: the request is
    /// declined and recorded as suspicious.
    pub const WRONG_NUMBER: &str = "wrong_number";
}

/// The OIDC discovery document (the members this server supports).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryDocument {
    /// Issuer URL.
    pub issuer: String,
    /// JWKS URL.
    pub jwks_uri: String,
    /// Token endpoint.
    pub token_endpoint: String,
    /// CIBA backchannel authentication endpoint.
    pub backchannel_authentication_endpoint: String,
    /// `poll` (and `ping` where supported).
    pub backchannel_token_delivery_modes_supported: Vec<String>,
    /// Whether `user_code` is supported (no).
    pub backchannel_user_code_parameter_supported: bool,
    /// Response types (REQUIRED by OpenID Connect Discovery 1.0 §3). Defaults to empty when a
    /// document without it is read, so documents of older servers still parse.
    #[serde(default)]
    pub response_types_supported: Vec<String>,
    /// Grant types.
    pub grant_types_supported: Vec<String>,
    /// Client authentication methods.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// ID token signing algorithms.
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// Scopes.
    pub scopes_supported: Vec<String>,
    /// Claims.
    pub claims_supported: Vec<String>,
    /// Subject types.
    pub subject_types_supported: Vec<String>,
    /// ACR values.
    pub acr_values_supported: Vec<String>,
    /// Whether the `claims` request parameter (OIDC Core §5.5) is supported.
    #[serde(default)]
    pub claims_parameter_supported: bool,
}

/// Successful answer of the backchannel authentication endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackchannelAuthResponse {
    /// The id to poll with.
    pub auth_req_id: String,
    /// Seconds until the request expires.
    pub expires_in: i64,
    /// Minimum seconds between polls.
    pub interval: i64,
    /// Under number matching, the two-digit number the relying party shows its user; the
    /// person picks it among three on the phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_number: Option<u8>,
}

/// The body of a CIBA ping (§10.2) to a client's notification endpoint: the request whose
/// result can now be fetched from the token endpoint. The `Authorization: Bearer` header
/// carries the `client_notification_token` the client gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingNotification {
    /// The request that has an outcome.
    pub auth_req_id: String,
}

/// Successful answer of the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// Opaque access token.
    pub access_token: String,
    /// `Bearer`.
    pub token_type: String,
    /// Lifetime of the access token.
    pub expires_in: i64,
    /// The ES256 ID token.
    pub id_token: String,
}

/// The `typ` of an ID token.
pub const ID_TOKEN_TYP: &str = "JWT";

/// The `acr` of a login confirmed on the phone with the device key and the 5-digit code. A relying
/// party that asks for it in `acr_values` (or asks nothing) gets code-only requests.
pub const ACR_CODE: &str = "urn:sleutel:acr:code";

/// The `acr` of a login confirmed with the device key and the code or the enrolled biometric. A
/// relying party asks for it in `acr_values` to let the person confirm with a fingerprint or face.
pub const ACR_CODE_OR_BIOMETRIC: &str = "urn:sleutel:acr:code-or-biometric";

/// Claims of an ID token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// Issuer.
    pub iss: String,
    /// Pairwise subject: stable per person and relying party, unlinkable across relying parties.
    pub sub: String,
    /// The relying party's client id.
    pub aud: String,
    /// Issued at.
    pub iat: i64,
    /// Expiry.
    pub exp: i64,
    /// When the person confirmed.
    pub auth_time: i64,
    /// Authentication context class.
    pub acr: String,
    /// Authentication methods (`hwk`/`swk`, `pin`/`face`/`fpt`).
    pub amr: Vec<String>,
    /// Full name, when consented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Given name, when consented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// Family name, when consented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// Date of birth (`YYYY-MM-DD`), when consented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birthdate: Option<String>,
    /// National register number, when consented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub national_register_number: Option<String>,
    /// Phone number verified by SMS (E.164), when consented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// Whether the person is 18 or older on the day of issue, when consented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_over_18: Option<bool>,
    /// What the person approved (claim [`crate::approval::CLAIM`]): the kind of request, the
    /// hash of the signed request that names the server's evidence, and what was shown (binding
    /// message, payment, free-text digest, document). Every ID token of this server carries it;
    /// a relying party checks it against what it asked
    /// ([`ApprovedAction::check_asked`](crate::approval::ApprovedAction::check_asked)).
    pub sleutel_action: ApprovedAction,
}

/// Verifies an ID token as a relying party must: ES256 signature by the key of `jwks` its header
/// names, type, issuer, audience (the relying party's client id), expiry and issue time.
pub fn verify_id_token(
    id_token: &str,
    jwks: &Jwks,
    issuer: &str,
    client_id: &str,
    now: i64,
) -> Result<IdTokenClaims> {
    let jws = UnverifiedJws::parse(id_token, "id token")?;
    let kid = jws.header.kid.clone().unwrap_or_default();
    let key = jwks
        .find(&kid)
        .ok_or_else(|| {
            ProtocolError::mismatch("id_token.kid", format!("no key {kid:?} in the JWKS"))
        })?
        .to_verifying_key()?;
    let payload = jws.verify(&key, ID_TOKEN_TYP, "id token")?;
    let claims: IdTokenClaims = jose::parse_claims(&payload, "id token")?;
    if claims.iss != issuer {
        return Err(ProtocolError::mismatch("id_token.iss", claims.iss));
    }
    if claims.aud != client_id {
        return Err(ProtocolError::mismatch("id_token.aud", claims.aud));
    }
    if claims.exp <= now {
        return Err(ProtocolError::Expired("id token"));
    }
    if claims.iat > now + CLOCK_SKEW_SECS {
        return Err(ProtocolError::NotYetValid("id token"));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bank_return_link_carries_enrollment_and_token() {
        let link = url::Url::parse(&bank_return_link("e-1", "a.b.c")).unwrap();
        assert_eq!(link.scheme(), "sleutel");
        let pairs: Vec<(String, String)> = link.query_pairs().into_owned().collect();
        assert_eq!(
            pairs,
            [
                ("enrollment_id".to_string(), "e-1".to_string()),
                ("identity_token".to_string(), "a.b.c".to_string())
            ]
        );
        assert!(link.as_str().starts_with(DEEP_LINK_BANK_RETURN));
    }

    /// A well-formed link token.
    const TOKEN: &str = "Q2xpY2sgdGhlIGxpbmsgYW5kIHR5cGUgdGhlIGNvZGU";

    #[test]
    fn the_counter_link_carries_its_token_and_gives_it_back() {
        let link = counter_activation_link(TOKEN);

        assert_eq!(
            link,
            format!("{DEEP_LINK_COUNTER_ACTIVATION}?{COUNTER_LINK_TOKEN_PARAMETER}={TOKEN}")
        );
        assert_eq!(counter_activation_token(&link), Ok(TOKEN.to_owned()));
        assert_eq!(
            counter_activation_token(&format!(" {link}\n")),
            Ok(TOKEN.to_owned())
        );
    }

    #[test]
    fn a_link_that_is_not_the_counters_or_carries_no_single_token_is_refused() {
        let long = format!("{TOKEN}A");
        for link in [
            format!("sleutel://enroll/bank?activation={TOKEN}"),
            format!("https://evil.example/?activation={TOKEN}"),
            format!("sleutel://enroll/counter/x?activation={TOKEN}"),
            format!("sleutel://enroll/counter?activation={TOKEN}&activation={TOKEN}"),
            format!("sleutel://enroll/counter?activation={TOKEN}&activation_code=ACDEFGHJKMNP"),
            "sleutel://enroll/counter?activation_code=ACDEFGHJKMNP".to_owned(),
            "sleutel://enroll/counter".to_owned(),
            "sleutel://enroll/counter?activation=".to_owned(),
            format!("sleutel://enroll/counter?activation={long}"),
            format!("sleutel://enroll/counter?activation={}", &TOKEN[1..]),
            format!("sleutel://enroll/counter?activation={}%2F", &TOKEN[1..]),
            "ACDE-FGHJ-KMNP".to_owned(),
            String::new(),
        ] {
            assert!(
                matches!(
                    counter_activation_token(&link),
                    Err(ProtocolError::InvalidField {
                        field: "activation_link",
                        ..
                    })
                ),
                "{link}"
            );
        }
    }

    #[test]
    fn the_counter_token_goes_on_the_wire_only_when_there_is_one() {
        let eid = SubmitIdentityCode {
            code: "ACDEFGHJ".into(),
            activation_token: None,
        };
        let counter = SubmitIdentityCode {
            code: "ACDEFGHJKMNP".into(),
            activation_token: Some(TOKEN.into()),
        };

        assert_eq!(
            serde_json::to_value(&eid).unwrap(),
            serde_json::json!({"code": "ACDEFGHJ"})
        );
        assert_eq!(
            serde_json::to_value(&counter).unwrap(),
            serde_json::json!({"code": "ACDEFGHJKMNP", "activation_token": TOKEN})
        );
    }

    mod id_tokens {
        use super::super::*;
        use crate::jose::{Header, sign_compact};
        use p256::ecdsa::SigningKey;
        use p256::elliptic_curve::Generate;

        const NOW: i64 = 1_800_000_000;

        fn claims() -> IdTokenClaims {
            IdTokenClaims {
                iss: "http://server".into(),
                sub: "pairwise".into(),
                aud: "rp".into(),
                iat: NOW,
                exp: NOW + 300,
                auth_time: NOW,
                acr: "urn:sleutel:acr:code".into(),
                amr: vec!["pin".into()],
                name: Some("Lotte Aerts".into()),
                given_name: None,
                family_name: None,
                birthdate: None,
                national_register_number: None,
                phone_number: None,
                age_over_18: None,
                sleutel_action: ApprovedAction {
                    kind: crate::action::ActionKind::Login,
                    request_hash: "hash".into(),
                    binding_message: None,
                    transaction: None,
                    document: None,
                },
            }
        }

        fn signed(key: &SigningKey, kid: &str, claims: &IdTokenClaims) -> String {
            let header = Header::es256(ID_TOKEN_TYP).with_kid(kid);
            sign_compact(&header, &serde_json::to_vec(claims).unwrap(), key).unwrap()
        }

        fn jwks(key: &SigningKey, kid: &str) -> Jwks {
            Jwks {
                keys: vec![Jwk::from_verifying_key(key.verifying_key()).published(kid)],
            }
        }

        #[test]
        fn a_valid_token_gives_its_claims() {
            let key = SigningKey::generate();
            let token = signed(&key, "k1", &claims());
            let got = verify_id_token(&token, &jwks(&key, "k1"), "http://server", "rp", NOW);
            assert_eq!(got, Ok(claims()));
        }

        #[test]
        fn a_token_that_does_not_say_what_was_approved_is_refused() {
            let key = SigningKey::generate();
            let mut claims = serde_json::to_value(claims()).unwrap();
            claims.as_object_mut().unwrap().remove("sleutel_action");
            let header = Header::es256(ID_TOKEN_TYP).with_kid("k1");
            let token = sign_compact(&header, &serde_json::to_vec(&claims).unwrap(), &key).unwrap();

            let got = verify_id_token(&token, &jwks(&key, "k1"), "http://server", "rp", NOW);

            assert!(
                matches!(got, Err(ProtocolError::Malformed { .. })),
                "{got:?}"
            );
        }

        #[test]
        fn another_key_issuer_audience_or_time_is_refused() {
            let key = SigningKey::generate();
            let set = jwks(&key, "k1");
            let token = signed(&key, "k1", &claims());
            let check =
                |t: &str, iss: &str, aud: &str, now: i64| verify_id_token(t, &set, iss, aud, now);

            let forged = signed(&SigningKey::generate(), "k1", &claims());
            assert_eq!(
                check(&forged, "http://server", "rp", NOW),
                Err(ProtocolError::BadSignature("id token"))
            );
            let unknown_kid = signed(&key, "k2", &claims());
            assert!(matches!(
                check(&unknown_kid, "http://server", "rp", NOW),
                Err(ProtocolError::Mismatch { .. })
            ));
            assert!(matches!(
                check(&token, "http://other", "rp", NOW),
                Err(ProtocolError::Mismatch {
                    what: "id_token.iss",
                    ..
                })
            ));
            assert!(matches!(
                check(&token, "http://server", "other-rp", NOW),
                Err(ProtocolError::Mismatch {
                    what: "id_token.aud",
                    ..
                })
            ));
            assert_eq!(
                check(&token, "http://server", "rp", NOW + 300),
                Err(ProtocolError::Expired("id token"))
            );
            let mut early = claims();
            early.iat = NOW + CLOCK_SKEW_SECS + 1;
            early.exp = NOW + 600;
            let early = signed(&key, "k1", &early);
            assert_eq!(
                check(&early, "http://server", "rp", NOW),
                Err(ProtocolError::NotYetValid("id token"))
            );
        }
    }

    #[test]
    fn ids_are_base64url_and_bounded() {
        assert!(is_valid_id("aZ09-_"));
        for bad in [
            "",
            "../x",
            "a/b",
            "a?b",
            "a%2F",
            "a b",
            "é",
            &"a".repeat(MAX_ID_CHARS + 1),
        ] {
            assert!(!is_valid_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn debug_output_never_shows_codes_or_pins() {
        let sms = format!(
            "{:?}",
            VerifySms {
                code: "482913".into()
            }
        );
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
                redirect_uri: DEEP_LINK_BANK_RETURN.into(),
                card_number: "6703".into(),
                card_pin: "7351".into(),
            }
        );
        let code = format!(
            "{:?}",
            SubmitIdentityCode {
                code: "ACDEFGHJKMNP".into(),
                activation_token: Some(TOKEN.into()),
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
        assert!(!sms.contains("482913") && !card.contains("7351") && !form.contains("7351"));
        for shown in [&code, &block] {
            assert!(
                !shown.contains("ACDEFGHJKMNP") && !shown.contains(TOKEN),
                "{shown}"
            );
        }
    }

    mod replacement {
        use p256::ecdsa::SigningKey;
        use p256::elliptic_curve::Generate;

        use super::*;

        fn jwk(key: &SigningKey) -> Jwk {
            Jwk::from_verifying_key(key.verifying_key())
        }

        /// The replacement of `old` by `new`, signed by `signer`.
        fn replacement(old: &SigningKey, signer: &SigningKey, new: &SigningKey) -> ReplacedDevice {
            let Ok(replaced) = ReplacedDevice::sign(jwk(old), signer, &jwk(new).thumbprint());
            replaced
        }

        #[test]
        fn a_replacement_signed_by_the_old_key_names_the_old_device() {
            let (old, new) = (SigningKey::generate(), SigningKey::generate());

            let replaced = replacement(&old, &old, &new).verify(&jwk(&new).thumbprint());

            assert_eq!(replaced, Ok(jwk(&old).thumbprint()));
        }

        #[test]
        fn a_replacement_does_not_serve_another_new_key() {
            let (old, new) = (SigningKey::generate(), SigningKey::generate());
            let other = SigningKey::generate();

            let replayed = replacement(&old, &old, &new).verify(&jwk(&other).thumbprint());

            assert!(
                matches!(replayed, Err(ProtocolError::BadSignature(_))),
                "{replayed:?}"
            );
        }

        #[test]
        fn a_replacement_not_signed_by_the_old_key_is_refused() {
            let (old, new) = (SigningKey::generate(), SigningKey::generate());

            // Whoever names a device without holding its key can only sign with another key.
            let forged = replacement(&old, &new, &new).verify(&jwk(&new).thumbprint());

            assert!(
                matches!(forged, Err(ProtocolError::BadSignature(_))),
                "{forged:?}"
            );
        }

        #[test]
        fn a_device_key_cannot_replace_itself() {
            let key = SigningKey::generate();

            let itself = replacement(&key, &key, &key).verify(&jwk(&key).thumbprint());

            assert!(
                matches!(
                    itself,
                    Err(ProtocolError::InvalidField {
                        field: "replaces",
                        ..
                    })
                ),
                "{itself:?}"
            );
        }

        #[test]
        fn a_replacement_with_a_bad_key_or_signature_encoding_is_refused() {
            let (old, new) = (SigningKey::generate(), SigningKey::generate());
            let new_jkt = jwk(&new).thumbprint();
            let mut off_curve = replacement(&old, &old, &new);
            off_curve.device_key.y = off_curve.device_key.x.clone();
            let mut not_base64 = replacement(&old, &old, &new);
            not_base64.signature = "not base64!".into();
            let mut short = replacement(&old, &old, &new);
            short.signature = jose::b64([1u8; 10]);

            assert!(matches!(
                off_curve.verify(&new_jkt),
                Err(ProtocolError::InvalidKey(_))
            ));
            assert!(matches!(
                not_base64.verify(&new_jkt),
                Err(ProtocolError::Malformed { .. })
            ));
            assert!(matches!(
                short.verify(&new_jkt),
                Err(ProtocolError::BadSignature(_))
            ));
        }

        #[test]
        fn a_start_without_a_replacement_keeps_its_wire_form() {
            let body = r#"{"phone_number":"+32470000000","source":"eid"}"#;

            let start: StartEnrollment = serde_json::from_str(body).unwrap();

            assert_eq!(start.replaces, None);
            assert_eq!(serde_json::to_string(&start).unwrap(), body);
        }
    }
}
