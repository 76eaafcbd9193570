//! Simulators of everything a person deals with outside the app, so every flow runs on one
//! machine: citizens with bank cards, the banks' authorize pages that hand out identity tokens,
//! and the SMS and push outboxes. No authentication: these endpoints stand in for the world.

use axum::Router;
use axum::routing::{get, post};
use sleutel_protocol::api;

use crate::server::AppState;

pub mod bank;
pub mod citizens;
pub mod outbox;

/// The simulator routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(api::PATH_SIM_CITIZENS, post(citizens::create))
        .route(
            "/sim/bank/{bank}/authorize",
            get(bank::authorize_page).post(bank::authorize),
        )
        .route(api::PATH_SIM_SMS, get(outbox::sms))
        .route(api::PATH_SIM_PUSH, get(outbox::push))
}
