//! The server's clock: Unix seconds, the unit of every lifetime in the protocol.

use std::time::{SystemTime, UNIX_EPOCH};

/// The current time in Unix seconds. A clock before 1970 reads as 0, which makes everything
/// look expired rather than valid forever.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
