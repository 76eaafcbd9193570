//! Push notifications. The message carries only the account id and the request id; the phone
//! fetches the signed request over the authenticated API, so nothing secret rides on FCM or
//! APNs. Phones also poll, so nothing depends on push arriving.
//!
//! Each active device of the account is a target: a device whose token's platform has a
//! configured service ([`crate::config::PushConfig`]) is pushed through that service
//! ([`fcm`], [`apns`]); any other device (no token, or a platform with nothing configured) is
//! served by the simulator's outbox (`GET /sim/outbox/push`), one row per request as before
//! real services existed. The outbox row is written in the transaction that creates the
//! request, so it commits or rolls back with it. The real sends wait until that transaction has
//! committed and then go off the request path: the handler only puts them on a bounded queue,
//! and [`worker`] sends them, with retries (docs/decisions/0019).

mod apns;
mod fcm;
mod worker;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::store::{Sql, outboxes};
use sleutel_protocol::api::{PushMessage, PushPlatform};
use tokio::sync::mpsc;

use crate::clock;
use crate::config::PushConfig;
use crate::error::{Result, StartError};
use crate::push_tokens::{self, PushTarget};

pub(crate) use worker::spawn;

/// Pushes waiting for the worker at most. A push is sent within moments, so the queue only
/// fills when the services stall or a burst of requests outruns them; beyond this the push is
/// dropped (and counted): the phone still finds the request when it polls, and a queue without
/// bound would let a stalled service grow the server's memory without end.
pub(crate) const PUSH_QUEUE_CAPACITY: usize = 1024;

/// How long one call to FCM, APNs or the OAuth token endpoint may take. They answer in well
/// under a second; a call that hangs must not hold a sending slot for the life of the request.
pub(crate) const PUSH_HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long connecting to FCM, APNs or the token endpoint may take.
pub(crate) const PUSH_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Most of a push service's answer read, in bytes: their error bodies and the OAuth token
/// answer are a few hundred bytes of JSON, and nothing more is needed to tell a dead token from
/// a busy service.
pub(crate) const MAX_PUSH_BODY_BYTES: usize = 16 * 1024;

/// One push to one device, waiting to be sent.
#[derive(Clone)]
pub(crate) struct Delivery {
    /// The device and its token.
    pub target: PushTarget,
    /// What the push carries.
    pub message: PushMessage,
    /// When the request expires (Unix seconds): nothing is sent, or retried, after.
    pub expires_at: i64,
}

// The target's Debug hides the token.
impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("target", &self.target)
            .field("request_id", &self.message.request_id)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What a push service made of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The service accepted the push.
    Delivered,
    /// The service is busy or failed (429, 5xx, a transport error): try again, not before
    /// `after` when the service said so (`Retry-After`).
    Retry {
        /// The service's `Retry-After`, if it gave one.
        after: Option<Duration>,
        /// What happened, for the log (never a token).
        why: String,
    },
    /// The token no longer reaches the app (uninstalled, or a token the service never issued):
    /// it is dropped.
    Unregistered,
    /// The service refused this push for good (a malformed message, a wrong topic or project,
    /// credentials it does not accept): not retried.
    Rejected(String),
    /// The request expired before the push could go out.
    Expired,
}

/// The configured push services.
#[derive(Debug, Default)]
pub(crate) struct Services {
    fcm: Option<fcm::Fcm>,
    apns: Option<apns::Apns>,
}

impl Services {
    /// Reads the credentials of the configured services; a file that cannot be used keeps the
    /// server from starting.
    pub(crate) fn load(config: &PushConfig) -> Result<Self, StartError> {
        Ok(Self {
            fcm: config.fcm.as_ref().map(fcm::Fcm::load).transpose()?,
            apns: config.apns.as_ref().map(apns::Apns::load).transpose()?,
        })
    }

