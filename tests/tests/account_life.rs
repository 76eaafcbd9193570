//! The life of an account after enrollment, end to end: unblock after wrong codes, code
//! change, biometrics (approval, a code-only request, cancellation, invalidation, disabling),
//! device change, deactivation, blocking a lost phone from outside, and two isolated accounts
//! on one phone. Phone and server both record each event.

mod common;

use common::*;
use sleutel_core::{AccountEventKind, AccountStatus, CoreError, IdentitySource, KeystoreError};
use sleutel_harness::keystore::BiometricPrompt;
use sleutel_harness::phone::{VirtualPhone, silent};
use sleutel_harness::rp::{LoginRequest, RelyingParty};
use sleutel_protocol::api::{self, BlockMyKey, Citizen};

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
            .approve_with_code(view.request_id.clone(), WRONG_CODE.into())
            .await;
    }
    let third = e
        .phone
        .authenticator()
        .approve_with_code(view.request_id.clone(), WRONG_CODE.into())
        .await;
    assert_eq!(third, Err(CoreError::AccountBlocked));
}

fn server_events(
    server: &sleutel_harness::server::InProcessServer,
    account_id: &str,
) -> Vec<String> {
    server
        .running()
        .unwrap()
        .account_events(account_id)
        .unwrap()
        .into_iter()
        .map(|(event, _, _)| event)
        .collect()
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
        .approve_with_code(view.request_id.clone(), CODE.into())
        .await;
    let new = e
        .phone
        .authenticator()
        .approve_with_code(view.request_id.clone(), NEW_CODE.into())
        .await;

    assert_eq!(account.account_id, account_id);
    assert_eq!(account.status, AccountStatus::Active);
    assert_eq!(old, Err(CoreError::WrongCode { attempts_left: 2 }));
    assert_eq!(new, Ok(()));
    let events = server_events(&server, &account_id);
    assert!(events.contains(&"blocked".to_string()), "{events:?}");
    assert!(events.contains(&"unblocked".to_string()), "{events:?}");
    // The device key stayed: nothing was revoked.
    assert!(
        !events.contains(&"device_revoked".to_string()),
        "{events:?}"
    );
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
        .approve_with_code(view.request_id.clone(), CODE.into())
        .await;
    let new = auth
        .approve_with_code(view.request_id.clone(), NEW_CODE.into())
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
        .approve_with_biometric(view.request_id.clone())
        .await
        .unwrap();
    let token = rp.wait_for_token(&started, WAIT).await.unwrap();
    let claims = rp.verify_id_token(&token.id_token).await.unwrap();

    assert!(!view.code_only);
    assert_eq!(claims.acr, api::ACR_CODE_OR_BIOMETRIC);
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
        .approve_with_biometric(view.request_id.clone())
        .await;
    let code = e
        .phone
        .authenticator()
        .approve_with_code(view.request_id.clone(), CODE.into())
        .await;

    assert!(view.code_only);
    assert_eq!(biometric, Err(CoreError::CodeRequired));
    assert_eq!(code, Ok(()));
    let token = rp.wait_for_token(&started, WAIT).await.unwrap();
    assert_eq!(
        rp.verify_id_token(&token.id_token).await.unwrap().acr,
        api::ACR_CODE
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
        .approve_with_biometric(view.request_id.clone())
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
        .approve_with_biometric(view.request_id.clone())
        .await;
    let enabled_after = e.phone.account().unwrap().unwrap().biometrics_enabled;
    let with_code = e
        .phone
        .authenticator()
        .approve_with_code(view.request_id.clone(), CODE.into())
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
        .approve_with_biometric(next.request_id.clone())
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
        .approve_with_biometric(view.request_id.clone())
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
    let new_login = RelyingParty::demo(&server.url())
        .unwrap()
        .backchannel_authorize(&LoginRequest::new(&lost.phone_number))
        .await;
    let approve = lost
        .phone
        .authenticator()
        .approve_with_code(view.request_id.clone(), CODE.into())
        .await;

    assert_eq!(open_login.unwrap_err().api_code(), Some("access_denied"));
    assert_eq!(new_login.unwrap_err().api_code(), Some("access_denied"));
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
    let login = RelyingParty::demo(&server.url())
        .unwrap()
        .backchannel_authorize(&LoginRequest::new(&e.phone_number))
        .await;

    assert!(e.phone.authenticator().accounts().unwrap().is_empty());
    assert_eq!(login.unwrap_err().api_code(), Some("unknown_user_id"));
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
        .approve_with_code(view.request_id.clone(), CODE.into())
        .await;
    let with_second_code = phone
        .authenticator()
        .approve_with_code(view.request_id.clone(), NEW_CODE.into())
        .await;
    // Blocking the second account leaves the first untouched.
    start_login(&server.url(), "+32470200016").await;
    let next = phone.next_request(WAIT).await.unwrap();
    for _ in 0..3 {
        let _ = phone
            .authenticator()
            .approve_with_code(next.request_id.clone(), WRONG_CODE.into())
            .await;
    }
    start_login(&server.url(), "+32470200015").await;
    let for_first = phone.next_request(WAIT).await.unwrap();
    let first_still_works = phone
        .authenticator()
        .approve_with_code(for_first.request_id.clone(), CODE.into())
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
        .approve_with_code(from_two.request_id.clone(), CODE.into())
        .await;
    let with_second_code = phone
        .authenticator()
        .approve_with_code(from_two.request_id.clone(), NEW_CODE.into())
        .await;
    // The second server blocks its account; the first server's account is untouched.
    start_login(&two.url(), "+32470200018").await;
    let next = phone.next_request(WAIT).await.unwrap();
    for _ in 0..3 {
        let _ = phone
            .authenticator()
            .approve_with_code(next.request_id.clone(), WRONG_CODE.into())
            .await;
    }
    start_login(&one.url(), "+32470200017").await;
    let from_one = phone.next_request(WAIT).await.unwrap();
    let first_still_works = phone
        .authenticator()
        .approve_with_code(from_one.request_id.clone(), CODE.into())
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
