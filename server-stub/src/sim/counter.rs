//! The simulated town-hall counter: an official checks the person's identity document and hands
//! out an activation code; an e-mail with an activation link follows. The link carries a random
//! token, never the code: activating (or blocking) needs both the link and the code typed by the
//! person, so whoever reads the mailbox alone, or holds the code alone, activates nothing. Code
//! and link are valid together for `activation_code_ttl_secs` (14 days), work once, and are
//! stored only as keyed hashes.

use crate::store::identity_codes::{self, IssuedBySimulator};
use crate::store::outboxes;
use axum::Json;
use axum::extract::State;
use sleutel_protocol::api;
use sleutel_protocol::api::sim::{ActivationCodeIssued, CounterActivation};
use sleutel_protocol::identity::{self, ACTIVATION_CODE_LENGTH, ACTIVATION_TOKEN_BYTES};
use sleutel_protocol::jose;

use crate::clock;
use crate::error::{Result, ServerError};
use crate::extract::{self, RawBody};
use crate::server::AppState;
use crate::sim::citizens::citizen_identity;
use crate::sim::outbox::send_email;
use crate::sim::{check_email, identity_code};

/// Issuer recorded for identities checked at the counter.
pub(crate) const COUNTER_ISSUER: &str = "counter";

/// The kind of evidence the counter records: an identity document checked by an official.
pub(crate) const EVIDENCE_COUNTER_CHECK: &str = "counter_identity_check";

/// Longest identity document number accepted.
const MAX_DOCUMENT_NUMBER_CHARS: usize = 32;

/// Subject of the e-mail with the activation link.
pub(crate) const ACTIVATION_EMAIL_SUBJECT: &str = "Activeer uw digitale sleutel";

/// `POST /sim/counter/activation`: the official has checked the identity document of the
/// person with this national register number.
pub(crate) async fn activation(
    State(state): State<AppState>,
    RawBody(body): RawBody,
) -> Result<Json<ActivationCodeIssued>> {
    let form: CounterActivation = extract::json(&body)?;
    let email = check_email(&form.email)?;
    let document = form.document_number.trim().to_owned();
    if document.is_empty()
        || document.len() > MAX_DOCUMENT_NUMBER_CHARS
        || !document
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(ServerError::InvalidRequest(format!(
            "document_number must be 1-{MAX_DOCUMENT_NUMBER_CHARS} letters, digits or '-'"
        )));
    }
    let nrn = form.national_register_number;
    let issued = state
        .db(move |app, conn| {
            let now = clock::now();
            let tx = conn.immediate()?;
            let citizen_id = outboxes::citizen_of_person(&tx, &nrn)?.ok_or_else(|| {
                ServerError::NotFound("no citizen with this national register number".into())
            })?;
            let person = citizen_identity(&tx, &citizen_id)?;
            let code = identity_code(ACTIVATION_CODE_LENGTH)?;
            let random = zeroize::Zeroizing::new(crate::random::bytes::<ACTIVATION_TOKEN_BYTES>()?);
            let token = zeroize::Zeroizing::new(jose::b64(random.as_slice()));
            let expires_at = now + app.policy.activation_code_ttl_secs;
            identity_codes::issue_counter_code(
                &tx,
                &IssuedBySimulator {
                    id: &crate::random::id()?,
                    code_hash: &app.keys.identity_code_hash("counter", &code)?,
                    email: &email,
                    person: &person,
                    issuer: COUNTER_ISSUER,
                    evidence_type: EVIDENCE_COUNTER_CHECK,
                    evidence_reference: &format!("document {document}"),
                    created_at: now,
                    expires_at,
                },
                &app.keys.activation_link_hash(&token)?,
            )?;
            let days = app.policy.activation_code_ttl_secs / 86_400;
            let text = zeroize::Zeroizing::new(format!(
                "Beste {},\n\nOpen deze link op uw smartphone en vul de activatiecode in die u \
                 aan het loket kreeg:\n{}\n\nDe link is {days} dagen geldig en werkt één keer, \
                 alleen samen met uw activatiecode.",
                person.given_name,
                api::counter_activation_link(&token)
            ));
            send_email(&tx, &email, ACTIVATION_EMAIL_SUBJECT, &text, now)?;
            tx.commit()?;
            Ok(ActivationCodeIssued {
                activation_code: identity::format_identity_code(&code),
                expires_at,
            })
        })
        .await?;
    Ok(Json(issued))
}
