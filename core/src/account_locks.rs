//! One lock per account on this phone, held by the calls that read or change which salt the
//! code goes with, or the biometric key: approving a request, changing the code, enabling and
//! disabling biometrics. They run one after the other for an account, so that settling a lost
//! code change cannot adopt the salt of a newer change started meanwhile, and two biometric
//! registrations cannot interleave. Calls for different accounts, and every other call, do not
//! wait.
//!
//! A call that brings a typed code also notes, before it waits, how often the account's salt
//! has changed: if the call it waited for changed it (an interrupted change took effect, or a
//! change went through), the code was typed for a salt no longer in force, and the call ends
//! with [`CoreError::EarlierCodeChangeRegistered`] without using it, rather than have the
//! server count it as a wrong code.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::error::CoreError;

/// The locks and salt-change counts, made on first use; a phone holds one or two accounts, so
/// they are kept.
#[derive(Default)]
pub(crate) struct AccountLocks(Mutex<HashMap<String, Arc<AccountState>>>);

#[derive(Default)]
struct AccountState {
    lock: Arc<AsyncMutex<()>>,
    salt_changes: AtomicU64,
}

/// Held while a call works on its account; the next call for the account waits until it is
/// dropped.
pub(crate) type AccountGuard = OwnedMutexGuard<()>;

impl AccountLocks {
    fn state(&self, account_id: &str) -> Arc<AccountState> {
        // The map is only read and extended, never left half-changed: a poisoned lock's data is
        // still good.
        let mut states = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        states.entry(account_id.to_owned()).or_default().clone()
    }

    /// Waits until no other call holds `account_id`'s lock, and holds it.
    pub(crate) async fn lock(&self, account_id: &str) -> AccountGuard {
        self.state(account_id).lock.clone().lock_owned().await
    }

    /// As [`AccountLocks::lock`], for a call that brings a code typed before it waited: when
    /// the account's salt changed while it waited, the code may be the old one, and the answer
    /// is [`CoreError::EarlierCodeChangeRegistered`].
    pub(crate) async fn lock_for_code(&self, account_id: &str) -> Result<AccountGuard, CoreError> {
        let state = self.state(account_id);
        let typed_for = state.salt_changes.load(Ordering::SeqCst);
        let guard = state.lock.clone().lock_owned().await;
        if state.salt_changes.load(Ordering::SeqCst) != typed_for {
            return Err(CoreError::EarlierCodeChangeRegistered);
        }
        Ok(guard)
    }

    /// Notes that `account_id`'s salt changed: the calls waiting with a code give it back.
    pub(crate) fn salt_changed(&self, account_id: &str) {
        self.state(account_id)
            .salt_changes
            .fetch_add(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::AccountLocks;
    use crate::error::CoreError;
    use std::time::Duration;

    #[tokio::test]
    async fn a_second_call_for_an_account_waits_and_another_account_does_not() {
        let locks = std::sync::Arc::new(AccountLocks::default());
        let held = locks.lock("a").await;

        let other = tokio::time::timeout(Duration::from_millis(100), locks.lock("b")).await;
        assert!(other.is_ok(), "another account's call does not wait");
        let waiting = {
            let locks = locks.clone();
            tokio::spawn(async move { locks.lock("a").await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "the same account's call waits");
        drop(held);
        let second = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert!(
            matches!(second, Ok(Ok(_))),
            "and goes on once the first is done"
        );
    }

    #[tokio::test]
    async fn a_code_that_waited_while_the_salt_changed_is_given_back() {
        let locks = std::sync::Arc::new(AccountLocks::default());
        let held = locks.lock("a").await;
        let waiting = {
            let locks = locks.clone();
            tokio::spawn(async move { locks.lock_for_code("a").await.map(drop) })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        locks.salt_changed("a");
        drop(held);

        let answer = waiting.await.unwrap();
        assert_eq!(answer, Err(CoreError::EarlierCodeChangeRegistered));
        assert!(
            locks.lock_for_code("a").await.is_ok(),
            "a code typed after it is used"
        );
    }
}
