//! Relying parties' state: browser sign-in sessions, authorization codes, access tokens, used
//! client-assertion ids, and the rate counts.
