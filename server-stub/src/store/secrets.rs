//! The server's keys and secrets as stored (generated once).
