//! The seed corpus: valid messages of every kind the targets read, made with the project's own
//! types and the fixed key, and the inputs that once broke a reader. `examples/make_seeds.rs`
//! writes them to `seeds/<target>/`; the seed test reads them back.
//!
//! A seed's file name says what the target must make of it: `ok-...` is accepted by the reader
//! under test, `no-...` refused (the regression inputs among them). Either way the target's
//! checks run on it.

use base64::Engine as _;
use sleutel_protocol::action::{
    ACTION_TYP, ActionKind, ActionRequest, RelyingParty, SignDocument, Transaction,
    UserVerification,
};
use sleutel_protocol::api::oidc::{ID_TOKEN_TYP, IdTokenClaims};
use sleutel_protocol::api::sign_in::{OpenSignInLink, SignInLink};
use sleutel_protocol::api::sim::{BlockMyKey, CounterActivation, EidIdentification, NewCitizen};
use sleutel_protocol::api::{
    self, ChangePin, CompleteEnrollment, PushMessage, PushPlatform, RegisterBiometricKey,
    RegisterPushToken, StartEnrollment, SubmitIdentity, SubmitIdentityCode, VerifySms,
};
use sleutel_protocol::approval::ApprovedAction;
use sleutel_protocol::dpop::{PROOF_TYP, ProofClaims};
use sleutel_protocol::identity::{
    Bank, Evidence, IDENTITY_AUDIENCE, IDENTITY_TYP, IdentityClaims, IdentitySource,
    national_register_check,
};
use sleutel_protocol::jose::{self, Header};
use sleutel_protocol::response::{ActionResponse, Decision, DeclineReason, UvMethod};
use sleutel_server::RelyingPartyConfig;

use crate::{
    ACCOUNT_ID, CLIENT_ID, ENROLLMENT_ID, KEY_CLIENT_ID, KID, NONCE, NOW, REQUEST_ID, REQUEST_JWS,
    SERVER_URL, jwk, jwks, sign_for_seed, sign_response_for_seed, thumbprint,
};

/// One seed: the target, its file name (`ok-` or `no-` first) and its bytes.
#[derive(Debug, Clone)]
pub struct Seed {
    /// The target (and folder) it is for.
    pub target: &'static str,
    /// The file name: `ok-...` when the reader accepts it, `no-...` when it refuses it.
    pub name: String,
    /// The input.
    pub data: Vec<u8>,
}

/// A byte-string builder: a mode byte then the rest.
fn with(first: u8, rest: impl AsRef<[u8]>) -> Vec<u8> {
    let mut data = vec![first];
    data.extend_from_slice(rest.as_ref());
    data
}

