//! The life of an account after enrollment, end to end: unblock after wrong codes (with a new
//! device key that shuts out a copy of the phone's files), code change, biometrics (approval, a
//! code-only request, cancellation, invalidation, disabling), device change, deactivation,
//! blocking a lost phone from outside, two isolated accounts on one phone, and the push token
//! the app registers. Phone and server both record each event.

use p256::ecdsa::SigningKey;
use p256::elliptic_curve::Generate;
use sleutel_core::testing::{BiometricPrompt, TestKeystore};
use sleutel_core::{
    AccountEventKind, AccountStatus, Approval, CoreError, IdentitySource, Keystore, KeystoreError,
    PushPlatform,
};
use sleutel_harness::phone::{VirtualPhone, silent};
use sleutel_harness::rp::{LoginRequest, RelyingParty};
use sleutel_protocol::api::sim::{BlockMyKey, Citizen};
use sleutel_protocol::api::{self, ChangePin};
use sleutel_protocol::dpop;
use sleutel_protocol::jose::{self, Es256Signer, GeneralJws, Jwk};
use sleutel_protocol::response::{ActionResponse, Decision, UvMethod};
use sleutel_server::Policy;

use crate::common::*;

const NEW_CODE: &str = "27182";

/// The relying party asks for a login that accepts a biometric.
async fn biometric_login(url: &str, number: &str) -> RelyingParty {
    let rp = RelyingParty::demo(url).unwrap();
    rp.backchannel_authorize(&LoginRequest::new(number).allowing_biometrics())
        .await
        .expect("backchannel authentication starts");
    rp
}

async fn block_with_wrong_codes(e: &mut Enrolled, url: &str) {
    start_login(url, &e.phone_number).await;
    let view = e.phone.next_request(WAIT).await.unwrap();
    for _ in 0..2 {
        let _ = e
            .phone
            .authenticator()
            .approve(view.request_id.clone(), Approval::code(WRONG_CODE))
            .await;
    }
    let third = e
        .phone
        .authenticator()
        .approve(view.request_id.clone(), Approval::code(WRONG_CODE))
        .await;
    assert_eq!(third, Err(CoreError::AccountBlocked));
}

fn phone_events(phone: &VirtualPhone) -> Vec<AccountEventKind> {
    let mut events: Vec<AccountEventKind> = phone
        .authenticator()
        .account_events()
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    events.reverse();
    events
}

async fn eid_code(phone: &VirtualPhone, citizen: &Citizen, number: &str) -> String {
    phone
        .sim()
        .eid_identification(
            number,
            &VirtualPhone::email_of(citizen),
            &citizen.eid_card.serial,
            &citizen.eid_card.pin,
        )
        .await
        .unwrap()
        .identification_code
}

#[tokio::test]
async fn a_blocked_account_is_unblocked_from_the_same_phone_with_a_new_code() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470200001").await;
    block_with_wrong_codes(&mut e, &server.url()).await;
    let account_id = e.account.account_id.clone();
    let code = eid_code(&e.phone, &e.citizen, &e.phone_number).await;

    e.phone
        .authenticator()
        .unblock_with_eid(account_id.clone(), code)
        .await
        .unwrap();
    let account = e
        .phone
        .finish_enrollment(&e.phone_number, 1, NEW_CODE, &silent)
        .await
        .unwrap();
    start_login(&server.url(), &e.phone_number).await;
    let view = e.phone.next_request(WAIT).await.unwrap();
    let old = e
        .phone
        .authenticator()
        .approve(view.request_id.clone(), Approval::code(CODE))
        .await;
    let new = e
        .phone
        .authenticator()
        .approve(view.request_id.clone(), Approval::code(NEW_CODE))
        .await;

    assert_eq!(account.account_id, account_id);
    assert_eq!(account.status, AccountStatus::Active);
    assert_eq!(old, Err(CoreError::WrongCode { attempts_left: 2 }));
    assert_eq!(new, Ok(()));
    let events = server_events(&server, &account_id);
    assert!(events.contains(&"blocked".to_string()), "{events:?}");
    assert!(events.contains(&"unblocked".to_string()), "{events:?}");
    // The phone's earlier device key was replaced by a new one.
    assert!(events.contains(&"device_revoked".to_string()), "{events:?}");
    assert_eq!(
        phone_events(&e.phone),
        [
            AccountEventKind::Activated,
            AccountEventKind::Blocked,
            AccountEventKind::Unblocked
        ]
    );
}

