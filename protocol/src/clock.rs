//! The one reading of the system clock that the phone core, the server and the harness share.
//!
//! Nothing in this crate calls it: every check here takes the time as an argument (decision
//! 0002), so tests hit the edges of a lifetime by passing a time, not by moving a clock. It lives
//! here only because the protocol crate is what every caller already depends on, so that the unit
//! (Unix seconds) and the answer for a clock before 1970 are decided once.

use std::time::{SystemTime, UNIX_EPOCH};

/// The current time in Unix seconds, the unit of every lifetime in the protocol. A clock before
/// 1970 reads as 0, which makes everything look expired rather than valid forever.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