fn json(value: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// An action request of `kind` that the phone accepts at [`NOW`].
pub fn action_request(kind: ActionKind) -> ActionRequest {
    ActionRequest {
        iss: SERVER_URL.into(),
        aud: ACCOUNT_ID.into(),
        jti: REQUEST_ID.into(),
        iat: NOW,
        exp: NOW + 300,
        rp: RelyingParty {
            id: CLIENT_ID.into(),
            name: "Online overheid".into(),
        },
        kind,
        text: "Ik log in op de online overheid".into(),
        claims: vec!["name".into()],
        optional_claims: vec!["phone_number".into()],
        binding_message: Some("AB12".into()),
        uv: UserVerification::Pin,
        number_options: Some(vec![12, 42, 97]),
        transaction: (kind == ActionKind::ConfirmTransaction).then(|| Transaction::Payment {
            amount: "125.50".into(),
            currency: "EUR".into(),
            payee: "Stad Gent".into(),
            iban: "BE68539007547034".into(),
        }),
        document: (kind == ActionKind::Sign).then(|| SignDocument {
            name: "Huurcontract.pdf".into(),
            sha256: "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881".into(),
        }),
    }
}

/// An identity token's claims that the server accepts for [`ENROLLMENT_ID`] at [`NOW`].
pub fn identity_claims() -> IdentityClaims {
    let nrn = format!("850714123{:02}", national_register_check("850714123", 1985));
    IdentityClaims {
        iss: Bank::Kbc.issuer(),
        aud: IDENTITY_AUDIENCE.into(),
        enrollment_id: ENROLLMENT_ID.into(),
        nonce: NONCE.into(),
        iat: NOW,
        exp: NOW + 300,
        source: IdentitySource::Bank,
        evidence: Evidence {
            kind: "bank_debit_card".into(),
            reference: "•••• 1234".into(),
        },
        given_name: "Jan".into(),
        family_name: "Peeters".into(),
        birthdate: "1985-07-14".into(),
        national_register_number: nrn,
    }
}

fn response(decision: Decision) -> ActionResponse {
    let approve = decision == Decision::Approve;
    ActionResponse {
        request_id: REQUEST_ID.into(),
        request_hash: jose::sha256_b64(REQUEST_JWS),
        decision,
        reason: (!approve).then_some(DeclineReason::NotMe),
        method: approve.then_some(UvMethod::Pin),
        claims: vec!["name".into()],
        number: None,
        iat: NOW,
    }
}

fn id_token_claims() -> IdTokenClaims {
    IdTokenClaims {
        iss: SERVER_URL.into(),
        sub: "pairwise".into(),
        aud: CLIENT_ID.into(),
        iat: NOW,
        exp: NOW + 300,
        auth_time: NOW,
        acr: "urn:sleutel:acr:code".into(),
        amr: vec!["swk".into(), "pin".into(), "mfa".into()],
        name: Some("Jan Peeters".into()),
        given_name: None,
        family_name: None,
        birthdate: None,
        national_register_number: None,
        phone_number: Some("+32470123456".into()),
        age_over_18: Some(true),
        nonce: Some("n-0S6_WzA2Mj".into()),
        at_hash: None,
        sleutel_action: ApprovedAction {
            kind: ActionKind::Login,
            request_hash: jose::sha256_b64(REQUEST_JWS),
            binding_message: Some("AB12".into()),
            transaction: None,
            document: None,
        },
    }
}

fn proof_claims() -> ProofClaims {
    ProofClaims {
        jti: "proof-1".into(),
        htm: "POST".into(),
        htu: format!("{SERVER_URL}/v1/requests/req-1/response"),
        iat: NOW,
        bh: jose::sha256_b64(b"{}"),
    }
}

/// Every seed of every target.
pub fn all() -> Vec<Seed> {
    let mut seeds = Vec::new();
    let mut add = |target: &'static str, name: &str, data: Vec<u8>| {
        seeds.push(Seed {
            target,
            name: name.to_owned(),
            data,
        });
    };

    // Signed messages: a valid one as received, its claims for the target to sign, and broken
    // variants.
    let login = action_request(ActionKind::Login);
    let action_header = Header::es256(ACTION_TYP).with_kid(KID);
    let action_jws = sign_for_seed(&action_header, &json(&login));
    add("action_request", "ok-login-jws", with(0, &action_jws));
    for (name, kind) in [
        ("login", ActionKind::Login),
        ("share-data", ActionKind::ShareData),
        ("payment", ActionKind::ConfirmTransaction),
        ("sign", ActionKind::Sign),
    ] {
        let claims = json(&action_request(kind));
        add(
            "action_request",
            &format!("ok-claims-{name}"),
            with(1, claims),
        );
    }
    let mut free_text = action_request(ActionKind::ConfirmTransaction);
    free_text.transaction = Some(Transaction::FreeText {
        text: "Ik machtig mijn boekhouder voor 2026".into(),
    });
    add(
        "action_request",
        "ok-claims-free-text",
        with(1, json(&free_text)),
    );
    let mut overflow = login.clone();
    (overflow.iat, overflow.exp) = (i64::MIN, i64::MAX);
    add(
        "action_request",
        "no-lifetime-overflow",
        with(1, json(&overflow)),
    );
    let mut other_account = login.clone();
    other_account.aud = "acct-2".into();
    add(
        "action_request",
        "no-other-account",
        with(1, json(&other_account)),
    );
    add("action_request", "no-garbage", with(0, "a.b.c"));

    add(
        "compact_jws",
        "ok-action-request",
        action_jws.clone().into_bytes(),
    );
    let crit = format!(
        "{}.{}.{}",
        jose::b64(r#"{"alg":"ES256","crit":["x"]}"#),
        jose::b64("{}"),
        jose::b64([0u8; 64])
    );
    add("compact_jws", "no-crit-header", crit.into_bytes());
    add("compact_jws", "no-two-parts", b"e30.e30".to_vec());

    let identity = sign_for_seed(
        &Header::es256(IDENTITY_TYP).with_kid(thumbprint()),
        &json(&identity_claims()),
    );
    add("identity_token", "ok-kbc-jws", with(0, &identity));
    add(
        "identity_token",
        "ok-kbc-claims",
        with(1, json(&identity_claims())),
    );
    let mut overflow = identity_claims();
    (overflow.iat, overflow.exp) = (i64::MIN, i64::MAX);
    add(
        "identity_token",
        "no-lifetime-overflow",
        with(1, json(&overflow)),
    );
    let mut minor = identity_claims();
    minor.nonce = "other".into();
    add("identity_token", "no-other-nonce", with(1, json(&minor)));
    add("compact_jws", "ok-identity-token", identity.into_bytes());

    let id_token = sign_for_seed(
        &Header::es256(ID_TOKEN_TYP).with_kid(KID),
        &json(&id_token_claims()),
    );
    add("id_token", "ok-jws", with(0, &id_token));
    add("id_token", "ok-claims", with(1, json(&id_token_claims())));
    let mut expired = id_token_claims();
    expired.exp = NOW;
    add("id_token", "no-expired", with(1, json(&expired)));
    add("compact_jws", "ok-id-token", id_token.into_bytes());

    let proof_header = Header::es256(PROOF_TYP).with_jwk(jwk());
    let proof = sign_for_seed(&proof_header, &json(&proof_claims()));
    add("dpop_proof", "ok-jws", with(0, &proof));
    add("dpop_proof", "ok-claims", with(1, json(&proof_claims())));
    let mut old = proof_claims();
    old.iat = NOW - 3600;
    add("dpop_proof", "no-too-old", with(1, json(&old)));
    add("compact_jws", "ok-proof", proof.into_bytes());

    for (name, decision) in [
        ("approve", Decision::Approve),
        ("decline", Decision::Decline),
    ] {
        let payload = json(&response(decision));
        let jws = sign_response_for_seed(&payload, decision == Decision::Approve);
        add(
            "general_jws",
            &format!("ok-{name}-jws"),
            with(0, json(&jws)),
        );
        add(
            "general_jws",
            &format!("ok-{name}-payload"),
            with(1, &payload),
        );
        add(
            "api_bodies",
            &format!("ok-response-{name}"),
            with(5, json(&jws)),
        );
    }

    // Links.
    let token = "eyJhbGciOiJFUzI1NiJ9.e30.c2ln";
    add(
        "bank_return_link",
        "ok-token",
        api::bank_return_link(ENROLLMENT_ID, token).into_bytes(),
    );
    add(
        "bank_return_link",
        "no-bank-error",
        b"sleutel://enroll/bank?error=access_denied&error_description=Kaart%20geweigerd".to_vec(),
    );
    add(
        "bank_return_link",
        "no-repeated-token",
        format!(
            "{}&identity_token=x",
            api::bank_return_link(ENROLLMENT_ID, token)
        )
        .into_bytes(),
    );
    let activation = jose::b64([7u8; 32]);
    add(
        "counter_activation_link",
        "ok-link",
        api::counter_activation_link(&activation).into_bytes(),
    );
    add(
        "counter_activation_link",
        "no-old-form-with-code",
        format!("sleutel://enroll/counter?activation={activation}&code=ACDEFGHJKMNP").into_bytes(),
    );
    let id = jose::b64([1u8; 16]);
    let mac = jose::b64([2u8; 16]);
    for (pick, server) in [
        (0u8, "https://sleutel.example"),
        (1, "http://127.0.0.1:8440"),
        (2, "https://id.example/sleutel"),
    ] {
        let qr = SignInLink::Qr {
            id: id.clone(),
            step: 900_000_000,
            mac: mac.clone(),
        };
        let app = SignInLink::App {
            id: id.clone(),
            mac: mac.clone(),
        };
        add(
            "sign_in_link",
            &format!("ok-qr-{pick}"),
            with(pick, qr.to_url(server)),
        );
        add(
            "sign_in_link",
            &format!("ok-app-{pick}"),
            with(pick, app.to_url(server)),
        );
        add(
            "api_bodies",
            &format!("ok-open-sign-in-{pick}"),
            with(
                9,
                json(&OpenSignInLink {
                    link: app.to_url(server),
                }),
            ),
        );
    }
    add(
        "sign_in_link",
        "no-other-host",
        with(0, "https://evil.example/app/scan?kind=qr"),
    );

    // The phone's other readers.
    let push = PushMessage {
        account_id: ACCOUNT_ID.into(),
        request_id: REQUEST_ID.into(),
    };
    add("push_payload", "ok-message", json(&push));
    add(
        "push_payload",
        "no-extra-field",
        br#"{"account_id":"a","request_id":"r","x":1}"#.to_vec(),
    );
    add("server_keys", "ok-any-key", with(0, json(&jwks(KID))));
    add("server_keys", "ok-expected-key", with(1, json(&jwks(KID))));
    let mut no_kid = jwks(KID);
    no_kid.keys[0].kid = None;
    add("server_keys", "no-key-without-kid", with(0, json(&no_kid)));
    add(
        "error_answer",
        "ok-wrong-code",
        with_status(
            400,
            br#"{"error":"wrong_code","error_description":"wrong code","attempts_left":2}"#,
        ),
    );
    add(
        "error_answer",
        "no-server-failure",
        with_status(
            503,
            br#"{"error":"temporarily_unavailable","error_description":"busy"}"#,
        ),
    );
    add(
        "error_answer",
        "no-proxy-page",
        with_status(403, b"<html>captive portal</html>"),
    );
    for (pick, name, typed) in [
        (0u8, "ok-identification-code", "ACDE-FGHJ"),
        (1, "ok-activation-code", "acde fghj kmnp"),
        (2, "ok-mobile-number", "0470 12 34 56"),
        (2, "ok-mobile-international", "+32 470 12 34 56"),
        (0, "no-look-alike", "ACDE-FGH1"),
        (
            3,
            "ok-fcm-token",
            "dGVzdC10b2tlbg:APA91bH-fcm_token-0123456789",
        ),
        (
            4,
            "ok-apns-token",
            "A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F90",
        ),
    ] {
        add("typed_codes", name, with(pick, typed));
    }

    // A browser's headers: the pick byte chooses the server, the next one where the cookie
    // header ends.
    for (pick, name, cookie, language) in [
        (
            0u8,
            "ok-secure-cookie",
            "theme=dark; __Host-sleutel_sign_in=s3ss10n",
            "fr-BE,fr;q=0.9",
        ),
        (
            1,
            "ok-loopback-cookie",
            "sleutel_sign_in=s3ss10n",
            "en-GB;q=0.8, nl;q=0.9",
        ),
        (
            0,
            "no-planted-cookie",
            "sleutel_sign_in=planted",
            "de, *;q=0.1",
        ),
    ] {
        let mut data = vec![pick, u8::try_from(cookie.len()).unwrap_or(u8::MAX)];
        data.extend_from_slice(cookie.as_bytes());
        data.extend_from_slice(language.as_bytes());
        add("browser_headers", name, data);
    }

    // The server's forms and query strings.
    let challenge = jose::sha256_b64(b"verifier-of-at-least-43-characters-0123456789");
    let authorize = format!(
        "response_type=code&client_id={CLIENT_ID}&redirect_uri={}&scope=openid%20profile\
         &state=s1&nonce=n1&code_challenge={challenge}&code_challenge_method=S256\
         &claims=%7B%22id_token%22%3A%7B%22birthdate%22%3A%7B%22essential%22%3Atrue%7D%7D%7D",
        RelyingPartyConfig::DEMO_REDIRECT_URI
    );
    add(
        "authorize_query",
        "ok-code-flow",
        authorize.clone().into_bytes(),
    );
    add(
        "authorize_query",
        "no-plain-pkce",
        authorize
            .replace("code_challenge_method=S256", "code_challenge_method=plain")
            .into_bytes(),
    );
    add(
        "authorize_query",
        "no-prompt-none",
        format!("{authorize}&prompt=none").into_bytes(),
    );
    for (name, form) in [
        (
            "ok-login",
            "scope=openid%20profile&login_hint=%2B32470123456&binding_message=AB12\
             &requested_expiry=120&acr_values=urn%3Asleutel%3Aacr%3Acode-or-biometric\
             &number_matching=true",
        ),
        (
            "ok-share-data",
            "scope=openid&login_hint=0470123456&kind=share_data&claims=%7B%22id_token%22%3A\
             %7B%22birthdate%22%3A%7B%22essential%22%3Atrue%7D%2C%22phone_number%22%3Anull%7D%7D",
        ),
        (
            "ok-payment",
            "scope=openid&login_hint=%2B32470123456&kind=confirm_transaction\
             &transaction_amount=125.50&transaction_currency=EUR&transaction_payee=Stad%20Gent\
             &transaction_iban=BE68%205390%200754%207034",
        ),
        (
            "ok-free-text",
            "scope=openid&login_hint=%2B32470123456&kind=confirm_transaction\
             &transaction_text=Ik%20machtig%20mijn%20boekhouder",
        ),
        (
            "ok-sign",
            "scope=openid&login_hint=%2B32470123456&kind=sign&document_name=Huurcontract.pdf\
             &document_sha256=2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881",
        ),
        (
            "no-repeated-hint",
            "scope=openid&login_hint=0470123456&login_hint=0470123457",
        ),
    ] {
        add("bc_authorize_form", name, with(0, form));
    }
    add(
        "bc_authorize_form",
        "ok-ping",
        with(
            1,
            "scope=openid&login_hint=%2B32470123456&client_notification_token=t0k3n-0123456789",
        ),
    );
    add(
        "token_form",
        "ok-ciba",
        b"grant_type=urn%3Aopenid%3Aparams%3Agrant-type%3Aciba&auth_req_id=abc-123".to_vec(),
    );
    add(
        "token_form",
        "ok-code",
        format!(
            "grant_type=authorization_code&code=c0de&redirect_uri={}\
             &code_verifier=verifier-of-at-least-43-characters-0123456789",
            RelyingPartyConfig::DEMO_REDIRECT_URI
        )
        .into_bytes(),
    );
    add(
        "token_form",
        "no-malformed-auth-req-id",
        b"grant_type=urn%3Aopenid%3Aparams%3Agrant-type%3Aciba&auth_req_id=a.b".to_vec(),
    );
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            RelyingPartyConfig::DEMO_CLIENT_ID,
            RelyingPartyConfig::DEMO_SECRET
        ))
    );
    let mut with_basic = vec![2u8, u8::try_from(basic.len()).unwrap_or(u8::MAX)];
    with_basic.extend_from_slice(basic.as_bytes());
    with_basic.extend_from_slice(b"grant_type=urn%3Aopenid%3Aparams%3Agrant-type%3Aciba");
    add("client_assertion", "ok-basic", with_basic);
    let assertion = serde_json::json!({
        "iss": KEY_CLIENT_ID, "sub": KEY_CLIENT_ID, "aud": format!("{SERVER_URL}/oidc/token"),
        "exp": NOW + 120, "iat": NOW, "jti": "assertion-1",
    });
    add(
        "client_assertion",
        "ok-assertion-claims",
        with(1, json(&assertion)),
    );
    let signed = sign_for_seed(&Header::es256("JWT").with_kid(KID), &json(&assertion));
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair(
            "client_assertion_type",
            sleutel_protocol::api::oidc::CLIENT_ASSERTION_TYPE_JWT_BEARER,
        )
        .append_pair("client_assertion", &signed)
        .finish();
    add("client_assertion", "ok-assertion-form", with(0, form));
    let far = serde_json::json!({
        "iss": KEY_CLIENT_ID, "sub": KEY_CLIENT_ID, "aud": SERVER_URL,
        "exp": i64::MAX, "iat": NOW, "jti": "assertion-2",
    });
    add("client_assertion", "no-exp-far-ahead", with(1, json(&far)));
    add(
        "bank_form",
        "ok-debit-card",
        format!(
            "enrollment_id={ENROLLMENT_ID}&nonce={NONCE}&redirect_uri=sleutel%3A%2F%2Fenroll%2Fbank\
             &card_number=6703%200000%200000%200000%2003&card_pin=1234"
        )
        .into_bytes(),
    );
    add(
        "bank_form",
        "no-other-redirect",
        format!(
            "enrollment_id={ENROLLMENT_ID}&nonce={NONCE}&redirect_uri=https%3A%2F%2Fevil.example\
             &card_number=6703000000000000003&card_pin=1234"
        )
        .into_bytes(),
    );

    // The phone API's and the simulators' JSON bodies (the pick byte is the type's index in
    // the `api_bodies` target).
    let key = jwk();
    let bodies: Vec<(u8, &str, Vec<u8>)> = vec![
        (
            0,
            "start-bank",
            json(&StartEnrollment {
                phone_number: "+32470123456".into(),
                source: IdentitySource::Bank,
                bank: Some(Bank::Kbc),
                replaces: None,
            }),
        ),
        (
            1,
            "submit-identity",
            json(&SubmitIdentity {
                identity_token: token.into(),
            }),
        ),
        (
            2,
            "submit-code",
            json(&SubmitIdentityCode {
                code: "ACDEFGHJ".into(),
                activation_token: Some(activation.clone()),
            }),
        ),
        (
            3,
            "verify-sms",
            json(&VerifySms {
                code: "123456".into(),
            }),
        ),
        (
            4,
            "complete",
            json(&CompleteEnrollment {
                device_key: key.clone(),
                pin_key: key.clone(),
                device_pop: "c2ln".into(),
                pin_pop: "c2ln".into(),
                device_key_in_hardware: true,
            }),
        ),
        (
            6,
            "change-pin",
            json(&ChangePin {
                new_pin_key: key.clone(),
                current_pin_signature: "c2ln".into(),
                new_pin_pop: "c2ln".into(),
            }),
        ),
        (
            7,
            "biometric-key",
            json(&RegisterBiometricKey {
                biometric_key: key.clone(),
                pin_signature: "c2ln".into(),
                biometric_pop: "c2ln".into(),
            }),
        ),
        (
            8,
            "push-token",
            json(&RegisterPushToken {
                platform: PushPlatform::Apns,
                token: "a".repeat(64),
            }),
        ),
        (
            10,
            "block-with-code",
            json(&BlockMyKey {
                source: Some(IdentitySource::Counter),
                activation_code: Some("ACDEFGHJKMNP".into()),
                activation_token: Some(activation.clone()),
                ..BlockMyKey::default()
            }),
        ),
        (
            11,
            "eid-identification",
            json(&EidIdentification {
                phone_number: "+32470123456".into(),
                email: "jan@example.be".into(),
                card_serial: "592-1234567-89".into(),
                card_pin: "1234".into(),
            }),
        ),
        (
            12,
            "counter",
            json(&CounterActivation {
                national_register_number: "85071412345".into(),
                document_number: "592123456789".into(),
                email: "jan@example.be".into(),
            }),
        ),
        (
            13,
            "new-citizen",
            json(&NewCitizen {
                given_name: Some("Jan".into()),
                bank: Some(Bank::Kbc),
                ..NewCitizen::default()
            }),
        ),
    ];
    for (pick, name, body) in bodies {
        add("api_bodies", &format!("ok-{name}"), with(pick, body));
    }
    add(
        "api_bodies",
        "no-unknown-field",
        with(3, r#"{"code":"1","x":2}"#),
    );
    seeds
}

fn with_status(status: u16, body: &[u8]) -> Vec<u8> {
    let mut data = status.to_be_bytes().to_vec();
    data.extend_from_slice(body);
    data
}