#[tokio::test]
async fn a_blocked_account_is_unblocked_through_the_bank_too() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470200002").await;
    block_with_wrong_codes(&mut e, &server.url()).await;

    let handoff = e
        .phone
        .authenticator()
        .unblock_with_bank(e.account.account_id.clone(), e.citizen.bank)
        .await
        .unwrap();
    let link = e
        .phone
        .sim()
        .bank_authorize(
            &handoff.handoff_url,
            &e.citizen.debit_card.number,
            &e.citizen.debit_card.pin,
        )
        .await
        .unwrap();
    e.phone
        .authenticator()
        .complete_bank_handoff(link)
        .await
        .unwrap();
    e.phone
        .finish_enrollment(&e.phone_number, 1, NEW_CODE, &silent)
        .await
        .unwrap();

    start_login(&server.url(), &e.phone_number).await;
    assert!(e.phone.approve_next(NEW_CODE, WAIT).await.is_ok());
}

#[tokio::test]
async fn another_persons_identity_cannot_unblock_this_phones_account() {
    let server = server().await;
    let e = enrolled(&server.url(), "+32470200003").await;
    let stranger = citizen(&server.url()).await;
    let code = eid_code(&e.phone, &stranger, &e.phone_number).await;

    let result = e
        .phone
        .authenticator()
        .unblock_with_eid(e.account.account_id.clone(), code)
        .await;

    assert!(
        matches!(result, Err(CoreError::IdentityRefused { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn the_code_is_changed_with_the_current_code_and_the_old_one_stops_working() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470200004").await;
    let auth = e.phone.authenticator();
    let id = e.account.account_id.clone();

    let wrong_current = auth
        .change_code(
            id.clone(),
            WRONG_CODE.into(),
            NEW_CODE.into(),
            NEW_CODE.into(),
        )
        .await;
    let weak = auth
        .change_code(id.clone(), CODE.into(), "11111".into(), "11111".into())
        .await;
    auth.change_code(id.clone(), CODE.into(), NEW_CODE.into(), NEW_CODE.into())
        .await
        .unwrap();
    start_login(&server.url(), &e.phone_number).await;
    let view = e.phone.next_request(WAIT).await.unwrap();
    let auth = e.phone.authenticator();
    let old = auth
        .approve(view.request_id.clone(), Approval::code(CODE))
        .await;
    let new = auth
        .approve(view.request_id.clone(), Approval::code(NEW_CODE))
        .await;

    assert_eq!(
        wrong_current,
        Err(CoreError::WrongCode { attempts_left: 2 })
    );
    assert_eq!(weak, Err(CoreError::WeakCode));
    // The successful change reset the count: the old code is one wrong try of three.
    assert_eq!(old, Err(CoreError::WrongCode { attempts_left: 2 }));
    assert_eq!(new, Ok(()));
    assert!(server_events(&server, &id).contains(&"code_changed".to_string()));
    assert!(phone_events(&e.phone).contains(&AccountEventKind::CodeChanged));
}

#[tokio::test]
async fn a_login_that_allows_biometrics_is_approved_with_the_biometric_key() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470200005").await;
    let id = e.account.account_id.clone();
    e.phone
        .authenticator()
        .enable_biometrics(id.clone(), CODE.into())
        .await
        .unwrap();
    let rp = RelyingParty::demo(&server.url()).unwrap();
    let started = rp
        .backchannel_authorize(&LoginRequest::new(&e.phone_number).allowing_biometrics())
        .await
        .unwrap();

    let view = e.phone.next_request(WAIT).await.unwrap();
    e.phone
        .authenticator()
        .approve(view.request_id.clone(), Approval::biometric())
        .await
        .unwrap();
    let token = rp.wait_for_token(&started, WAIT).await.unwrap();
    let claims = rp.verify_id_token(&token.id_token).await.unwrap();

    assert!(!view.code_only);
    assert_eq!(claims.acr, api::oidc::ACR_CODE_OR_BIOMETRIC);
    assert!(claims.amr.contains(&"user".to_string()), "{:?}", claims.amr);
    assert!(e.phone.account().unwrap().unwrap().biometrics_enabled);
    let history = e.phone.authenticator().history().unwrap();
    assert_eq!(history[0].method, Some(sleutel_core::UvMethod::Biometric));
    assert!(server_events(&server, &id).contains(&"biometric_enabled".to_string()));
}

#[tokio::test]
async fn a_code_only_request_refuses_a_biometric_answer() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470200006").await;
    e.phone
        .authenticator()
        .enable_biometrics(e.account.account_id.clone(), CODE.into())
        .await
        .unwrap();
    let (rp, started) = start_login(&server.url(), &e.phone_number).await;
    let view = e.phone.next_request(WAIT).await.unwrap();

    let biometric = e
        .phone
        .authenticator()
        .approve(view.request_id.clone(), Approval::biometric())
        .await;
    let code = e
        .phone
        .authenticator()
        .approve(view.request_id.clone(), Approval::code(CODE))
        .await;

    assert!(view.code_only);
    assert_eq!(biometric, Err(CoreError::CodeRequired));
    assert_eq!(code, Ok(()));
    let token = rp.wait_for_token(&started, WAIT).await.unwrap();
    assert_eq!(
        rp.verify_id_token(&token.id_token).await.unwrap().acr,
        api::oidc::ACR_CODE
    );
}

#[tokio::test]
async fn a_cancelled_prompt_leaves_the_request_pending() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470200007").await;
    e.phone
        .authenticator()
        .enable_biometrics(e.account.account_id.clone(), CODE.into())
        .await
        .unwrap();
    biometric_login(&server.url(), &e.phone_number).await;
    let view = e.phone.next_request(WAIT).await.unwrap();
    e.phone.keystore().set_prompt(BiometricPrompt::Cancel);

    let cancelled = e
        .phone
        .authenticator()
        .approve(view.request_id.clone(), Approval::biometric())
        .await;

    assert_eq!(
        cancelled,
        Err(CoreError::Keystore {
            error: KeystoreError::UserCancelled
        })
    );
    assert_eq!(e.phone.authenticator().pending().unwrap().len(), 1);
    assert!(e.phone.account().unwrap().unwrap().biometrics_enabled);
}

#[tokio::test]
async fn an_invalidated_biometric_key_falls_back_to_the_code_and_can_be_enabled_again() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470200008").await;
    let id = e.account.account_id.clone();
    e.phone
        .authenticator()
        .enable_biometrics(id.clone(), CODE.into())
        .await
        .unwrap();
    biometric_login(&server.url(), &e.phone_number).await;
    let view = e.phone.next_request(WAIT).await.unwrap();

    e.phone.keystore().enroll_new_biometric().unwrap();
    let invalidated = e
        .phone
        .authenticator()
        .approve(view.request_id.clone(), Approval::biometric())
        .await;
    let enabled_after = e.phone.account().unwrap().unwrap().biometrics_enabled;
    let with_code = e
        .phone
        .authenticator()
        .approve(view.request_id.clone(), Approval::code(CODE))
        .await;
    e.phone
        .authenticator()
        .enable_biometrics(id.clone(), CODE.into())
        .await
        .unwrap();
    biometric_login(&server.url(), &e.phone_number).await;
    let next = e.phone.next_request(WAIT).await.unwrap();
    let again = e
        .phone
        .authenticator()
        .approve(next.request_id.clone(), Approval::biometric())
        .await;

    assert_eq!(invalidated, Err(CoreError::BiometricKeyInvalidated));
    assert!(!enabled_after);
    assert_eq!(with_code, Ok(()));
    assert_eq!(again, Ok(()));
    assert!(phone_events(&e.phone).contains(&AccountEventKind::BiometricsInvalidated));
    let events = server_events(&server, &id);
    assert!(
        events.contains(&"biometric_disabled".to_string()),
        "{events:?}"
    );
}