    /// Whether a service is configured for `platform`.
    fn serves(&self, platform: PushPlatform) -> bool {
        match platform {
            PushPlatform::Fcm => self.fcm.is_some(),
            PushPlatform::Apns => self.apns.is_some(),
        }
    }

    /// One attempt at `delivery` through the service of its platform.
    async fn send(&self, delivery: &Delivery) -> Outcome {
        match delivery.target.platform {
            PushPlatform::Fcm => match &self.fcm {
                Some(fcm) => fcm.send(delivery).await,
                None => Outcome::Rejected("no FCM service is configured".into()),
            },
            PushPlatform::Apns => match &self.apns {
                Some(apns) => apns.send(delivery).await,
                None => Outcome::Rejected("no APNs service is configured".into()),
            },
        }
    }
}

/// The server's push side: the configured services, the outbox, and the queue to the worker.
pub(crate) struct Pusher {
    services: Services,
    queue: mpsc::Sender<Delivery>,
    dropped: AtomicU64,
}

impl fmt::Debug for Pusher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pusher")
            .field("services", &self.services)
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

impl Pusher {
    /// A pusher over `services` and the receiving end of its queue, for [`spawn`].
    pub(crate) fn new(services: Services) -> (Self, mpsc::Receiver<Delivery>) {
        let (queue, receiver) = mpsc::channel(PUSH_QUEUE_CAPACITY);
        let pusher = Self {
            services,
            queue,
            dropped: AtomicU64::new(0),
        };
        (pusher, receiver)
    }

    /// Decides, inside the transaction `tx` that creates the request, who is pushed: writes the
    /// outbox row when a device of the account is not served by a configured service (or none
    /// is), and returns the pushes for the services, to [`Pusher::dispatch`] once `tx` has
    /// committed.
    pub(crate) fn plan(
        &self,
        tx: &impl Sql,
        message: &PushMessage,
        expires_at: i64,
    ) -> Result<Vec<Delivery>> {
        let mut deliveries = Vec::new();
        let mut outbox = false;
        for target in push_tokens::targets_of_account(tx, &message.account_id)? {
            match target {
                Some(target) if self.services.serves(target.platform) => {
                    deliveries.push(Delivery {
                        target,
                        message: message.clone(),
                        expires_at,
                    });
                }
                _ => outbox = true,
            }
        }
        if outbox || deliveries.is_empty() {
            outboxes::queue_push(tx, message, clock::now())?;
        }
        Ok(deliveries)
    }

    /// Hands `deliveries` to the worker, after the transaction that created their request has
    /// committed. Never waits: with the queue full a push is dropped, counted and logged.
    pub(crate) fn dispatch(&self, deliveries: Vec<Delivery>) {
        for delivery in deliveries {
            if let Err(e) = self.queue.try_send(delivery) {
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                let why = match e {
                    mpsc::error::TrySendError::Full(_) => "the push queue is full",
                    mpsc::error::TrySendError::Closed(_) => "the push worker has stopped",
                };
                tracing::warn!(
                    dropped,
                    "a push was dropped: {why}; the phone finds the request when it polls"
                );
            }
        }
    }

    /// Pushes dropped since start because the queue was full or the worker gone (the log
    /// carries the count too).
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The configured services, for the worker.
    pub(crate) fn services(&self) -> &Services {
        &self.services
    }
}

/// Whether `delivery` is still worth sending, read just before each attempt: its request is
/// still pending and unexpired, and its token is still its device's, the device active on the
/// request's account. A push waits in the queue and between retries for up to the request's
/// life; meanwhile the person may have answered on another phone, the device may have been
/// deactivated or replaced (a stolen phone's install must not be woken for the account), the
/// account blocked, or the token moved to another device or replaced. The schema's triggers
/// drop the token in each of those cases but the answer, so the token's row says the rest.
pub(crate) fn still_due(conn: &impl Sql, delivery: &Delivery, now: i64) -> Result<bool> {
    Ok(outboxes::push_still_due(
        conn,
        &delivery.message.request_id,
        &delivery.target,
        now,
    )?)
}

