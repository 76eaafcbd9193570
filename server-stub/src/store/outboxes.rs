//! The simulators' outboxes (SMS, e-mail, push) and the simulated world: citizens, bank cards,
//! eID cards.
//!
//! The outboxes are written in the transaction that decides to send, so a message commits or
//! rolls back with what it announces. The card checks ([`crate::sim::bank`],
//! [`crate::sim::eid`]) read a card and write its wrong-PIN count inside the caller's
//! transaction, which decides on what it read.

use sleutel_protocol::api::PushMessage;
use sleutel_protocol::api::sim::{Citizen, EmailMessage, PushOutboxEntry, SmsMessage};
use sleutel_protocol::identity::Bank;

use super::{DbError, FromValue, OptionalRow, Sql, Tx, ValueRef};
use crate::params;
use crate::push_tokens::PushTarget;

// --- The outboxes ------------------------------------------------------------------------------

/// Puts an SMS to `phone_number` in the outbox.
pub(crate) fn queue_sms(
    conn: &impl Sql,
    phone_number: &str,
    text: &str,
    sent_at: i64,
) -> Result<(), DbError> {
    conn.execute(
        "INSERT INTO sms_outbox (phone_number, text, sent_at) VALUES (?1, ?2, ?3)",
        params![phone_number, text, sent_at],
    )?;
    Ok(())
}

/// The newest `limit` SMS to `phone_number`, oldest first.
pub(crate) fn sms_to(
    conn: &impl Sql,
    phone_number: &str,
    limit: i64,
) -> Result<Vec<SmsMessage>, DbError> {
    conn.query_map(
        "SELECT phone_number, text, sent_at FROM
             (SELECT seq, phone_number, text, sent_at FROM sms_outbox
              WHERE phone_number = ?1 ORDER BY seq DESC LIMIT ?2) AS latest
         ORDER BY seq",
        params![phone_number, limit],
        |row| {
            Ok(SmsMessage {
                phone_number: row.get(0)?,
                text: row.get(1)?,
                sent_at: row.get(2)?,
            })
        },
    )
}

/// Puts an e-mail to `email` in the outbox.
pub(crate) fn queue_email(
    conn: &impl Sql,
    email: &str,
    subject: &str,
    text: &str,
    sent_at: i64,
) -> Result<(), DbError> {
    conn.execute(
        "INSERT INTO email_outbox (email, subject, text, sent_at) VALUES (?1, ?2, ?3, ?4)",
        params![email, subject, text, sent_at],
    )?;
    Ok(())
}

/// The newest `limit` e-mails to `email`, oldest first.
pub(crate) fn emails_to(
    conn: &impl Sql,
    email: &str,
    limit: i64,
) -> Result<Vec<EmailMessage>, DbError> {
    conn.query_map(
        "SELECT email, subject, text, sent_at FROM
             (SELECT seq, email, subject, text, sent_at FROM email_outbox
              WHERE email = ?1 ORDER BY seq DESC LIMIT ?2) AS latest
         ORDER BY seq",
        params![email, limit],
        |row| {
            Ok(EmailMessage {
                email: row.get(0)?,
                subject: row.get(1)?,
                text: row.get(2)?,
                sent_at: row.get(3)?,
            })
        },
    )
}

/// Puts a push for `message` in the outbox.
pub(crate) fn queue_push(
    conn: &impl Sql,
    message: &PushMessage,
    created_at: i64,
) -> Result<(), DbError> {
    conn.execute(
        "INSERT INTO push_outbox (account_id, request_id, created_at) VALUES (?1, ?2, ?3)",
        params![message.account_id, message.request_id, created_at],
    )?;
    Ok(())
}

