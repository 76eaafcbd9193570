//! The phone API: the paths and JSON bodies of `/v1/...` (every call carries a DPoP-style
//! proof), the messages the phone's keys sign, and the app's own deep links (the bank's return
//! link, the counter's activation link), which the simulators build and the phone reads.

use serde::{Deserialize, Serialize};

use super::REDACTED;
use crate::identity::{Bank, IdentitySource};
use crate::jose::{self, Es256Signer, Jwk, Jwks};
use crate::limits::{MAX_APNS_TOKEN_BYTES, MAX_FCM_TOKEN_CHARS, MAX_ID_CHARS};
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
/// Phone API: ask whether a code change took effect (POST [`ResolveCodeChange`] ->
/// [`CodeChangeResolved`]); no code is checked.
pub const PATH_DEVICE_PIN_RESOLVE: &str = "/v1/device/pin/resolve";
/// Phone API: register the calling device's biometric key (POST [`RegisterBiometricKey`]) or
/// forget it (DELETE), -> [`DeviceUpdated`].
pub const PATH_DEVICE_BIOMETRIC: &str = "/v1/device/biometric";
/// Phone API: deactivate the calling device for good (POST, empty body -> [`DeviceUpdated`]).
pub const PATH_DEVICE_DEACTIVATE: &str = "/v1/device/deactivate";
/// Phone API: register the calling device's push token (PUT [`RegisterPushToken`] ->
/// [`DeviceUpdated`]), replacing the one it had.
pub const PATH_DEVICE_PUSH_TOKEN: &str = "/v1/device/push-token";

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

/// Body of `POST /v1/device/pin/resolve`: which code change the phone asks about. A phone that
/// lost the answer to a code change asks before it uses a code again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveCodeChange {
    /// The proof id (`jti`) of the `POST /v1/device/pin` request whose answer was lost.
    pub change_id: String,
}

/// What became of a code change the phone asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeChangeOutcome {
    /// The change took effect: the device's PIN key is the one it registered.
    Applied,
    /// The change did not take effect, and never will: should the request still arrive, it is
    /// refused (`code_change_void`). The device keeps its PIN key.
    Void,
}

/// Answer of `POST /v1/device/pin/resolve`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeChangeResolved {
    /// What became of the change.
    pub outcome: CodeChangeOutcome,
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

/// The push service a phone receives its notifications through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum PushPlatform {
    /// Firebase Cloud Messaging (Android): the token is the app's FCM registration token.
    Fcm,
    /// Apple Push Notification service (iOS): the token is the device token, in hexadecimal.
    Apns,
}

impl PushPlatform {
    /// The platform's name on the wire and in storage: `fcm` or `apns`.
    pub fn as_str(self) -> &'static str {
        match self {
            PushPlatform::Fcm => "fcm",
            PushPlatform::Apns => "apns",
        }
    }

    /// The platform named `name` ([`PushPlatform::as_str`]), if any.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "fcm" => Some(PushPlatform::Fcm),
            "apns" => Some(PushPlatform::Apns),
            _ => None,
        }
    }
}

/// The push token `token` of `platform` in the form the server stores and sends it, or why it
/// is refused (a [`ProtocolError::InvalidField`] on `token`, which never repeats the token).
///
/// - FCM: 1 to [`MAX_FCM_TOKEN_CHARS`] characters out of `A-Z a-z 0-9 _ : - .`, the alphabet
///   of registration tokens (base64url and the `:` that separates their parts); kept as given.
/// - APNs: an even number of hexadecimal digits, 1 to [`MAX_APNS_TOKEN_BYTES`] bytes; written
///   in lowercase, so the same device token in either case is one token.
///
/// The token goes into a URL path (APNs) and a JSON body (FCM), so nothing outside these
/// alphabets may pass, whatever the platform sends.
pub fn canonical_push_token(platform: PushPlatform, token: &str) -> Result<String> {
    let bad = |detail: String| ProtocolError::invalid("token", detail);
    if token.is_empty() {
        return Err(bad("empty".into()));
    }
    match platform {
        PushPlatform::Fcm => {
            if token.len() > MAX_FCM_TOKEN_CHARS {
                return Err(bad(format!(
                    "an FCM token has at most {MAX_FCM_TOKEN_CHARS} characters"
                )));
            }
            if !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'-' | b'.'))
            {
                return Err(bad(
                    "an FCM token has only letters, digits, '_', ':', '-' and '.'".into(),
                ));
            }
            Ok(token.to_owned())
        }
        PushPlatform::Apns => {
            if token.len() > 2 * MAX_APNS_TOKEN_BYTES {
                return Err(bad(format!(
                    "an APNs token has at most {MAX_APNS_TOKEN_BYTES} bytes"
                )));
            }
            if !token.bytes().all(|b| b.is_ascii_hexdigit()) || !token.len().is_multiple_of(2) {
                return Err(bad(
                    "an APNs token is whole bytes in hexadecimal digits".into()
                ));
            }
            Ok(token.to_ascii_lowercase())
        }
    }
}

