//! CIBA ping mode (§10.2): when a request of a ping-mode relying party gets an outcome
//! (approved, declined, closed), the server POSTs `{"auth_req_id": ...}` to the relying party's
//! registered notification endpoint with the `client_notification_token` it gave as bearer
//! token; the relying party then fetches the result from the token endpoint.
//!
//! A ping is registered in the database (`pings`, schema v17) in the transaction that stores
//! its request, so that whichever server instance records the outcome sends it, and exactly
//! one does: the ping is taken by a delete that only one instance's transaction can win. The
//! notification tokens are bearer credentials of the relying party: they are sealed with
//! AES-256-GCM under the notification key of the configuration before they are written (the
//! request id bound in as associated data), opened only to send the ping, zeroized when
//! dropped, and never logged. Without a configured key (one SQLite server) a key is drawn at
//! start and kept in memory: a restart then loses the pings of earlier requests, which their
//! relying parties can still poll for.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use sleutel_protocol::api::oidc::PingNotification;
use zeroize::Zeroizing;

use crate::error::{Result, ServerError, StartError};
use crate::store::{Store, Tx, pings};

/// How long one ping may take before it is given up: the relying party's endpoint should
/// answer at once, and a slow one must not hold server resources.
pub(crate) const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest `client_notification_token` accepted (CIBA §7.1 leaves it to the server): tokens are
/// opaque values of at least 128 bits; a kilobyte leaves room for a signed token.
pub(crate) const MAX_NOTIFICATION_TOKEN_CHARS: usize = 1024;

/// Length of the notification key: AES-256.
pub(crate) const NOTIFICATION_KEY_BYTES: usize = 32;

/// A ping taken from the database, ready to send.
pub(crate) struct Ping {
    /// The request's id at the relying party.
    pub auth_req_id: String,
    /// The relying party's notification endpoint.
    pub endpoint: String,
    /// The relying party's bearer token, opened.
    pub token: Zeroizing<String>,
}

/// Seals and opens notification tokens, and sends the pings.
pub(crate) struct Notifier {
    key: std::sync::Arc<LessSafeKey>,
    store: Store,
    http: Option<reqwest::Client>,
    runtime: tokio::runtime::Handle,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier").finish_non_exhaustive()
    }
}

impl Notifier {
    /// A notifier that keeps its pings in `store`, seals their tokens with the key in
    /// `key_file` (64 hex digits), and spawns its pings on `runtime`. Without a key file a key
    /// is drawn for this process, which only a SQLite store (one instance) may do.
    pub(crate) fn new(
        runtime: tokio::runtime::Handle,
        store: Store,
        key_file: Option<&Path>,
    ) -> Result<Self, StartError> {
        let key_bytes = match key_file {
            Some(path) => read_key(path)?,
            None if store.is_shared() => {
                return Err(StartError::Config(
                    "several instances share a PostgreSQL database and the pings of its \
                     requests: give them one notification key (--notification-key-file, 64 hex \
                     digits, e.g. from `openssl rand -hex 32`)"
                        .into(),
                ));
            }
            None => Zeroizing::new(crate::random::bytes::<NOTIFICATION_KEY_BYTES>()?),
        };
        let key = UnboundKey::new(&AES_256_GCM, key_bytes.as_slice())
            .map_err(|_| StartError::Config("the notification key cannot be used".into()))?;
        // Fails only when a provider is already installed, which is what we want.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PING_TIMEOUT)
            .build()
            .inspect_err(|e| tracing::error!(error = %e, "no HTTP client for pings"))
            .ok();
        Ok(Self {
            key: std::sync::Arc::new(LessSafeKey::new(key)),
            store,
            http,
            runtime,
        })
    }

    /// Remembers, in the transaction that stores request `request_id`, to ping `endpoint` with
    /// `token` when the request has an outcome, until `forget_at`.
    pub(crate) fn register(
        &self,
        tx: &Tx<'_>,
        request_id: &str,
        auth_req_id: &str,
        endpoint: &str,
        token: &str,
        forget_at: i64,
    ) -> Result<()> {
        let sealed = self.seal(request_id, token)?;
        pings::register(tx, request_id, auth_req_id, endpoint, &sealed, forget_at)?;
        Ok(())
    }

    /// Remembers, in the transaction that records the request nobody can answer
    /// `auth_req_id`, to ping `endpoint` with `token` when it is superseded, until `forget_at`:
    /// as for a person's request, so that the pings tell the numbers apart no more than the
    /// answers do (decision 0030).
    pub(crate) fn register_unanswerable(
        &self,
        tx: &Tx<'_>,
        auth_req_id: &str,
        endpoint: &str,
        token: &str,
        forget_at: i64,
    ) -> Result<()> {
        let sealed = self.seal(auth_req_id, token)?;
        pings::register_unanswerable(tx, auth_req_id, endpoint, &sealed, forget_at)?;
        Ok(())
    }

