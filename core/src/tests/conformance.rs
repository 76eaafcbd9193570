//! The whole phone flow against the fake server of [`crate::tests::fake_server`], which checks every
//! message with the protocol crate's own verifiers: DPoP proofs, proofs of possession, the
//! two-signature response. The reference server and the end-to-end harness cover the real
//! behaviour; this keeps the core honest about the wire format on its own.

use std::sync::Arc;

use axum::http::StatusCode;
use p256::ecdsa::SigningKey;
use p256::elliptic_curve::Generate;
use sleutel_protocol::api::codes;
use sleutel_protocol::jose::Jwk;
use sleutel_protocol::limits::MAX_BODY_BYTES;
use sleutel_protocol::response::{Decision, DeclineReason, UvMethod};

use crate::enrollment::salt_secret_name;
use crate::store::PendingRow;
use crate::tests::fake_server::{
    BANK_RETURN, CODE, OTHER_CODE, SMS_CODE, Shared, add_request, enroll, enroll_until_code,
    login_request, new_request, new_request_with, serve, serve_account, start_enrollment,
};
use crate::{
    AccountStatus, Approval, Authenticator, Bank, CoreError, Keystore, KeystoreError,
    SoftwareKeystore,
};

/// The authenticator on `dir` for the server at `url`, opened as an app opens it.
fn open(
    dir: &std::path::Path,
    url: &str,
    keystore: Arc<dyn Keystore>,
    server_key_thumbprint: Option<String>,
) -> Result<Authenticator, CoreError> {
    Authenticator::open(
        dir.to_str().unwrap().into(),
        url.into(),
        keystore,
        server_key_thumbprint,
    )
}

fn keystore() -> Arc<SoftwareKeystore> {
    let credentials = keyring_core::mock::Store::new().unwrap();
    Arc::new(SoftwareKeystore::new(credentials, "conformance"))
}