/// Body of `PUT /v1/device/push-token`: where the calling device receives its push
/// notifications. A device has one token; a new one replaces it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterPushToken {
    /// The push service.
    pub platform: PushPlatform,
    /// The token the platform gave the app ([`canonical_push_token`] says what is accepted).
    pub token: String,
}

// A push token addresses one app install: it stays out of logs like the codes do.
impl std::fmt::Debug for RegisterPushToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterPushToken")
            .field("platform", &self.platform)
            .field("token", &REDACTED)
            .finish()
    }
}

/// The server applied a change to the calling device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceUpdated {
    /// What changed: `pin_changed`, `biometric_enabled`, `biometric_disabled`, `deactivated`,
    /// `push_token_registered`.
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
    /// Whether the phone's keystore keeps the device key in secure hardware (StrongBox, TEE,
    /// Secure Enclave). The phone's own statement, not an attestation: the server passes it on
    /// to relying parties as `hwk` instead of `swk` in the ID token's `amr`. Absent means no.
    #[serde(default)]
    pub device_key_in_hardware: bool,
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
    fn debug_output_never_shows_codes() {
        let sms = format!(
            "{:?}",
            VerifySms {
                code: "482913".into()
            }
        );
        let code = format!(
            "{:?}",
            SubmitIdentityCode {
                code: "ACDEFGHJKMNP".into(),
                activation_token: Some(TOKEN.into()),
            }
        );
        assert!(!sms.contains("482913"), "{sms}");
        assert!(
            !code.contains("ACDEFGHJKMNP") && !code.contains(TOKEN),
            "{code}"
        );
    }

    mod push_tokens {
        use super::*;

        /// An FCM registration token of today's shape.
        const FCM: &str = "dQw4w9WgXcQ:APA91bH-7Xk_e1.Zq";
        /// A 32-byte APNs device token.
        const APNS: &str = "6a1f0e5c2b9d4e8f7a3c1b0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f";

        fn refused(platform: PushPlatform, token: &str) -> bool {
            matches!(
                canonical_push_token(platform, token),
                Err(ProtocolError::InvalidField { field: "token", .. })
            )
        }

        #[test]
        fn an_fcm_token_of_its_alphabet_is_kept_as_given() {
            assert_eq!(
                canonical_push_token(PushPlatform::Fcm, FCM),
                Ok(FCM.to_owned())
            );
        }

        #[test]
        fn an_apns_token_is_accepted_in_either_case_and_kept_in_lowercase() {
            assert_eq!(
                canonical_push_token(PushPlatform::Apns, &APNS.to_ascii_uppercase()),
                Ok(APNS.to_owned())
            );
        }

        #[test]
        fn an_empty_token_is_refused_on_both_platforms() {
            assert!(refused(PushPlatform::Fcm, ""));
            assert!(refused(PushPlatform::Apns, ""));
        }

        #[test]
        fn a_token_beyond_its_platforms_bound_is_refused() {
            let longest_fcm = "a".repeat(MAX_FCM_TOKEN_CHARS);
            let longest_apns = "ab".repeat(MAX_APNS_TOKEN_BYTES);

            assert!(!refused(PushPlatform::Fcm, &longest_fcm));
            assert!(refused(PushPlatform::Fcm, &format!("{longest_fcm}a")));
            assert!(!refused(PushPlatform::Apns, &longest_apns));
            assert!(refused(PushPlatform::Apns, &format!("{longest_apns}ab")));
        }

        #[test]
        fn a_character_outside_the_fcm_alphabet_is_refused() {
            for bad in [
                "a b", "a/b", "a?b", "a%2F", "a\nb", "é", "a+b", "a=b", "a\"b",
            ] {
                assert!(refused(PushPlatform::Fcm, bad), "{bad:?}");
            }
        }

        #[test]
        fn an_apns_token_that_is_not_whole_hex_bytes_is_refused() {
            for bad in ["abc", "0g", "zz", "ab cd", "ab/cd", "ab:cd", FCM] {
                assert!(refused(PushPlatform::Apns, bad), "{bad:?}");
            }
        }

        #[test]
        fn a_refusal_never_repeats_the_token() {
            let token = format!("{APNS}zz");

            let refusal = canonical_push_token(PushPlatform::Apns, &token).unwrap_err();

            assert!(!refusal.to_string().contains(APNS), "{refusal}");
        }

        #[test]
        fn the_platform_is_lowercase_on_the_wire() {
            let body = RegisterPushToken {
                platform: PushPlatform::Apns,
                token: APNS.into(),
            };

            assert_eq!(
                serde_json::to_value(&body).unwrap(),
                serde_json::json!({"platform": "apns", "token": APNS})
            );
            assert_eq!(
                serde_json::from_str::<PushPlatform>("\"fcm\"").unwrap(),
                PushPlatform::Fcm
            );
            assert_eq!(PushPlatform::from_name("apns"), Some(PushPlatform::Apns));
            assert_eq!(PushPlatform::from_name("APNS"), None);
        }

        #[test]
        fn debug_output_never_shows_the_token() {
            let shown = format!(
                "{:?}",
                RegisterPushToken {
                    platform: PushPlatform::Fcm,
                    token: FCM.into(),
                }
            );

            assert!(!shown.contains(FCM), "{shown}");
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
