//! HTTP paths and JSON bodies of the Sleutel server.

mod phone;

pub use phone::*;