#[tokio::test]
async fn disabled_biometrics_cannot_approve() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470200009").await;
    let id = e.account.account_id.clone();
    let auth = e.phone.authenticator();
    auth.enable_biometrics(id.clone(), CODE.into())
        .await
        .unwrap();

    auth.disable_biometrics(id.clone()).await.unwrap();
    biometric_login(&server.url(), &e.phone_number).await;
    let view = e.phone.next_request(WAIT).await.unwrap();
    let result = e
        .phone
        .authenticator()
        .approve(view.request_id.clone(), Approval::biometric())
        .await;

    assert_eq!(result, Err(CoreError::BiometricsNotEnabled));
    assert!(!e.phone.account().unwrap().unwrap().biometrics_enabled);
    assert!(phone_events(&e.phone).contains(&AccountEventKind::BiometricsDisabled));
}

#[tokio::test]
async fn activating_the_same_person_on_a_new_phone_revokes_the_old_phone_for_good() {
    let server = server().await;
    let mut old = enrolled(&server.url(), "+32470200010").await;
    let (mut new_phone, _dir) = new_phone(&server.url());
    new_phone
        .enroll_with_eid(&old.citizen, "+32470200011", CODE, &silent)
        .await
        .unwrap();

    start_login(&server.url(), "+32470200011").await;
    new_phone.approve_next(CODE, WAIT).await.unwrap();
    let refreshed = old.phone.authenticator().refresh_pending().await;
    let account = old.phone.account().unwrap().unwrap();
    let events = server_events(&server, &account.account_id);

    assert_eq!(refreshed, Ok(vec![]));
    assert_eq!(account.status, AccountStatus::Revoked);
    assert!(events.contains(&"device_revoked".to_string()), "{events:?}");
    assert!(phone_events(&old.phone).contains(&AccountEventKind::Revoked));
    // It can never answer again, nor change anything.
    let changed = old
        .phone
        .authenticator()
        .change_code(
            account.account_id.clone(),
            CODE.into(),
            NEW_CODE.into(),
            NEW_CODE.into(),
        )
        .await;
    assert_eq!(changed, Err(CoreError::DeviceRevoked));
    assert!(
        old.phone
            .next_request(std::time::Duration::from_secs(1))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_lost_phone_is_blocked_from_the_block_page_and_a_new_phone_takes_over() {
    let server = server().await;
    let mut lost = enrolled(&server.url(), "+32470200012").await;
    let (rp, started) = start_login(&server.url(), &lost.phone_number).await;
    let view = lost.phone.next_request(WAIT).await.unwrap();

    lost.phone
        .sim()
        .block_my_key(&BlockMyKey {
            source: Some(IdentitySource::Eid),
            card_serial: Some(lost.citizen.eid_card.serial.clone()),
            card_pin: Some(lost.citizen.eid_card.pin.clone()),
            ..BlockMyKey::default()
        })
        .await
        .unwrap();
    let open_login = rp.poll_token(&started.auth_req_id).await;
    let rp_after_block = RelyingParty::demo(&server.url()).unwrap();
    let new_login = rp_after_block
        .backchannel_authorize(&LoginRequest::new(&lost.phone_number))
        .await
        .unwrap();
    let approve = lost
        .phone
        .authenticator()
        .approve(view.request_id.clone(), Approval::code(CODE))
        .await;

    assert_eq!(open_login.unwrap_err().api_code(), Some("access_denied"));
    // A blocked key is answered as any number is: a request that nobody answers.
    assert_eq!(
        rp_after_block
            .poll_token(&new_login.auth_req_id)
            .await
            .unwrap_err()
            .api_code(),
        Some("authorization_pending")
    );
    assert!(
        matches!(
            approve,
            Err(CoreError::AccountBlocked | CoreError::RequestAlreadyAnswered)
        ),
        "{approve:?}"
    );
    assert!(server_events(&server, &lost.account.account_id).contains(&"blocked".to_string()));

    // The person activates a new phone (any source): unblocked there, the lost one revoked.
    let (mut replacement, _dir) = new_phone(&server.url());
    replacement
        .enroll_at_counter(&lost.citizen, &lost.phone_number, NEW_CODE, &silent)
        .await
        .unwrap();
    start_login(&server.url(), &lost.phone_number).await;
    assert!(replacement.approve_next(NEW_CODE, WAIT).await.is_ok());
    let events = server_events(&server, &lost.account.account_id);
    assert!(events.contains(&"unblocked".to_string()), "{events:?}");
    assert!(events.contains(&"device_revoked".to_string()), "{events:?}");
}

#[tokio::test]
async fn the_block_page_refuses_a_wrong_card_pin() {
    let server = server().await;
    let e = enrolled(&server.url(), "+32470200013").await;
    let wrong = if e.citizen.debit_card.pin == "0000" {
        "1111"
    } else {
        "0000"
    };

    let result = e
        .phone
        .sim()
        .block_my_key(&BlockMyKey {
            source: Some(IdentitySource::Bank),
            card_number: Some(e.citizen.debit_card.number.clone()),
            card_pin: Some(wrong.into()),
            ..BlockMyKey::default()
        })
        .await;

    assert_eq!(result.unwrap_err().api_code(), Some("wrong_card_pin"));
    start_login(&server.url(), &e.phone_number).await;
}

#[tokio::test]
async fn deactivating_removes_the_account_from_the_phone_and_the_server_stops_reaching_it() {
    let server = server().await;
    let e = enrolled(&server.url(), "+32470200014").await;
    let id = e.account.account_id.clone();

    e.phone
        .authenticator()
        .deactivate(id.clone())
        .await
        .unwrap();
    let rp = RelyingParty::demo(&server.url()).unwrap();
    let login = rp
        .backchannel_authorize(&LoginRequest::new(&e.phone_number))
        .await
        .unwrap();
    let pushes = e.phone.sim().push_messages(&id, 0).await.unwrap();

    assert!(e.phone.authenticator().accounts().unwrap().is_empty());
    // The relying party is answered as for any number; nothing reaches a phone.
    assert_eq!(
        rp.poll_token(&login.auth_req_id)
            .await
            .unwrap_err()
            .api_code(),
        Some("authorization_pending")
    );
    assert!(pushes.messages.is_empty(), "{pushes:?}");
    assert!(server_events(&server, &id).contains(&"deactivated".to_string()));
    assert_eq!(
        phone_events(&e.phone),
        [AccountEventKind::Activated, AccountEventKind::Deactivated]
    );
}

#[tokio::test]
async fn two_accounts_on_one_phone_are_isolated() {
    let server = server().await;
    let (mut phone, _dir) = new_phone(&server.url());
    let (_, first) = phone
        .enroll_new_citizen_with(IdentitySource::Bank, "+32470200015", CODE, &silent)
        .await
        .unwrap();
    let (_, second) = phone
        .enroll_new_citizen_with(IdentitySource::Eid, "+32470200016", NEW_CODE, &silent)
        .await
        .unwrap();

    start_login(&server.url(), "+32470200016").await;
    let view = phone.next_request(WAIT).await.unwrap();
    let with_first_code = phone
        .authenticator()
        .approve(view.request_id.clone(), Approval::code(CODE))
        .await;
    let with_second_code = phone
        .authenticator()
        .approve(view.request_id.clone(), Approval::code(NEW_CODE))
        .await;
    // Blocking the second account leaves the first untouched.
    start_login(&server.url(), "+32470200016").await;
    let next = phone.next_request(WAIT).await.unwrap();
    for _ in 0..3 {
        let _ = phone
            .authenticator()
            .approve(next.request_id.clone(), Approval::code(WRONG_CODE))
            .await;
    }
    start_login(&server.url(), "+32470200015").await;
    let for_first = phone.next_request(WAIT).await.unwrap();
    let first_still_works = phone
        .authenticator()
        .approve(for_first.request_id.clone(), Approval::code(CODE))
        .await;

    assert_ne!(first.account_id, second.account_id);
    assert_eq!(view.account_id, second.account_id);
    assert_eq!(
        with_first_code,
        Err(CoreError::WrongCode { attempts_left: 2 })
    );
    assert_eq!(with_second_code, Ok(()));
    assert_eq!(for_first.account_id, first.account_id);
    assert_eq!(first_still_works, Ok(()));
    let accounts = phone.authenticator().accounts().unwrap();
    let status = |id: &str| accounts.iter().find(|a| a.account_id == id).unwrap().status;
    assert_eq!(status(&first.account_id), AccountStatus::Active);
    assert_eq!(status(&second.account_id), AccountStatus::Blocked);
}

#[tokio::test]
async fn two_accounts_at_two_servers_on_one_phone_are_isolated() {
    let (one, two) = (server().await, server().await);
    let dir = tempfile::tempdir().unwrap();
    // The app is set up for one server at a time; its store and keystore hold every account.
    let first = {
        let phone = VirtualPhone::open(&one.url(), dir.path()).unwrap();
        let (_, account) = phone
            .enroll_new_citizen_with(IdentitySource::Bank, "+32470200017", CODE, &silent)
            .await
            .unwrap();
        phone.save().unwrap();
        account
    };
    let second = {
        let phone = VirtualPhone::open(&two.url(), dir.path()).unwrap();
        let (_, account) = phone
            .enroll_new_citizen_with(IdentitySource::Counter, "+32470200018", NEW_CODE, &silent)
            .await
            .unwrap();
        phone.save().unwrap();
        account
    };
    let mut phone = VirtualPhone::open(&one.url(), dir.path()).unwrap();

    start_login(&two.url(), "+32470200018").await;
    let from_two = phone.next_request(WAIT).await.unwrap();
    let with_first_code = phone
        .authenticator()
        .approve(from_two.request_id.clone(), Approval::code(CODE))
        .await;
    let with_second_code = phone
        .authenticator()
        .approve(from_two.request_id.clone(), Approval::code(NEW_CODE))
        .await;
    // The second server blocks its account; the first server's account is untouched.
    start_login(&two.url(), "+32470200018").await;
    let next = phone.next_request(WAIT).await.unwrap();
    for _ in 0..3 {
        let _ = phone
            .authenticator()
            .approve(next.request_id.clone(), Approval::code(WRONG_CODE))
            .await;
    }
    start_login(&one.url(), "+32470200017").await;
    let from_one = phone.next_request(WAIT).await.unwrap();
    let first_still_works = phone
        .authenticator()
        .approve(from_one.request_id.clone(), Approval::code(CODE))
        .await;

    assert_eq!(first.server_url, one.url());
    assert_eq!(second.server_url, two.url());
    assert_eq!(from_two.account_id, second.account_id);
    assert_eq!(
        with_first_code,
        Err(CoreError::WrongCode { attempts_left: 2 })
    );
    assert_eq!(with_second_code, Ok(()));
    assert_eq!(from_one.account_id, first.account_id);
    assert_eq!(first_still_works, Ok(()));
    let accounts = phone.authenticator().accounts().unwrap();
    let status = |id: &str| accounts.iter().find(|a| a.account_id == id).unwrap().status;
    assert_eq!(status(&first.account_id), AccountStatus::Active);
    assert_eq!(status(&second.account_id), AccountStatus::Blocked);
    assert_eq!(server_events(&one, &first.account_id), ["activated"]);
    assert_eq!(
        server_events(&two, &second.account_id),
        [
            "activated",
            "wrong_code",
            "wrong_code",
            "wrong_code",
            "wrong_code",
            "blocked"
        ]
    );
    // Deactivating at one server leaves the other server's account on the phone.
    phone
        .authenticator()
        .deactivate(first.account_id.clone())
        .await
        .unwrap();
    let left: Vec<String> = phone
        .authenticator()
        .accounts()
        .unwrap()
        .into_iter()
        .map(|a| a.account_id)
        .collect();
    assert_eq!(left, vec![second.account_id]);
}

// --- an unblock replaces the device key ---------------------------------------------------------

/// The one device key `phone` generated since it was opened (its enrollment's).
fn device_key_alias(phone: &VirtualPhone) -> String {
    let aliases = phone.keystore().key_aliases();
    assert_eq!(aliases.len(), 1, "{aliases:?}");
    aliases[0].clone()
}

/// Unblocks `e`'s account from its phone with an identification code and [`NEW_CODE`].
async fn unblock(e: &Enrolled) {
    e.phone
        .unblock(
            &e.account.account_id,
            &e.citizen,
            IdentitySource::Eid,
            NEW_CODE,
            &silent,
        )
        .await
        .unwrap();
}

/// A phone API call signed with the key `alias` of `keystore`, made by hand as whoever holds a
/// copy of the phone's files can; the error code of the answer, or `None` on success.
async fn call_with_key(
    url: &str,
    keystore: &TestKeystore,
    alias: &str,
    method: reqwest::Method,
    path: &str,
    body: Vec<u8>,
) -> Option<String> {
    let jwk = Jwk::from_sec1(&keystore.public_key(alias.to_owned()).unwrap()).unwrap();
    let target = format!("{url}{path}");
    // Unique per call: the server refuses a proof id it has seen for the key.
    let jti = jose::sha256_b64(SigningKey::generate().verifying_key().to_sec1_point(false));
    let proof = dpop::make_proof(
        &keystore.signer(alias),
        &jwk,
        method.as_str(),
        &target,
        &body,
        &jti,
        sleutel_protocol::clock::now(),
    )
    .unwrap();
    let mut request = sleutel_harness::http_client()
        .unwrap()
        .request(method, target)
        .header(dpop::PROOF_HEADER, proof);
    if !body.is_empty() {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().await.unwrap();
    if response.status().is_success() {
        return None;
    }
    let error: api::ApiError = response.json().await.unwrap();
    Some(error.error)
}

/// An approval of `request_id` signed with the device key `alias` of `keystore` and a PIN key
/// derived from a guessed code. The copy cannot fetch the request, so it answers blind.
fn guessed_approval(keystore: &TestKeystore, alias: &str, request_id: &str) -> Vec<u8> {
    let answer = ActionResponse {
        request_id: request_id.to_owned(),
        request_hash: jose::sha256_b64(request_id),
        decision: Decision::Approve,
        reason: None,
        method: Some(UvMethod::Pin),
        claims: vec!["name".into()],
        number: None,
        iat: sleutel_protocol::clock::now(),
    };
    let mut jws = GeneralJws::new(&answer.to_payload());
    jws.add_signature(&ActionResponse::device_header(), &keystore.signer(alias))
        .unwrap();
    jws.add_signature(
        &ActionResponse::uv_header(UvMethod::Pin),
        &SigningKey::generate(),
    )
    .unwrap();
    serde_json::to_vec(&jws).unwrap()
}

/// A code change to a new PIN key, authorised by a PIN key derived from a guessed code.
fn guessed_code_change(keystore: &TestKeystore, alias: &str) -> Vec<u8> {
    let device = Jwk::from_sec1(&keystore.public_key(alias.to_owned()).unwrap()).unwrap();
    let (guess, new) = (SigningKey::generate(), SigningKey::generate());
    let new_jwk = Jwk::from_verifying_key(new.verifying_key());
    let message = api::pin_change_message(&device.thumbprint(), &new_jwk.thumbprint());
    let sign = |key: &SigningKey| jose::b64(key.sign_es256(message.as_bytes()).unwrap());
    serde_json::to_vec(&ChangePin {
        new_pin_key: new_jwk,
        current_pin_signature: sign(&guess),
        new_pin_pop: sign(&new),
    })
    .unwrap()
}

#[tokio::test]
async fn after_an_unblock_a_copy_of_the_phones_files_is_shut_out_and_the_new_key_approves() {
    let server = server().await;
    let url = server.url();
    let mut e = enrolled(&url, "+32470200019").await;
    let old = device_key_alias(&e.phone);
    let copy_dir = tempfile::tempdir().unwrap();
    e.phone.copy_files_to(copy_dir.path()).unwrap();
    block_with_wrong_codes(&mut e, &url).await;

    unblock(&e).await;
    start_login(&url, &e.phone_number).await;
    let view = e.phone.next_request(WAIT).await.unwrap();
    let copy = VirtualPhone::open(&url, copy_dir.path()).unwrap();
    let keys = copy.keystore();
    let request = api::path_request_response(&view.request_id);
    let mut refusals = vec![
        call_with_key(
            &url,
            keys,
            &old,
            reqwest::Method::GET,
            api::PATH_REQUESTS,
            vec![],
        )
        .await,
        call_with_key(
            &url,
            keys,
            &old,
            reqwest::Method::GET,
            &api::path_request(&view.request_id),
            vec![],
        )
        .await,
    ];
    // Three guessed codes would block the account again, were the old key still registered.
    for _ in 0..3 {
        let body = guessed_approval(keys, &old, &view.request_id);
        refusals.push(call_with_key(&url, keys, &old, reqwest::Method::POST, &request, body).await);
    }
    let body = guessed_code_change(keys, &old);
    refusals.push(
        call_with_key(
            &url,
            keys,
            &old,
            reqwest::Method::POST,
            api::PATH_DEVICE_PIN,
            body,
        )
        .await,
    );
    for (method, path) in [
        (reqwest::Method::DELETE, api::PATH_DEVICE_BIOMETRIC),
        (reqwest::Method::POST, api::PATH_DEVICE_DEACTIVATE),
    ] {
        refusals.push(call_with_key(&url, keys, &old, method, path, vec![]).await);
    }
    let copys_app = copy.authenticator().refresh_pending().await;
    let approved = e
        .phone
        .authenticator()
        .approve(view.request_id.clone(), Approval::code(NEW_CODE))
        .await;

    assert_eq!(
        refusals,
        vec![Some(api::codes::DEVICE_REVOKED.to_owned()); 8]
    );
    assert_eq!(copys_app, Ok(vec![]));
    assert_eq!(
        copy.account().unwrap().unwrap().status,
        AccountStatus::Revoked
    );
    assert_eq!(approved, Ok(()));
}

#[tokio::test]
async fn after_an_unblock_the_old_key_and_salt_are_gone_from_the_keystore() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470200020").await;
    let old = device_key_alias(&e.phone);
    let old_secrets = e.phone.keystore().held_secrets().unwrap();
    block_with_wrong_codes(&mut e, &server.url()).await;

    unblock(&e).await;

    let keys = e.phone.keystore();
    assert!(!keys.has_key(&old).unwrap());
    assert!(!old_secrets.is_empty());
    for secret in old_secrets {
        assert!(!keys.holds_secret(&secret).unwrap());
    }
    let aliases = keys.key_aliases();
    assert_eq!(aliases.len(), 1, "{aliases:?}");
    assert_ne!(aliases[0], old);
}

#[tokio::test]
async fn an_abandoned_unblock_deletes_its_new_key_and_the_account_keeps_its_own() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470200021").await;
    let old = device_key_alias(&e.phone);
    let old_secrets = e.phone.keystore().held_secrets().unwrap();
    block_with_wrong_codes(&mut e, &server.url()).await;
    let code = eid_code(&e.phone, &e.citizen, &e.phone_number).await;
    let auth = e.phone.authenticator();
    auth.unblock_with_eid(e.account.account_id.clone(), code)
        .await
        .unwrap();
    let new = e
        .phone
        .keystore()
        .key_aliases()
        .into_iter()
        .find(|alias| *alias != old)
        .expect("the unblock's new key");

    // Wrong SMS codes until the server ends the unblock.
    let mut last = Ok(());
    for _ in 0..3 {
        last = auth.verify_sms_code("000000".into()).await;
    }

    assert_eq!(last, Err(CoreError::TooManyAttempts));
    assert_eq!(auth.enrollment_in_progress().unwrap(), None);
    let keys = e.phone.keystore();
    assert!(!keys.has_key(&new).unwrap());
    assert!(keys.has_key(&old).unwrap());
    for secret in old_secrets {
        assert!(keys.holds_secret(&secret).unwrap());
    }
    // A new unblock still works.
    unblock(&e).await;
    start_login(&server.url(), &e.phone_number).await;
    assert!(e.phone.approve_next(NEW_CODE, WAIT).await.is_ok());
}

#[tokio::test]
async fn with_two_phones_an_unblock_revokes_only_the_phones_own_earlier_key() {
    let server = server_with(Policy {
        max_devices: 2,
        ..Policy::default()
    })
    .await;
    let url = server.url();
    // The other phone is the older one: a newest-first limit alone would revoke it.
    let other_citizen = citizen(&url).await;
    let (mut other, _other_dir) = new_phone(&url);
    other
        .enroll_at_bank(&other_citizen, "+32470200022", CODE, &silent)
        .await
        .unwrap();
    let (this, dir) = new_phone(&url);
    let account = this
        .enroll_at_bank(&other_citizen, "+32470200023", CODE, &silent)
        .await
        .unwrap();
    let mut e = Enrolled {
        phone: this,
        citizen: other_citizen,
        account,
        phone_number: "+32470200023".into(),
        dir,
    };
    block_with_wrong_codes(&mut e, &url).await;

    unblock(&e).await;
    start_login(&url, &e.phone_number).await;
    let on_other = other.approve_next(CODE, WAIT).await;
    start_login(&url, &e.phone_number).await;
    let on_this = e.phone.approve_next(NEW_CODE, WAIT).await;

    assert!(on_other.is_ok(), "{on_other:?}");
    assert!(on_this.is_ok(), "{on_this:?}");
    let revoked = server_events(&server, &e.account.account_id)
        .into_iter()
        .filter(|event| event == "device_revoked")
        .count();
    assert_eq!(revoked, 1);
}

/// The push token stored for the devices of `account_id`, as platform and token.
fn server_push_tokens(
    server: &sleutel_harness::server::InProcessServer,
    account_id: &str,
) -> Vec<(String, String)> {
    server
        .sql_rows(
            "SELECT t.platform, t.token FROM push_tokens t
             JOIN devices d ON d.jkt = t.device_jkt WHERE d.account_id = ?1",
            &[account_id.into()],
        )
        .unwrap()
        .into_iter()
        .map(|row| (row[0].clone().unwrap(), row[1].clone().unwrap()))
        .collect()
}

#[tokio::test]
async fn a_push_token_registered_by_the_app_is_dropped_when_the_phone_is_deactivated() {
    let server = server().await;
    let e = enrolled(&server.url(), "+32470200030").await;
    let id = e.account.account_id.clone();
    let token = "fE3k9Qm1TfO:APA91bF-2x_Yq.9wZ";
    e.phone
        .register_push_token(PushPlatform::Fcm, token)
        .await
        .unwrap();
    assert_eq!(
        server_push_tokens(&server, &id),
        [("fcm".to_owned(), token.to_owned())]
    );

    e.phone
        .authenticator()
        .deactivate(id.clone())
        .await
        .unwrap();

    assert_eq!(server_push_tokens(&server, &id), []);
}
