//! The push worker: takes pushes off the queue and sends each through its service, a bounded
//! number at once. A push the service answers with 429 or a 5xx is tried again after an
//! exponential backoff with jitter (at least the service's `Retry-After`), at most
//! [`crate::Policy::push_max_attempts`] times and never after the request expires. Before each
//! attempt the database must say that the push is still due ([`super::still_due`]). A token the
//! service no longer knows is dropped; a refusal is logged and not retried. Nothing here holds
//! up a request: the handlers only enqueue.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::{JoinHandle, JoinSet};

use super::{Delivery, Outcome};
use crate::clock;
use crate::push_tokens;
use crate::server::AppState;

/// Pushes in flight at once, retries and their waits included. FCM and APNs take many
/// concurrent requests per connection; a few dozen keeps a burst moving without letting one
/// slow service hold more of the server than that. The queue holds the rest.
pub(crate) const MAX_CONCURRENT_PUSHES: usize = 32;

/// Longest wait the backoff itself chooses between two attempts: waits double from
/// [`crate::Policy::push_retry_base_millis`], and beyond a minute a request of a few minutes
/// would have expired anyway. A longer `Retry-After` from the service is still honoured.
pub(crate) const MAX_PUSH_BACKOFF: Duration = Duration::from_secs(60);

/// Starts the worker that sends what [`super::Pusher::dispatch`] queues. Abort the handle to
/// stop it; the sends in flight stop with it.
pub(crate) fn spawn(state: AppState, mut queue: mpsc::Receiver<Delivery>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(MAX_CONCURRENT_PUSHES));
        // Owned here, so that aborting the worker aborts every send in flight.
        let mut sending = JoinSet::new();
        while let Some(delivery) = queue.recv().await {
            while sending.try_join_next().is_some() {}
            let Ok(slot) = slots.clone().acquire_owned().await else {
                break;
            };
            let state = state.clone();
            sending.spawn(async move {
                deliver(&state, delivery).await;
                drop(slot);
            });
        }
    })
}

/// Sends one push, retrying as the module says.
async fn deliver(state: &AppState, delivery: Delivery) {
    let platform = delivery.target.platform.as_str();
    let max_attempts = state.policy.push_max_attempts;
    for attempt in 1..=max_attempts {
        if clock::now() >= delivery.expires_at {
            tracing::info!(
                platform,
                attempt,
                "a push was not sent: its request expired"
            );
            return;
        }
        if !due(state, &delivery).await {
            tracing::debug!(
                platform,
                attempt,
                "a push was not sent: its request or its device no longer needs it"
            );
            return;
        }
        match state.push.services().send(&delivery).await {
            Outcome::Delivered => {
                tracing::debug!(platform, attempt, "a push was delivered");
                return;
            }
            Outcome::Expired => {
                tracing::info!(
                    platform,
                    attempt,
                    "a push was not sent: its request expired"
                );
                return;
            }
            Outcome::Unregistered => {
                forget(state, &delivery).await;
                return;
            }
            Outcome::Rejected(why) => {
                tracing::warn!(platform, attempt, %why, "a push was refused; it is not retried");
                return;
            }
            Outcome::Retry { after, why } => {
                if attempt == max_attempts {
                    tracing::warn!(platform, attempt, %why, "a push was given up after its last attempt");
                    return;
                }
                let wait = backoff(state.policy.push_retry_base_millis, attempt)
                    .max(after.unwrap_or_default());
                let left = u64::try_from(delivery.expires_at - clock::now()).unwrap_or(0);
                if wait >= Duration::from_secs(left) {
                    tracing::info!(platform, attempt, %why, "a push was given up: its request expires before the next attempt");
                    return;
                }
                tracing::debug!(platform, attempt, %why, wait_ms = wait.as_millis() as u64, "a push will be tried again");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Whether `delivery` should still go out ([`super::still_due`]). When the database cannot
/// tell, it does not: the phone finds its requests when it polls, and a push sent blind could
/// wake a phone that has lost its place.
async fn due(state: &AppState, delivery: &Delivery) -> bool {
    let platform = delivery.target.platform.as_str();
    let probe = delivery.clone();
    match state
        .db(move |_, conn| super::still_due(conn, &probe, clock::now()))
        .await
    {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!(platform, error = %e, "a push was not sent: could not check that it is still due");
            false
        }
    }
}

/// Drops the token the service said no longer reaches the app (unless the device registered
/// another since).
async fn forget(state: &AppState, delivery: &Delivery) {
    let target = delivery.target.clone();
    let platform = target.platform.as_str();
    match state
        .db(move |_, conn| push_tokens::forget_unreachable(conn, &target))
        .await
    {
        Ok(true) => tracing::info!(
            platform,
            "a push token the service no longer knows was dropped"
        ),
        Ok(false) => {}
        Err(e) => tracing::warn!(platform, error = %e, "could not drop an unregistered push token"),
    }
}

/// The wait before attempt `attempt + 1`: `base_millis` doubled for each attempt made after
/// the first, at most [`MAX_PUSH_BACKOFF`], of which a random half ("equal jitter"), so that
/// pushes failing together do not all come back at the same moment.
pub(crate) fn backoff(base_millis: u64, attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(32);
    let full =
        Duration::from_millis(base_millis.saturating_mul(1 << doublings)).min(MAX_PUSH_BACKOFF);
    let half = full / 2;
    let mut random = [0u8; 8];
    if getrandom::fill(&mut random).is_err() {
        return full;
    }
    let spread = u64::try_from(half.as_micros()).unwrap_or(u64::MAX);
    let jitter = u64::from_le_bytes(random) % spread.saturating_add(1);
    half + Duration::from_micros(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_with_each_attempt_within_its_jitter() {
        for attempt in 1..=4 {
            let full = Duration::from_millis(100 << (attempt - 1));

            let wait = backoff(100, attempt);

            assert!(wait >= full / 2 && wait <= full, "{attempt}: {wait:?}");
        }
    }

    #[test]
    fn the_backoff_stops_growing_at_its_bound() {
        let wait = backoff(1000, 30);

        assert!(
            wait >= MAX_PUSH_BACKOFF / 2 && wait <= MAX_PUSH_BACKOFF,
            "{wait:?}"
        );
    }
}