/// The pushes for `account_id` with a sequence number above `after`, oldest first, at most
/// `limit` of them.
pub(crate) fn pushes_for(
    conn: &impl Sql,
    account_id: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<PushOutboxEntry>, DbError> {
    conn.query_map(
        "SELECT seq, account_id, request_id FROM push_outbox
         WHERE account_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        params![account_id, after, limit],
        |row| {
            Ok(PushOutboxEntry {
                seq: row.get(0)?,
                message: PushMessage {
                    account_id: row.get(1)?,
                    request_id: row.get(2)?,
                },
            })
        },
    )
}

/// Whether a push of the request `request_id` to `target` is still worth sending at `now`: the
/// request is pending and unexpired, and the token is still the one of its device, active on
/// the request's account.
pub(crate) fn push_still_due(
    conn: &impl Sql,
    request_id: &str,
    target: &PushTarget,
    now: i64,
) -> Result<bool, DbError> {
    conn.query_row(
        "SELECT EXISTS (
                 SELECT 1 FROM action_requests r
                 JOIN devices d ON d.account_id = r.account_id
                 JOIN push_tokens t ON t.device_jkt = d.jkt
                 WHERE r.id = ?1 AND r.status = 'pending' AND r.expires_at > ?5
                     AND d.jkt = ?2 AND d.revoked_at IS NULL
                     AND t.platform = ?3 AND t.token = ?4)",
        params![
            request_id,
            target.device_jkt,
            target.platform.as_str(),
            target.token,
            now
        ],
        |row| row.get(0),
    )
}

/// Deletes the SMS, e-mail and push outbox messages sent before `before`; returns how many.
pub(crate) fn purge_sent_before(conn: &impl Sql, before: i64) -> Result<usize, DbError> {
    let mut deleted = conn.execute("DELETE FROM sms_outbox WHERE sent_at < ?1", params![before])?;
    deleted += conn.execute(
        "DELETE FROM email_outbox WHERE sent_at < ?1",
        params![before],
    )?;
    deleted += conn.execute(
        "DELETE FROM push_outbox WHERE created_at < ?1",
        params![before],
    )?;
    Ok(deleted)
}

// --- Citizens ----------------------------------------------------------------------------------

/// Stores a new citizen's identity (the cards go in with [`add_card`] and [`add_eid_card`]); a
/// national register number already taken is a unique violation.
pub(crate) fn add_citizen(tx: &Tx<'_>, citizen: &Citizen, created_at: i64) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO citizens (id, given_name, family_name, birthdate, national_register_number,
             bank, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            citizen.citizen_id,
            citizen.given_name,
            citizen.family_name,
            citizen.birthdate,
            citizen.national_register_number,
            citizen.bank.id(),
            created_at
        ],
    )?;
    Ok(())
}

/// A simulated citizen's identity, as a source vouches for it. No `Debug`: personal data stays
/// out of logs.
pub(crate) struct CitizenIdentity {
    /// Given name.
    pub(crate) given_name: String,
    /// Family name.
    pub(crate) family_name: String,
    /// Birth date (ISO 8601).
    pub(crate) birthdate: String,
    /// National register number.
    pub(crate) national_register_number: String,
}

/// The identity of the citizen `citizen_id`, if there is one.
pub(crate) fn citizen_identity(
    conn: &impl Sql,
    citizen_id: &str,
) -> Result<Option<CitizenIdentity>, DbError> {
    conn.query_row(
        "SELECT given_name, family_name, birthdate, national_register_number
         FROM citizens WHERE id = ?1",
        params![citizen_id],
        |row| {
            Ok(CitizenIdentity {
                given_name: row.get(0)?,
                family_name: row.get(1)?,
                birthdate: row.get(2)?,
                national_register_number: row.get(3)?,
            })
        },
    )
    .optional()
}

/// The citizen with national register number `nrn`, if there is one.
pub(crate) fn citizen_of_person(conn: &impl Sql, nrn: &str) -> Result<Option<String>, DbError> {
    conn.query_row(
        "SELECT id FROM citizens WHERE national_register_number = ?1",
        params![nrn],
        |row| row.get(0),
    )
    .optional()
}

/// A citizen's identity as a bank puts it in an identity token, with the number of their debit
/// card (for the evidence's last four digits).
pub(crate) struct BankCustomer {
    /// The citizen's identity.
    pub(crate) identity: CitizenIdentity,
    /// The number of their debit card, if they have one.
    pub(crate) debit_card_number: Option<String>,
}