/// A phone with two accounts, `acct-a` and `acct-b`, each on its own fake server.
async fn two_accounts() -> (Authenticator, Shared, Shared, tempfile::TempDir) {
    let (url_a, fake_a) = serve_account("acct-a").await;
    let (url_b, fake_b) = serve_account("acct-b").await;
    let dir = tempfile::tempdir().unwrap();
    let keystore = keystore();
    enroll(&open(dir.path(), &url_a, keystore.clone(), None).unwrap()).await;
    let auth = open(dir.path(), &url_b, keystore, None).unwrap();
    enroll(&auth).await;
    (auth, fake_a, fake_b, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_approval_and_decline_follow_the_wire_format() {
    let (url, fake) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let keystore = keystore();
    let auth = open(dir.path(), &url, keystore.clone(), None).unwrap();

    // Enrollment.
    let handoff = auth
        .start_bank_enrollment("+32 470 12 34 56".into(), Bank::Kbc)
        .await
        .unwrap();
    assert_eq!(handoff.enrollment_id, "enr-1");
    let progress = auth.enrollment_in_progress().unwrap().unwrap();
    assert_eq!(progress.phone_number, "+32470123456");
    assert_eq!(
        auth.verify_sms_code(SMS_CODE.into()).await,
        Err(CoreError::WrongStep {
            expected: crate::EnrollmentStep::BankHandoff
        })
    );
    let sms = auth
        .complete_bank_handoff(BANK_RETURN.into())
        .await
        .unwrap();
    assert_eq!(sms.phone_number_masked, "+32 4•• •• 34 56");
    assert_eq!(
        auth.verify_sms_code("000000".into()).await,
        Err(CoreError::WrongSmsCode { attempts_left: 2 })
    );
    auth.verify_sms_code(SMS_CODE.into()).await.unwrap();
    let account = auth.choose_code(CODE.into(), CODE.into()).await.unwrap();
    assert_eq!(account.account_id, "acct-1");
    assert_eq!(account.display_name, "Jan Peeters");
    assert_eq!(auth.enrollment_in_progress().unwrap(), None);

    // A request by push, delivered twice, shows once.
    new_request(&mut fake.lock().unwrap(), "req-1");
    let push = r#"{"account_id":"acct-1","request_id":"req-1"}"#;
    let view = auth.handle_push(push.into()).await.unwrap();
    assert_eq!(view.rp_name, "Online overheid");
    auth.handle_push(push.into()).await.unwrap();
    assert_eq!(auth.pending().unwrap().len(), 1);

    // A wrong code keeps the request; the right one approves it.
    assert_eq!(
        auth.approve("req-1".into(), Approval::code(OTHER_CODE))
            .await,
        Err(CoreError::WrongCode { attempts_left: 2 })
    );
    assert_eq!(auth.pending().unwrap().len(), 1);
    auth.approve("req-1".into(), Approval::code(CODE))
        .await
        .unwrap();
    assert!(auth.pending().unwrap().is_empty());

    // After a restart, a polled request is declined without a code.
    drop(auth);
    let auth = open(dir.path(), &url, keystore, None).unwrap();
    assert_eq!(auth.accounts().unwrap(), vec![account]);
    new_request(&mut fake.lock().unwrap(), "req-2");
    let listed = auth.refresh_pending().await.unwrap();
    assert_eq!(listed.len(), 1);
    auth.decline("req-2".into(), DeclineReason::NotMe)
        .await
        .unwrap();

    let history = auth.history().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].decision, Decision::Decline);
    assert_eq!(history[1].method, Some(UvMethod::Pin));
    assert_eq!(
        fake.lock().unwrap().answers,
        vec![
            (Decision::Approve, Some(UvMethod::Pin), None),
            (Decision::Decline, None, Some(DeclineReason::NotMe)),
        ]
    );

    // A request the server no longer lists disappears locally on refresh.
    new_request(&mut fake.lock().unwrap(), "req-3");
    assert_eq!(auth.refresh_pending().await.unwrap().len(), 1);
    fake.lock().unwrap().requests.clear();
    assert!(auth.refresh_pending().await.unwrap().is_empty());
    assert_eq!(
        auth.approve("req-3".into(), Approval::code(CODE)).await,
        Err(CoreError::UnknownRequest)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_completion_leaves_no_salt_and_no_account() {
    let (url, fake) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let keystore = keystore();
    let auth = open(dir.path(), &url, keystore.clone(), None).unwrap();
    enroll_until_code(&auth).await;
    let alias = auth.ctx.store.enrollment().unwrap().unwrap().device_alias;
    fake.lock().unwrap().refuse_completion = Some((StatusCode::GONE, codes::ENROLLMENT_EXPIRED));

    let err = auth
        .choose_code(CODE.into(), CODE.into())
        .await
        .unwrap_err();

    assert_eq!(err, CoreError::EnrollmentExpired);
    assert!(auth.accounts().unwrap().is_empty());
    assert_eq!(auth.enrollment_in_progress().unwrap(), None);
    let salt = salt_secret_name(&alias);
    assert_eq!(keystore.get_secret(salt).unwrap(), None);
    assert_eq!(keystore.public_key(alias), Err(KeystoreError::KeyNotFound));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn third_wrong_code_blocks_the_account_and_no_further_code_is_sent() {
    let (url, fake) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let keystore = keystore();
    let auth = open(dir.path(), &url, keystore, None).unwrap();
    enroll(&auth).await;
    new_request(&mut fake.lock().unwrap(), "req-1");
    auth.refresh_pending().await.unwrap();

    for left in [2, 1] {
        assert_eq!(
            auth.approve("req-1".into(), Approval::code(OTHER_CODE))
                .await,
            Err(CoreError::WrongCode {
                attempts_left: left
            })
        );
    }
    assert_eq!(
        auth.approve("req-1".into(), Approval::code(OTHER_CODE))
            .await,
        Err(CoreError::AccountBlocked)
    );
    fake.lock().unwrap().attempts_left = 3;
    assert_eq!(
        auth.approve("req-1".into(), Approval::code(CODE)).await,
        Err(CoreError::AccountBlocked)
    );
    assert_eq!(auth.accounts().unwrap()[0].status, AccountStatus::Blocked);
    assert!(fake.lock().unwrap().answers.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_matching_request_needs_one_of_the_numbers_offered() {
    let (url, fake) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let auth = open(dir.path(), &url, keystore(), None).unwrap();
    enroll(&auth).await;
    new_request_with(&mut fake.lock().unwrap(), "req-1", Some(vec![12, 47, 85]));
    new_request(&mut fake.lock().unwrap(), "req-2");
    auth.refresh_pending().await.unwrap();

    let number_refused = |r: Result<(), CoreError>| matches!(r, Err(CoreError::InvalidInput { ref field, .. }) if field == "number");
    assert!(number_refused(
        auth.approve("req-1".into(), Approval::code(CODE)).await
    ));
    assert!(number_refused(
        auth.approve("req-1".into(), Approval::code(CODE).with_number(13))
            .await
    ));
    assert!(number_refused(
        auth.approve("req-2".into(), Approval::code(CODE).with_number(12))
            .await
    ));
    // Nothing reached the server, so no attempt was spent.
    assert!(fake.lock().unwrap().answers.is_empty());
    assert_eq!(fake.lock().unwrap().attempts_left, 3);

    auth.approve("req-1".into(), Approval::code(CODE).with_number(47))
        .await
        .unwrap();
    assert_eq!(auth.history().unwrap()[0].request_id, "req-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_account_does_not_hide_the_requests_of_the_others() {
    let (auth, fake_a, fake_b, _dir) = two_accounts().await;
    new_request(&mut fake_a.lock().unwrap(), "req-a");
    new_request(&mut fake_b.lock().unwrap(), "req-b");
    assert_eq!(auth.refresh_pending().await.unwrap().len(), 2);

    fake_a.lock().unwrap().list_error =
        Some((StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL_ERROR));
    new_request(&mut fake_b.lock().unwrap(), "req-b2");
    let shown = auth.refresh_pending().await.unwrap();

    let mut ids: Vec<_> = shown.iter().map(|v| v.request_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["req-b", "req-b2"]);
    // The failing account's stored request is kept, only left out of this refresh.
    assert_eq!(auth.pending().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_account_is_marked_and_the_others_are_refreshed() {
    let (auth, fake_a, fake_b, _dir) = two_accounts().await;
    new_request(&mut fake_a.lock().unwrap(), "req-a");
    new_request(&mut fake_b.lock().unwrap(), "req-b");
    auth.refresh_pending().await.unwrap();
    fake_a.lock().unwrap().list_error = Some((StatusCode::UNAUTHORIZED, codes::DEVICE_REVOKED));

    let shown = auth.refresh_pending().await.unwrap();

    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].request_id, "req-b");
    let statuses: Vec<_> = auth
        .accounts()
        .unwrap()
        .into_iter()
        .map(|a| (a.account_id, a.status))
        .collect();
    assert!(statuses.contains(&("acct-a".into(), AccountStatus::Revoked)));
    assert!(statuses.contains(&("acct-b".into(), AccountStatus::Active)));
    assert_eq!(auth.pending().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_account_fails_the_first_error_is_returned() {
    let (auth, fake_a, fake_b, _dir) = two_accounts().await;
    fake_a.lock().unwrap().list_error = Some((StatusCode::BAD_GATEWAY, codes::INTERNAL_ERROR));
    fake_b.lock().unwrap().list_error = Some((StatusCode::BAD_REQUEST, codes::INVALID_PROOF));

    let err = auth.refresh_pending().await.unwrap_err();

    assert_eq!(
        err,
        CoreError::ServerUnavailable {
            status: Some(502),
            detail: codes::INTERNAL_ERROR.into()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_bound_per_account_are_ignored() {
    let (url, fake) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let auth = open(dir.path(), &url, keystore(), None).unwrap();
    enroll(&auth).await;
    for i in 0..40 {
        new_request(&mut fake.lock().unwrap(), &format!("req-{i}"));
    }

    let shown = auth.refresh_pending().await.unwrap();

    assert_eq!(shown.len(), crate::actions::MAX_LISTED_REQUESTS_PER_ACCOUNT);
    assert_eq!(auth.pending().unwrap().len(), shown.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_activation_of_the_same_account_deletes_the_earlier_key_and_salt() {
    let (url, fake) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let keystore = keystore();
    let auth = open(dir.path(), &url, keystore.clone(), None).unwrap();
    enroll(&auth).await;
    let old_alias = auth
        .ctx
        .store
        .account("acct-1")
        .unwrap()
        .unwrap()
        .device_alias;

    enroll_until_code(&auth).await;
    auth.choose_code(OTHER_CODE.into(), OTHER_CODE.into())
        .await
        .unwrap();

    let new_alias = auth
        .ctx
        .store
        .account("acct-1")
        .unwrap()
        .unwrap()
        .device_alias;
    assert_ne!(new_alias, old_alias);
    assert_eq!(auth.accounts().unwrap().len(), 1);
    assert_eq!(
        keystore.public_key(old_alias.clone()),
        Err(KeystoreError::KeyNotFound)
    );
    assert_eq!(keystore.get_secret(salt_secret_name(&old_alias)), Ok(None));
    assert!(keystore.public_key(new_alias.clone()).is_ok());
    assert!(
        keystore
            .get_secret(salt_secret_name(&new_alias))
            .unwrap()
            .is_some()
    );
    // The new keys are the ones in use.
    new_request(&mut fake.lock().unwrap(), "req-1");
    auth.refresh_pending().await.unwrap();
    auth.approve("req-1".into(), Approval::code(OTHER_CODE))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_enrollment_leaves_no_key_or_salt_behind() {
    let (url, fake) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let keystore = keystore();
    let auth = open(dir.path(), &url, keystore.clone(), None).unwrap();
    enroll_until_code(&auth).await;
    let old_alias = auth.ctx.store.enrollment().unwrap().unwrap().device_alias;
    fake.lock().unwrap().faults.insert(
        crate::tests::fake_server::Call::Complete,
        crate::tests::fake_server::Fault::FailUnchanged,
    );
    assert!(auth.choose_code(CODE.into(), CODE.into()).await.is_err());
    assert!(
        keystore
            .get_secret(salt_secret_name(&old_alias))
            .unwrap()
            .is_some()
    );

    start_enrollment(&auth).await;

    assert_eq!(
        keystore.public_key(old_alias.clone()),
        Err(KeystoreError::KeyNotFound)
    );
    assert_eq!(keystore.get_secret(salt_secret_name(&old_alias)), Ok(None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_configured_thumbprint_only_that_server_key_is_pinned() {
    let (url, fake) = serve().await;
    let expected = {
        let mut fake = fake.lock().unwrap();
        fake.extra_key = Some(SigningKey::generate());
        Jwk::from_verifying_key(fake.server_key.as_ref().unwrap().verifying_key()).thumbprint()
    };
    let dir = tempfile::tempdir().unwrap();
    let auth = open(dir.path(), &url, keystore(), Some(expected.clone())).unwrap();

    enroll(&auth).await;

    let pinned = auth
        .ctx
        .store
        .account("acct-1")
        .unwrap()
        .unwrap()
        .server_keys;
    let thumbprints: Vec<_> = pinned.keys.iter().map(Jwk::thumbprint).collect();
    assert_eq!(thumbprints, vec![expected]);
    new_request(&mut fake.lock().unwrap(), "req-1");
    assert_eq!(auth.refresh_pending().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_configured_thumbprint_every_usable_server_key_is_pinned() {
    let (url, fake) = serve().await;
    fake.lock().unwrap().extra_key = Some(SigningKey::generate());
    let dir = tempfile::tempdir().unwrap();
    let auth = open(dir.path(), &url, keystore(), None).unwrap();

    enroll(&auth).await;

    let pinned = auth
        .ctx
        .store
        .account("acct-1")
        .unwrap()
        .unwrap()
        .server_keys;
    assert_eq!(pinned.keys.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_the_configured_key_is_refused_before_any_key_is_registered() {
    let (url, fake) = serve().await;
    let other = Jwk::from_verifying_key(SigningKey::generate().verifying_key()).thumbprint();
    let dir = tempfile::tempdir().unwrap();
    let keystore = keystore();
    let auth = open(dir.path(), &url, keystore.clone(), Some(other)).unwrap();
    enroll_until_code(&auth).await;
    let alias = auth.ctx.store.enrollment().unwrap().unwrap().device_alias;

    let err = auth
        .choose_code(CODE.into(), CODE.into())
        .await
        .unwrap_err();

    assert!(matches!(err, CoreError::ServerUntrusted { .. }), "{err:?}");
    assert!(auth.accounts().unwrap().is_empty());
    assert_eq!(fake.lock().unwrap().registrations, 0);
    assert_eq!(keystore.get_secret(salt_secret_name(&alias)), Ok(None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bank_handoff_over_plain_http_to_another_machine_is_refused() {
    let (url, fake) = serve().await;
    fake.lock().unwrap().handoff_url = Some("http://bank.example/authorize".into());
    let dir = tempfile::tempdir().unwrap();
    let auth = open(dir.path(), &url, keystore(), None).unwrap();

    let err = auth
        .start_bank_enrollment("+32470123456".into(), Bank::Kbc)
        .await
        .unwrap_err();

    assert!(
        matches!(&err, CoreError::ServerUnavailable { status: None, .. }),
        "{err:?}"
    );
    assert_eq!(auth.enrollment_in_progress().unwrap(), None);

    fake.lock().unwrap().handoff_url = Some(format!("{url}/sim/bank/kbc/authorize"));
    start_enrollment(&auth).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_request_whose_id_would_change_a_url_path_is_dropped() {
    let (url, fake) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let auth = open(dir.path(), &url, keystore(), None).unwrap();
    enroll(&auth).await;
    {
        // Signed by the pinned key, for this account, but its id is not an id.
        let mut fake = fake.lock().unwrap();
        let request = login_request(&fake.issuer, &fake.account_id, "../x", crate::now());
        add_request(&mut fake, "../x", &request);
        new_request(&mut fake, "req-1");
    }

    let shown = auth.refresh_pending().await.unwrap();

    let ids: Vec<_> = shown.iter().map(|v| v.request_id.as_str()).collect();
    assert_eq!(ids, ["req-1"]);
    assert_eq!(auth.ctx.store.pending("../x").unwrap(), None);
    assert_eq!(auth.pending().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_answered_elsewhere_is_reported_and_forgotten() {
    let (url, fake) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let auth = open(dir.path(), &url, keystore(), None).unwrap();
    enroll(&auth).await;
    new_request(&mut fake.lock().unwrap(), "req-1");
    auth.refresh_pending().await.unwrap();
    // Another phone of the person answered it meanwhile.
    fake.lock().unwrap().requests.clear();

    let result = auth.approve("req-1".into(), Approval::code(CODE)).await;

    assert_eq!(result, Err(CoreError::RequestAlreadyAnswered));
    assert!(auth.pending().unwrap().is_empty());
    assert!(auth.history().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_revoked_while_answering_is_told_so_and_its_requests_are_gone() {
    let (url, fake) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let auth = open(dir.path(), &url, keystore(), None).unwrap();
    enroll(&auth).await;
    new_request(&mut fake.lock().unwrap(), "req-1");
    new_request(&mut fake.lock().unwrap(), "req-2");
    auth.refresh_pending().await.unwrap();
    fake.lock().unwrap().revoked = true;

    let result = auth.approve("req-1".into(), Approval::code(CODE)).await;

    assert_eq!(result, Err(CoreError::DeviceRevoked));
    assert_eq!(auth.accounts().unwrap()[0].status, AccountStatus::Revoked);
    assert!(auth.pending().unwrap().is_empty());
    assert_eq!(auth.show("req-2".into()), Err(CoreError::UnknownRequest));
    assert!(auth.refresh_pending().await.unwrap().is_empty());
    // A push for the revoked account is refused without asking the server.
    let push = r#"{"account_id":"acct-1","request_id":"req-2"}"#;
    assert_eq!(
        auth.handle_push(push.into()).await,
        Err(CoreError::DeviceRevoked)
    );
    assert!(fake.lock().unwrap().answers.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_kept_for_a_revoked_account_cannot_be_shown_or_answered() {
    let (url, fake) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let auth = open(dir.path(), &url, keystore(), None).unwrap();
    enroll(&auth).await;
    new_request(&mut fake.lock().unwrap(), "req-1");
    auth.refresh_pending().await.unwrap();
    // Revoked, but the request stayed behind (clearing it failed).
    auth.ctx
        .store
        .set_account_status("acct-1", AccountStatus::Revoked)
        .unwrap();

    assert_eq!(auth.show("req-1".into()), Err(CoreError::DeviceRevoked));
    assert_eq!(
        auth.approve("req-1".into(), Approval::code(CODE)).await,
        Err(CoreError::DeviceRevoked)
    );
    assert_eq!(
        auth.decline("req-1".into(), DeclineReason::NotMe).await,
        Err(CoreError::DeviceRevoked)
    );
    assert!(fake.lock().unwrap().answers.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_without_the_salt_is_a_missing_key_and_sends_nothing() {
    let (url, fake) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let keystore = keystore();
    let auth = open(dir.path(), &url, keystore.clone(), None).unwrap();
    enroll(&auth).await;
    let alias = auth
        .ctx
        .store
        .account("acct-1")
        .unwrap()
        .unwrap()
        .device_alias;
    new_request(&mut fake.lock().unwrap(), "req-1");
    auth.refresh_pending().await.unwrap();
    keystore.delete_secret(salt_secret_name(&alias)).unwrap();

    let result = auth.approve("req-1".into(), Approval::code(CODE)).await;

    assert_eq!(
        result,
        Err(CoreError::Keystore {
            error: KeystoreError::KeyNotFound
        })
    );
    assert!(fake.lock().unwrap().answers.is_empty());
    assert_eq!(fake.lock().unwrap().attempts_left, 3);
    assert_eq!(auth.pending().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_larger_than_the_protocol_allows_is_refused_unread() {
    let (url, fake) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let auth = open(dir.path(), &url, keystore(), None).unwrap();
    enroll(&auth).await;
    new_request(&mut fake.lock().unwrap(), "req-1");
    auth.refresh_pending().await.unwrap();
    fake.lock()
        .unwrap()
        .requests
        .insert("big".into(), "x".repeat(MAX_BODY_BYTES));

    let err = auth.refresh_pending().await.unwrap_err();

    assert!(
        matches!(err, CoreError::ServerUnavailable { status: None, .. }),
        "{err:?}"
    );
    // The answer may have listed anything: what is stored stays.
    assert_eq!(auth.pending().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_request_cannot_be_answered_and_is_forgotten() {
    let (url, fake) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let auth = open(dir.path(), &url, keystore(), None).unwrap();
    enroll(&auth).await;
    let jws = {
        let mut fake = fake.lock().unwrap();
        let request = login_request(&fake.issuer, &fake.account_id, "req-1", crate::now() - 400);
        add_request(&mut fake, "req-1", &request);
        fake.requests["req-1"].clone()
    };
    // Kept from when it was still valid.
    auth.ctx
        .store
        .insert_pending(&PendingRow {
            request_id: "req-1".into(),
            account_id: "acct-1".into(),
            jws,
            issued_at: crate::now() - 400,
            expires_at: crate::now() - 100,
        })
        .unwrap();

    let result = auth.approve("req-1".into(), Approval::code(CODE)).await;

    assert_eq!(result, Err(CoreError::RequestExpired));
    assert_eq!(auth.ctx.store.pending("req-1").unwrap(), None);
    assert!(fake.lock().unwrap().answers.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_completion_says_the_device_key_is_in_hardware_when_the_keystore_does() {
    let (url, fake) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let keystore = crate::testing::TestKeystore::new(SoftwareKeystore::new(
        keyring_core::mock::Store::new().unwrap(),
        "hardware",
    ));
    keystore.set_in_hardware(true);
    enroll(&open(dir.path(), &url, Arc::new(keystore), None).unwrap()).await;

    assert_eq!(fake.lock().unwrap().device_key_in_hardware, Some(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_completion_says_the_device_key_is_not_in_hardware_for_a_software_keystore() {
    let (url, fake) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    enroll(&open(dir.path(), &url, keystore(), None).unwrap()).await;

    assert_eq!(fake.lock().unwrap().device_key_in_hardware, Some(false));
}