/// The value of a `Retry-After` header in its delay-seconds form. The HTTP-date form is not
/// read: FCM and APNs send seconds, and without it the worker's own backoff applies.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Reads at most [`MAX_PUSH_BODY_BYTES`] of a service's answer; the rest is not needed.
pub(crate) async fn bounded_body(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_PUSH_BODY_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_PUSH_BODY_BYTES {
            break;
        }
    }
    body
}

/// A push service's refusal: the status, its `Retry-After` and the start of its body.
pub(crate) struct Refusal {
    /// The HTTP status (not a success).
    pub status: reqwest::StatusCode,
    /// The service's `Retry-After`, if it gave one in seconds.
    pub after: Option<Duration>,
    /// At most [`MAX_PUSH_BODY_BYTES`] of the body, where the service says why.
    pub body: Vec<u8>,
}

/// What became of a push sent to a service: `Ok` with the service's refusal, for the sender to
/// read in its own terms, or `Err` with the outcome already known (delivered, or a transport
/// error to retry).
pub(crate) async fn refusal(
    sent: reqwest::Result<reqwest::Response>,
) -> std::result::Result<Refusal, Outcome> {
    let response = sent.map_err(|e| Outcome::Retry {
        after: None,
        why: transport(e),
    })?;
    let status = response.status();
    if status.is_success() {
        return Err(Outcome::Delivered);
    }
    let after = retry_after(response.headers());
    Ok(Refusal {
        status,
        after,
        body: bounded_body(response).await,
    })
}

/// The HTTP client of one push service: no redirects (a redirect would carry the credentials
/// elsewhere), bounded times.
pub(crate) fn http_client(http2_only: bool) -> Result<reqwest::Client, StartError> {
    // Fails only when a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(PUSH_CONNECT_TIMEOUT)
        .timeout(PUSH_HTTP_TIMEOUT);
    if http2_only {
        builder = builder.http2_prior_knowledge();
    }
    builder.build().map_err(|e| {
        StartError::Fault(crate::error::ServerError::Internal(format!(
            "no HTTP client for push: {e}"
        )))
    })
}

/// A transport error as the log shows it: what failed, never a header or body.
pub(crate) fn transport(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "transport error"
    };
    // reqwest's Display names the URL; an APNs URL holds the device token, so it is left out.
    format!("{kind}: {}", e.without_url())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery() -> Delivery {
        Delivery {
            target: PushTarget {
                device_jkt: "jkt".into(),
                platform: PushPlatform::Fcm,
                token: "secret-token".into(),
            },
            message: PushMessage {
                account_id: "a".into(),
                request_id: "r".into(),
            },
            expires_at: clock::now() + 60,
        }
    }

    #[test]
    fn a_full_queue_drops_the_push_and_counts_it() {
        let (pusher, _receiver) = Pusher::new(Services::default());
        for _ in 0..PUSH_QUEUE_CAPACITY {
            pusher.dispatch(vec![delivery()]);
        }
        assert_eq!(pusher.dropped(), 0);

        pusher.dispatch(vec![delivery()]);

        assert_eq!(pusher.dropped(), 1);
    }

    #[test]
    fn a_stopped_worker_drops_the_push_and_counts_it() {
        let (pusher, receiver) = Pusher::new(Services::default());
        drop(receiver);

        pusher.dispatch(vec![delivery()]);

        assert_eq!(pusher.dropped(), 1);
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let shown = format!("{:?}", delivery());

        assert!(!shown.contains("secret-token"), "{shown}");
    }

    #[test]
    fn retry_after_is_read_in_seconds_and_a_date_is_ignored() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        let mut dated = reqwest::header::HeaderMap::new();
        dated.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );

        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&dated), None);
        assert_eq!(retry_after(&reqwest::header::HeaderMap::new()), None);
    }
}
