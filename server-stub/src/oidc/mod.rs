//! OpenID Connect CIBA for relying parties.

mod backchannel;

pub(crate) use backchannel::{Clients, jwks, routes};