/// The citizen `citizen_id` as their bank knows them, if there is one.
pub(crate) fn bank_customer(
    conn: &impl Sql,
    citizen_id: &str,
) -> Result<Option<BankCustomer>, DbError> {
    conn.query_row(
        "SELECT c.given_name, c.family_name, c.birthdate, c.national_register_number,
                (SELECT number FROM cards WHERE citizen_id = c.id AND kind = 'debit')
         FROM citizens c WHERE c.id = ?1",
        params![citizen_id],
        |row| {
            Ok(BankCustomer {
                identity: CitizenIdentity {
                    given_name: row.get(0)?,
                    family_name: row.get(1)?,
                    birthdate: row.get(2)?,
                    national_register_number: row.get(3)?,
                },
                debit_card_number: row.get(4)?,
            })
        },
    )
    .optional()
}

// --- Bank cards ----------------------------------------------------------------------------------

/// What a bank card is (the `kind` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CardKind {
    /// A debit card: it can prove an identity.
    Debit,
    /// A credit card: it cannot.
    Credit,
}

impl CardKind {
    /// The name stored in the `kind` column (and shown in [`sleutel_protocol::api::sim::Card`]).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CardKind::Debit => "debit",
            CardKind::Credit => "credit",
        }
    }
}

impl FromValue for CardKind {
    fn from_value(value: ValueRef<'_>) -> Result<Self, DbError> {
        match String::from_value(value)?.as_str() {
            "debit" => Ok(CardKind::Debit),
            "credit" => Ok(CardKind::Credit),
            other => Err(DbError::Value(format!("unknown card kind {other:?}"))),
        }
    }
}

/// A new bank card of a citizen, with its PIN as a salted hash.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewCard<'a> {
    /// The card number.
    pub(crate) number: &'a str,
    /// Its holder.
    pub(crate) citizen_id: &'a str,
    /// The issuing bank.
    pub(crate) bank: Bank,
    /// Debit or credit.
    pub(crate) kind: CardKind,
    /// The salt of the PIN hash.
    pub(crate) pin_salt: &'a [u8],
    /// The PIN's salted hash.
    pub(crate) pin_hash: &'a [u8],
}

/// Stores a new bank card; a number already taken is a unique violation.
pub(crate) fn add_card(tx: &Tx<'_>, card: &NewCard<'_>) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO cards (number, citizen_id, bank, kind, pin_salt, pin_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            card.number,
            card.citizen_id,
            card.bank.id(),
            card.kind.as_str(),
            card.pin_salt,
            card.pin_hash
        ],
    )?;
    Ok(())
}

/// A bank card as the bank checks it.
pub(crate) struct StoredCard {
    /// Its holder.
    pub(crate) citizen_id: String,
    /// The issuing bank.
    pub(crate) bank: Bank,
    /// Debit or credit.
    pub(crate) kind: CardKind,
    /// The salt of the PIN hash.
    pub(crate) pin_salt: Vec<u8>,
    /// The PIN's salted hash.
    pub(crate) pin_hash: Vec<u8>,
    /// Wrong PINs since the last right one.
    pub(crate) pin_failures: u32,
    /// Whether wrong PINs blocked it.
    pub(crate) blocked: bool,
}

/// The bank card `number`, if there is one.
pub(crate) fn card(conn: &impl Sql, number: &str) -> Result<Option<StoredCard>, DbError> {
    conn.query_row(
        "SELECT citizen_id, bank, kind, pin_salt, pin_hash, pin_failures,
                blocked_at IS NOT NULL
         FROM cards WHERE number = ?1",
        params![number],
        |row| {
            let bank: String = row.get(1)?;
            Ok(StoredCard {
                citizen_id: row.get(0)?,
                bank: Bank::from_id(&bank)
                    .map_err(|_| DbError::Value(format!("unknown bank {bank:?}")))?,
                kind: row.get(2)?,
                pin_salt: row.get(3)?,
                pin_hash: row.get(4)?,
                pin_failures: row.get(5)?,
                blocked: row.get(6)?,
            })
        },
    )
    .optional()
}

/// Sets the wrong-PIN count of the card `number` to `failures`, blocked from `blocked_at` when
/// that count reached the limit.
pub(crate) fn record_card_pin_failure(
    tx: &impl Sql,
    number: &str,
    failures: u32,
    blocked_at: Option<i64>,
) -> Result<(), DbError> {
    tx.execute(
        "UPDATE cards SET pin_failures = ?2, blocked_at = ?3 WHERE number = ?1",
        params![number, failures, blocked_at],
    )?;
    Ok(())
}

