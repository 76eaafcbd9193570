//! One lock per account on this phone, held by the calls that read or change which salt the
//! code goes with, or the biometric key: approving a request, changing the code, enabling and
//! disabling biometrics, deactivating. They run one after the other for an account, so that settling a lost
//! code change cannot adopt the salt of a newer change started meanwhile, and two biometric
//! registrations cannot interleave. Calls for different accounts, and every other call, do not
//! wait.
//!
//! A call that brings a typed code also notes, before it waits, how often the account's salt
//! has changed: if the call it waited for changed it (an interrupted change took effect, or a
//! change went through), the code was typed for a salt no longer in force, and the call ends
//! with [`CoreError::EarlierCodeChangeRegistered`] without using it, rather than have the
//! server count it as a wrong code.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::error::CoreError;

/// How often a call that waits for its account's lock looks again. Two calls of one account
/// at once are rare (a person acts on one screen at a time), so a waiting call polls rather
/// than queues: a queue (tokio's mutex) costs the phones' library more than the rare wait is
/// worth.
const WAIT_STEP: Duration = Duration::from_millis(10);

/// Which accounts a call holds, and how often each account's salt has changed. Made on first
/// use; a phone holds one or two accounts, so the entries are kept, in a list (a map's code
/// would cost the phones' library more than looking through two entries).
#[derive(Default)]
pub(crate) struct AccountLocks(Mutex<Vec<AccountState>>);

struct AccountState {
    account_id: String,
    held: bool,
    salt_changes: u64,
}

/// Held while a call works on its account; the next call for the account waits until it is
/// dropped.
pub(crate) struct AccountGuard<'a> {
    locks: &'a AccountLocks,
    /// The account's place in the list, which only grows.
    at: usize,
}

impl Drop for AccountGuard<'_> {
    fn drop(&mut self) {
        let mut states = self.locks.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(state) = states.get_mut(self.at) {
            state.held = false;
        }
    }
}

impl AccountLocks {
    /// `account_id`'s entry, made on first use, with the list locked. The list only grows, and is
    /// only changed whole under the lock, never left half-changed: a poisoned lock's data is
    /// still good.
    fn entry(&self, account_id: &str) -> EntryGuard<'_> {
        let mut states = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let at = match states.iter().position(|s| s.account_id == account_id) {
            Some(at) => at,
            None => {
                states.push(AccountState {
                    account_id: account_id.to_owned(),
                    held: false,
                    salt_changes: 0,
                });
                states.len() - 1
            }
        };
        EntryGuard { states, at }
    }

    /// Waits until no other call holds `account_id`'s lock, and holds it.
    pub(crate) async fn lock(&self, account_id: &str) -> AccountGuard<'_> {
        loop {
            let taken = {
                let mut entry = self.entry(account_id);
                (!std::mem::replace(&mut entry.held, true)).then_some(entry.at)
            };
            if let Some(at) = taken {
                return AccountGuard { locks: self, at };
            }
            tokio::time::sleep(WAIT_STEP).await;
        }
    }

    /// As [`AccountLocks::lock`], for a call that brings a code typed before it waited: when
    /// the account's salt changed while it waited, the code may be the old one, and the answer
    /// is [`CoreError::EarlierCodeChangeRegistered`].
    pub(crate) async fn lock_for_code(
        &self,
        account_id: &str,
    ) -> Result<AccountGuard<'_>, CoreError> {
        let typed_for = self.entry(account_id).salt_changes;
        let guard = self.lock(account_id).await;
        if self.entry(account_id).salt_changes != typed_for {
            return Err(CoreError::EarlierCodeChangeRegistered);
        }
        Ok(guard)
    }

    /// Notes that `account_id`'s salt changed: the calls waiting with a code give it back.
    pub(crate) fn salt_changed(&self, account_id: &str) {
        self.entry(account_id).salt_changes += 1;
    }
}

/// One account's entry, the list locked while it is held.
struct EntryGuard<'a> {
    states: std::sync::MutexGuard<'a, Vec<AccountState>>,
    at: usize,
}

impl std::ops::Deref for EntryGuard<'_> {
    type Target = AccountState;
    fn deref(&self) -> &AccountState {
        &self.states[self.at]
    }
}

impl std::ops::DerefMut for EntryGuard<'_> {
    fn deref_mut(&mut self) -> &mut AccountState {
        &mut self.states[self.at]
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
            tokio::spawn(async move { drop(locks.lock("a").await) })
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