    /// Pings for each of `request_ids` (a person's request's id, or the `auth_req_id` of a
    /// request nobody can answer) that has a registered ping (others are poll-mode
    /// requests, or pinged already). Call after the outcome is committed; the database work
    /// and the sending run in the background.
    pub(crate) fn notify(&self, request_ids: &[String]) {
        if request_ids.is_empty() {
            return;
        }
        let Some(http) = self.http.clone() else {
            return;
        };
        let store = self.store.clone();
        let ids = request_ids.to_vec();
        let key = self.key.clone();
        self.runtime.spawn(async move {
            let taken = tokio::task::spawn_blocking(move || {
                store.run(|conn| {
                    // All or none: a conflict runs the whole take again.
                    let tx = conn.immediate()?;
                    let taken = pings::take(&tx, &ids)?;
                    tx.commit()?;
                    Ok(taken)
                })
            })
            .await;
            let taken = match taken {
                Ok(Ok(taken)) => taken,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "the pings of answered requests could not be read");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the pings' database work failed");
                    return;
                }
            };
            for row in taken {
                let Some(ping) = open(&key, row) else {
                    tracing::warn!(
                        "a ping's notification token could not be opened: do the instances \
                         share one notification key?"
                    );
                    continue;
                };
                send(http.clone(), ping).await;
            }
        });
    }

    fn seal(&self, request_id: &str, token: &str) -> Result<Vec<u8>> {
        let nonce_bytes = crate::random::bytes::<NONCE_LEN>()?;
        let mut sealed = Zeroizing::new(token.as_bytes().to_vec());
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(request_id.as_bytes()),
                &mut *sealed,
            )
            .map_err(|_| ServerError::Internal("sealing a notification token failed".into()))?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }
}

/// Opens a ping's sealed token; `None` when it was not sealed under this key for this request.
fn open(key: &LessSafeKey, row: pings::Sealed) -> Option<Ping> {
    if row.sealed_token.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ciphertext) = row.sealed_token.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    let plain = key
        .open_in_place(nonce, Aad::from(row.request_id.as_bytes()), &mut buffer)
        .ok()?;
    let token = Zeroizing::new(String::from_utf8(plain.to_vec()).ok()?);
    Some(Ping {
        auth_req_id: row.auth_req_id,
        endpoint: row.endpoint,
        token,
    })
}

/// Sends one ping; failures are logged (by endpoint, never the token) and not retried: the
/// relying party can always poll.
async fn send(http: reqwest::Client, ping: Ping) {
    let body = PingNotification {
        auth_req_id: ping.auth_req_id,
    };
    let sent = http
        .post(&ping.endpoint)
        .bearer_auth(ping.token.as_str())
        .json(&body)
        .send()
        .await;
    match sent {
        Ok(answer) if answer.status().is_success() => {}
        Ok(answer) => tracing::warn!(
            status = answer.status().as_u16(),
            "a relying party's notification endpoint refused a ping"
        ),
        // The error names the endpoint, never the token.
        Err(e) => tracing::warn!(error = %e, "a ping could not be delivered"),
    }
}

/// Reads the notification key: 64 hex digits (surrounding white space allowed).
fn read_key(path: &Path) -> Result<Zeroizing<[u8; NOTIFICATION_KEY_BYTES]>, StartError> {
    let unusable = |detail: &str| {
        StartError::Config(format!(
            "notification key file {}: {detail}",
            path.display()
        ))
    };
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| unusable(&format!("cannot read it: {e}")))?,
    );
    let digits = text.trim().as_bytes();
    if digits.len() != 2 * NOTIFICATION_KEY_BYTES {
        return Err(unusable("must hold 64 hex digits (32 bytes)"));
    }
    let mut key = Zeroizing::new([0u8; NOTIFICATION_KEY_BYTES]);
    for (byte, pair) in key.iter_mut().zip(digits.chunks(2)) {
        let text = std::str::from_utf8(pair).map_err(|_| unusable("not hex"))?;
        *byte = u8::from_str_radix(text, 16).map_err(|_| unusable("not hex"))?;
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[byte; 32]).unwrap())
    }

    fn sealed(key: &LessSafeKey, request_id: &str, token: &str) -> pings::Sealed {
        let nonce = [7u8; NONCE_LEN];
        let mut buffer = token.as_bytes().to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(request_id.as_bytes()),
            &mut buffer,
        )
        .unwrap();
        let mut sealed_token = nonce.to_vec();
        sealed_token.extend_from_slice(&buffer);
        pings::Sealed {
            request_id: request_id.into(),
            auth_req_id: "a".into(),
            endpoint: "https://rp.example/ping".into(),
            sealed_token,
        }
    }

    #[test]
    fn a_sealed_token_opens_under_its_key_for_its_request_only() {
        let row = sealed(&key(1), "req-1", "bearer-secret");
        assert_eq!(open(&key(1), row).unwrap().token.as_str(), "bearer-secret");

        assert!(open(&key(2), sealed(&key(1), "req-1", "bearer-secret")).is_none());
        let mut moved = sealed(&key(1), "req-1", "bearer-secret");
        moved.request_id = "req-2".into();
        assert!(open(&key(1), moved).is_none());
    }

    #[test]
    fn the_sealed_form_does_not_contain_the_token() {
        let row = sealed(&key(1), "req-1", "bearer-secret");
        assert!(
            !row.sealed_token
                .windows(b"bearer-secret".len())
                .any(|w| w == b"bearer-secret")
        );
    }

    #[test]
    fn a_key_file_must_hold_64_hex_digits() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good");
        std::fs::write(&good, format!("{}\n", "ab".repeat(32))).unwrap();
        assert_eq!(*read_key(&good).unwrap(), [0xab; 32]);
        for bad in ["ab".repeat(31), "zz".repeat(32), String::new()] {
            let path = dir.path().join("bad");
            std::fs::write(&path, bad).unwrap();
            assert!(read_key(&path).is_err());
        }
    }
}