/// Clears the wrong-PIN count of the card `number` after its right PIN.
pub(crate) fn clear_card_pin_failures(tx: &impl Sql, number: &str) -> Result<(), DbError> {
    tx.execute(
        "UPDATE cards SET pin_failures = 0 WHERE number = ?1",
        params![number],
    )?;
    Ok(())
}

// --- eID cards ---------------------------------------------------------------------------------

/// A new eID card of a citizen, with its PIN as a salted hash.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewEidCard<'a> {
    /// The card serial.
    pub(crate) serial: &'a str,
    /// Its holder.
    pub(crate) citizen_id: &'a str,
    /// Its last day of validity, `YYYY-MM-DD`.
    pub(crate) valid_until: &'a str,
    /// The salt of the PIN hash.
    pub(crate) pin_salt: &'a [u8],
    /// The PIN's salted hash.
    pub(crate) pin_hash: &'a [u8],
}

/// Stores a new eID card; a serial already taken is a unique violation.
pub(crate) fn add_eid_card(tx: &Tx<'_>, card: &NewEidCard<'_>) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO eid_cards (serial, citizen_id, valid_until, pin_salt, pin_hash)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            card.serial,
            card.citizen_id,
            card.valid_until,
            card.pin_salt,
            card.pin_hash
        ],
    )?;
    Ok(())
}

/// An eID card as the eID website checks it.
pub(crate) struct StoredEidCard {
    /// Its holder.
    pub(crate) citizen_id: String,
    /// Its last day of validity, `YYYY-MM-DD`.
    pub(crate) valid_until: String,
    /// The salt of the PIN hash.
    pub(crate) pin_salt: Vec<u8>,
    /// The PIN's salted hash.
    pub(crate) pin_hash: Vec<u8>,
    /// Wrong PINs since the last right one.
    pub(crate) pin_failures: u32,
    /// Whether wrong PINs blocked it.
    pub(crate) blocked: bool,
    /// Whether it was reported lost or stolen.
    pub(crate) revoked: bool,
}

/// The eID card `serial`, if there is one.
pub(crate) fn eid_card(conn: &impl Sql, serial: &str) -> Result<Option<StoredEidCard>, DbError> {
    conn.query_row(
        "SELECT citizen_id, valid_until, pin_salt, pin_hash, pin_failures,
                blocked_at IS NOT NULL, revoked_at IS NOT NULL
         FROM eid_cards WHERE serial = ?1",
        params![serial],
        |row| {
            Ok(StoredEidCard {
                citizen_id: row.get(0)?,
                valid_until: row.get(1)?,
                pin_salt: row.get(2)?,
                pin_hash: row.get(3)?,
                pin_failures: row.get(4)?,
                blocked: row.get(5)?,
                revoked: row.get(6)?,
            })
        },
    )
    .optional()
}

/// Sets the wrong-PIN count of the eID card `serial` to `failures`, blocked from `blocked_at`
/// when that count reached the limit.
pub(crate) fn record_eid_pin_failure(
    tx: &impl Sql,
    serial: &str,
    failures: u32,
    blocked_at: Option<i64>,
) -> Result<(), DbError> {
    tx.execute(
        "UPDATE eid_cards SET pin_failures = ?2, blocked_at = ?3 WHERE serial = ?1",
        params![serial, failures, blocked_at],
    )?;
    Ok(())
}

/// Clears the wrong-PIN count of the eID card `serial` after its right PIN.
pub(crate) fn clear_eid_pin_failures(tx: &impl Sql, serial: &str) -> Result<(), DbError> {
    tx.execute(
        "UPDATE eid_cards SET pin_failures = 0 WHERE serial = ?1",
        params![serial],
    )?;
    Ok(())
}

/// Revokes the eID card `serial` (one revoked already keeps its time); `false` for no such
/// card.
pub(crate) fn revoke_eid_card(conn: &impl Sql, serial: &str, now: i64) -> Result<bool, DbError> {
    let changed = conn.execute(
        "UPDATE eid_cards SET revoked_at = COALESCE(revoked_at, ?2) WHERE serial = ?1",
        params![serial, now],
    )?;
    Ok(changed > 0)
}
