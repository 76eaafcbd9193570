//! Enrollments: one row per activation in progress, its step, the proven identity, the SMS
//! code and its counts. The steps' rules (what may follow what, the limits, the errors) are the
//! `enrollment` module's; here each step's reading and writing.

use sleutel_protocol::identity::{Bank, IdentitySource};

use super::{DbError, FromValue, OptionalRow, Row, Sql, Tx, ValueRef};
use crate::error::{Result as ServerResult, ServerError};
use crate::params;

/// Where an enrollment stands (the `step` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Waiting for the identity: a bank token, an eID or a counter code.
    Identity,
    /// The identity is proven; waiting for the SMS code.
    Sms,
    /// The number is verified; waiting for the device and PIN keys.
    Keys,
    /// Completed: the device is registered on its account.
    Done,
    /// Ended by too many wrong codes.
    Failed,
}

impl Step {
    const ALL: [Step; 5] = [
        Step::Identity,
        Step::Sms,
        Step::Keys,
        Step::Done,
        Step::Failed,
    ];

    /// The name stored in the `step` column.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Step::Identity => "identity",
            Step::Sms => "sms",
            Step::Keys => "keys",
            Step::Done => "done",
            Step::Failed => "failed",
        }
    }
}

impl FromValue for Step {
    fn from_value(value: ValueRef<'_>) -> Result<Self, DbError> {
        let text = String::from_value(value)?;
        Step::ALL
            .into_iter()
            .find(|step| step.as_str() == text)
            .ok_or_else(|| DbError::Value(format!("unknown enrollment step {text:?}")))
    }
}

/// The stored name of an identity source (`bank`, `eid`, `counter`): the enrollment's `source`,
/// the account's `identity_source`.
pub(crate) fn source_name(source: IdentitySource) -> &'static str {
    match source {
        IdentitySource::Bank => "bank",
        IdentitySource::Eid => "eid",
        IdentitySource::Counter => "counter",
    }
}

fn source_from_name(name: String) -> Result<IdentitySource, DbError> {
    [
        IdentitySource::Bank,
        IdentitySource::Eid,
        IdentitySource::Counter,
    ]
    .into_iter()
    .find(|source| source_name(*source) == name)
    .ok_or_else(|| DbError::Value(format!("unknown identity source {name:?}")))
}

/// An identity as stored with an enrollment, an identity code or an account. No `Debug`:
/// personal data stays out of logs.
#[derive(Clone)]
pub(crate) struct ProvenIdentity {
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Birth date, `YYYY-MM-DD`.
    pub birthdate: String,
    /// The national register number: the person.
    pub national_register_number: String,
    /// Who vouched for it (`bank:kbc`, the eID website, the counter).
    pub issuer: String,
    /// What the issuer checked (`bank_debit_card`, ...).
    pub evidence_type: String,
    /// A non-secret reference to that evidence.
    pub evidence_reference: String,
}

impl ProvenIdentity {
    /// The name the phone shows: given and family name.
    pub(crate) fn display_name(&self) -> String {
        format!("{} {}", self.given_name, self.family_name)
    }

    /// The person's national register number.
    pub(crate) fn national_register_number(&self) -> &str {
        &self.national_register_number
    }

    /// The identity columns of a row, from column `first` on, in the order given name, family
    /// name, birth date, national register number, issuer, evidence type and reference.
    pub(super) fn at(row: &Row<'_>, first: usize) -> Result<Self, DbError> {
        Ok(Self {
            given_name: row.get(first)?,
            family_name: row.get(first + 1)?,
            birthdate: row.get(first + 2)?,
            national_register_number: row.get(first + 3)?,
            issuer: row.get(first + 4)?,
            evidence_type: row.get(first + 5)?,
            evidence_reference: row.get(first + 6)?,
        })
    }

    /// Like [`ProvenIdentity::at`] for columns that are NULL until the identity is proven:
    /// `None` unless every one is set.
    fn at_if_set(row: &Row<'_>, first: usize) -> Result<Option<Self>, DbError> {
        let column = |offset: usize| row.get::<Option<String>>(first + offset);
        Ok(
            match (
                column(0)?,
                column(1)?,
                column(2)?,
                column(3)?,
                column(4)?,
                column(5)?,
                column(6)?,
            ) {
                (Some(g), Some(f), Some(b), Some(n), Some(i), Some(t), Some(r)) => Some(Self {
                    given_name: g,
                    family_name: f,
                    birthdate: b,
                    national_register_number: n,
                    issuer: i,
                    evidence_type: t,
                    evidence_reference: r,
                }),
                _ => None,
            },
        )
    }
}

/// An enrollment row. No `Debug`: it holds the SMS code's hash.
pub(crate) struct Enrollment {
    /// The enrollment id.
    pub id: String,
    /// The nonce an identity token and the keys' proofs of possession must carry.
    pub nonce: String,
    /// The thumbprint of the device key that started it: every call must be signed by it.
    pub device_jkt: String,
    /// The phone number being activated (normalised).
    pub phone_number: String,
    /// How the identity is proven.
    pub source: IdentitySource,
    /// The bank the activation was started with (`Bank::id`).
    pub bank: Option<String>,
    /// Where it stands.
    pub step: Step,
    /// End of its lifetime.
    pub expires_at: i64,
    /// The identity proven (from step `sms` on).
    pub identity: Option<ProvenIdentity>,
    /// The keyed hash of the SMS code sent last (erased once used or failed).
    pub sms_code_hash: Option<Vec<u8>>,
    /// When that code expires.
    pub sms_expires_at: Option<i64>,
    /// When that code was sent.
    pub sms_sent_at: Option<i64>,
    /// How many SMS codes were sent.
    pub sms_sends: u32,
    /// Wrong SMS codes typed in this enrollment.
    pub sms_failures: u32,
    /// Wrong identification or activation codes typed in this enrollment.
    pub code_failures: u32,
    /// The account the completion created or renewed (step `done`).
    pub account_id: Option<String>,
    /// The thumbprint of the device this enrollment replaces (an unblock from the same phone),
    /// revoked at completion.
    pub replaces_jkt: Option<String>,
}

impl Enrollment {
    /// The identity proven, which an enrollment past step `identity` must have.
    pub(crate) fn identity(&self) -> ServerResult<&ProvenIdentity> {
        self.identity
            .as_ref()
            .ok_or_else(|| ServerError::Internal("enrollment past identity without one".into()))
    }
}

/// The enrollment `id`, or `None` if there is none.
pub(crate) fn load(conn: &impl Sql, id: &str) -> Result<Option<Enrollment>, DbError> {
    conn.query_row(
        "SELECT id, nonce, device_jkt, phone_number, step, expires_at,
                given_name, family_name, birthdate, national_register_number,
                identity_issuer, evidence_type, evidence_reference,
                sms_code_hash, sms_expires_at, sms_sent_at, sms_sends, sms_failures,
                bank, account_id, source, code_failures, replaces_jkt
         FROM enrollments WHERE id = ?1",
        params![id],
        |row| {
            Ok(Enrollment {
                id: row.get(0)?,
                nonce: row.get(1)?,
                device_jkt: row.get(2)?,
                phone_number: row.get(3)?,
                bank: row.get(18)?,
                step: row.get(4)?,
                expires_at: row.get(5)?,
                identity: ProvenIdentity::at_if_set(row, 6)?,
                sms_code_hash: row.get(13)?,
                sms_expires_at: row.get(14)?,
                sms_sent_at: row.get(15)?,
                sms_sends: row.get(16)?,
                sms_failures: row.get(17)?,
                account_id: row.get(19)?,
                source: source_from_name(row.get(20)?)?,
                code_failures: row.get(21)?,
                replaces_jkt: row.get(22)?,
            })
        },
    )
    .optional()
}

/// A new enrollment, at step `identity`.
pub(crate) struct NewEnrollment<'a> {
    /// Its random id.
    pub id: &'a str,
    /// Its random nonce.
    pub nonce: &'a str,
    /// The thumbprint of the device key that started it.
    pub device_jkt: &'a str,
    /// The phone number to activate (normalised).
    pub phone_number: &'a str,
    /// How the identity will be proven.
    pub source: IdentitySource,
    /// The bank chosen, for source `bank`.
    pub bank: Option<Bank>,
    /// When it started.
    pub created_at: i64,
    /// End of its lifetime.
    pub expires_at: i64,
    /// The device an unblock from the same phone replaces, its signature checked.
    pub replaces_jkt: Option<&'a str>,
}

/// Stores a new enrollment.
pub(crate) fn create(tx: &Tx<'_>, new: &NewEnrollment<'_>) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO enrollments
             (id, nonce, device_jkt, phone_number, source, bank, step, created_at, expires_at,
              replaces_jkt)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'identity', ?7, ?8, ?9)",
        params![
            new.id,
            new.nonce,
            new.device_jkt,
            new.phone_number,
            source_name(new.source),
            new.bank.map(Bank::id),
            new.created_at,
            new.expires_at,
            new.replaces_jkt
        ],
    )?;
    Ok(())
}

/// Stores the identity proven for enrollment `id` and moves it from step `identity` to `sms`.
/// Conditional on the step: `false` (nothing written) when the enrollment is no longer at step
/// `identity`, so one enrollment admits one identity.
pub(crate) fn store_identity(
    tx: &Tx<'_>,
    id: &str,
    identity: &ProvenIdentity,
) -> Result<bool, DbError> {
    let changed = tx.execute(
        "UPDATE enrollments SET given_name = ?2, family_name = ?3, birthdate = ?4,
             national_register_number = ?5, identity_issuer = ?6, evidence_type = ?7,
             evidence_reference = ?8, step = 'sms'
         WHERE id = ?1 AND step = 'identity'",
        params![
            id,
            identity.given_name,
            identity.family_name,
            identity.birthdate,
            identity.national_register_number,
            identity.issuer,
            identity.evidence_type,
            identity.evidence_reference,
        ],
    )?;
    Ok(changed > 0)
}

/// Sets the wrong identification or activation codes typed in enrollment `id` to `failures`.
pub(crate) fn set_code_failures(tx: &Tx<'_>, id: &str, failures: u32) -> Result<(), DbError> {
    tx.execute(
        "UPDATE enrollments SET code_failures = ?2 WHERE id = ?1",
        params![id, failures],
    )?;
    Ok(())
}

/// Ends enrollment `id` (step `failed`) at its last wrong identity code, `failures` in all.
pub(crate) fn fail_on_codes(tx: &Tx<'_>, id: &str, failures: u32) -> Result<(), DbError> {
    tx.execute(
        "UPDATE enrollments SET code_failures = ?2, step = 'failed' WHERE id = ?1",
        params![id, failures],
    )?;
    Ok(())
}

/// The SMS code just sent for an enrollment: its keyed hash (replacing any earlier code's), when
/// it expires, when it was sent, and how many codes were sent in all.
pub(crate) struct SentSmsCode<'a> {
    /// The code's keyed hash.
    pub hash: &'a [u8],
    /// When it expires.
    pub expires_at: i64,
    /// When it was sent.
    pub sent_at: i64,
    /// The codes sent for this enrollment, this one included.
    pub sends: u32,
}

/// Records the SMS code just sent for enrollment `id`.
pub(crate) fn set_sms_code(tx: &Tx<'_>, id: &str, sent: &SentSmsCode<'_>) -> Result<(), DbError> {
    tx.execute(
        "UPDATE enrollments SET sms_code_hash = ?2, sms_expires_at = ?3, sms_sent_at = ?4,
             sms_sends = ?5
         WHERE id = ?1",
        params![id, sent.hash, sent.expires_at, sent.sent_at, sent.sends],
    )?;
    Ok(())
}

/// Sets the wrong SMS codes typed in enrollment `id` to `failures`.
pub(crate) fn set_sms_failures(tx: &Tx<'_>, id: &str, failures: u32) -> Result<(), DbError> {
    tx.execute(
        "UPDATE enrollments SET sms_failures = ?2 WHERE id = ?1",
        params![id, failures],
    )?;
    Ok(())
}

/// Ends enrollment `id` (step `failed`) at its last wrong SMS code, `failures` in all, and erases
/// the code's hash.
pub(crate) fn fail_on_sms(tx: &Tx<'_>, id: &str, failures: u32) -> Result<(), DbError> {
    tx.execute(
        "UPDATE enrollments SET sms_failures = ?2, step = 'failed',
             sms_code_hash = NULL
         WHERE id = ?1",
        params![id, failures],
    )?;
    Ok(())
}

/// Moves enrollment `id` from step `sms` to `keys` once its SMS code was right, erasing the
/// code's hash. Conditional on the step: `false` (nothing written) when the enrollment is no
/// longer at step `sms`, so a code is used once.
pub(crate) fn sms_verified(tx: &Tx<'_>, id: &str) -> Result<bool, DbError> {
    let changed = tx.execute(
        "UPDATE enrollments SET step = 'keys', sms_code_hash = NULL
         WHERE id = ?1 AND step = 'sms'",
        params![id],
    )?;
    Ok(changed > 0)
}

/// Marks enrollment `id` completed for `account_id` and keeps it until at least `repeat_until`
/// (so that the phone can ask again for a lost answer). Conditional on the step: `false`
/// (nothing written) when the enrollment is no longer at step `keys`, so an enrollment
/// completes once.
pub(crate) fn complete(
    tx: &Tx<'_>,
    id: &str,
    account_id: &str,
    repeat_until: i64,
) -> Result<bool, DbError> {
    let changed = tx.execute(
        "UPDATE enrollments SET step = 'done', account_id = ?2,
             expires_at = CASE WHEN expires_at > ?3 THEN expires_at ELSE ?3 END
         WHERE id = ?1 AND step = 'keys'",
        params![id, account_id, repeat_until],
    )?;
    Ok(changed > 0)
}

/// Deletes the enrollments whose lifetime ended before `cutoff`. Returns how many.
pub(crate) fn delete_expired_before(conn: &impl Sql, cutoff: i64) -> Result<usize, DbError> {
    conn.execute(
        "DELETE FROM enrollments WHERE expires_at < ?1",
        params![cutoff],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::accounts;

    const NOW: i64 = 1_000_000;

    fn identity() -> ProvenIdentity {
        ProvenIdentity {
            given_name: "An".into(),
            family_name: "Peeters".into(),
            birthdate: "1985-07-30".into(),
            national_register_number: "85073003328".into(),
            issuer: "bank:kbc".into(),
            evidence_type: "bank_debit_card".into(),
            evidence_reference: "card ending 1234".into(),
        }
    }

    /// A store with enrollment `e1` at step `identity`, started with the bank KBC.
    fn store_with_enrollment(dir: &tempfile::TempDir) -> Store {
        let db = Store::open_sqlite(&dir.path().join("s.db")).unwrap();
        db.run(|conn| {
            let tx = conn.immediate()?;
            create(
                &tx,
                &NewEnrollment {
                    id: "e1",
                    nonce: "n1",
                    device_jkt: "jkt1",
                    phone_number: "+32470000001",
                    source: IdentitySource::Bank,
                    bank: Some(Bank::Kbc),
                    created_at: NOW,
                    expires_at: NOW + 600,
                    replaces_jkt: Some("old-jkt"),
                },
            )?;
            tx.commit()?;
            Ok(())
        })
        .unwrap();
        db
    }

    /// Runs `step` in one transaction and commits it.
    fn in_tx<T>(db: &Store, step: impl Fn(&Tx<'_>) -> Result<T, DbError>) -> T {
        db.run(|conn| {
            let tx = conn.immediate()?;
            let done = step(&tx)?;
            tx.commit()?;
            Ok(done)
        })
        .unwrap()
    }

    #[test]
    fn a_new_enrollment_reads_back_at_step_identity_without_an_identity() {
        let dir = tempfile::tempdir().unwrap();
        let db = store_with_enrollment(&dir);

        let read = db.run(|conn| Ok(load(conn, "e1")?)).unwrap().unwrap();

        assert_eq!(read.nonce, "n1");
        assert_eq!(read.device_jkt, "jkt1");
        assert_eq!(read.phone_number, "+32470000001");
        assert_eq!(read.source, IdentitySource::Bank);
        assert_eq!(read.bank.as_deref(), Some(Bank::Kbc.id()));
        assert_eq!(read.step, Step::Identity);
        assert_eq!(read.expires_at, NOW + 600);
        assert!(read.identity.is_none());
        assert_eq!(read.replaces_jkt.as_deref(), Some("old-jkt"));
        assert_eq!(
            (read.sms_sends, read.sms_failures, read.code_failures),
            (0, 0, 0)
        );
    }

    #[test]
    fn an_unknown_enrollment_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let db = store_with_enrollment(&dir);

        let read = db.run(|conn| Ok(load(conn, "e2")?)).unwrap();

        assert!(read.is_none());
    }

    #[test]
    fn a_stored_identity_reads_back_and_moves_the_enrollment_to_sms() {
        let dir = tempfile::tempdir().unwrap();
        let db = store_with_enrollment(&dir);

        assert!(in_tx(&db, |tx| store_identity(tx, "e1", &identity())));

        let read = db.run(|conn| Ok(load(conn, "e1")?)).unwrap().unwrap();
        assert_eq!(read.step, Step::Sms);
        let stored = read.identity.unwrap();
        assert_eq!(stored.display_name(), "An Peeters");
        assert_eq!(stored.national_register_number(), "85073003328");
        assert_eq!(stored.evidence_reference, "card ending 1234");
    }

    #[test]
    fn an_enrollment_admits_one_identity() {
        let dir = tempfile::tempdir().unwrap();
        let db = store_with_enrollment(&dir);
        assert!(in_tx(&db, |tx| store_identity(tx, "e1", &identity())));
        let mut other = identity();
        other.national_register_number = "90020199741".into();

        let stored_again = in_tx(&db, |tx| store_identity(tx, "e1", &other));

        assert!(!stored_again);
        let read = db.run(|conn| Ok(load(conn, "e1")?)).unwrap().unwrap();
        assert_eq!(
            read.identity.unwrap().national_register_number(),
            "85073003328"
        );
    }

    #[test]
    fn an_sms_code_verifies_an_enrollment_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = store_with_enrollment(&dir);
        in_tx(&db, |tx| store_identity(tx, "e1", &identity()));
        in_tx(&db, |tx| {
            let sent = SentSmsCode {
                hash: &[7; 32],
                expires_at: NOW + 300,
                sent_at: NOW,
                sends: 1,
            };
            set_sms_code(tx, "e1", &sent)
        });

        let first = in_tx(&db, |tx| sms_verified(tx, "e1"));
        let second = in_tx(&db, |tx| sms_verified(tx, "e1"));

        assert!(first);
        assert!(!second);
        let read = db.run(|conn| Ok(load(conn, "e1")?)).unwrap().unwrap();
        assert_eq!(read.step, Step::Keys);
        assert!(read.sms_code_hash.is_none());
    }

    #[test]
    fn an_sms_code_cannot_verify_an_enrollment_still_at_step_identity() {
        let dir = tempfile::tempdir().unwrap();
        let db = store_with_enrollment(&dir);

        let verified = in_tx(&db, |tx| sms_verified(tx, "e1"));

        assert!(!verified);
        let read = db.run(|conn| Ok(load(conn, "e1")?)).unwrap().unwrap();
        assert_eq!(read.step, Step::Identity);
    }

    #[test]
    fn an_enrollment_completes_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = store_with_enrollment(&dir);
        in_tx(&db, |tx| {
            store_identity(tx, "e1", &identity())?;
            sms_verified(tx, "e1")?;
            accounts::create_account(tx, "a1", &identity(), IdentitySource::Bank, NOW)?;
            accounts::create_account(
                tx,
                "a2",
                &identity_of("90020199741"),
                IdentitySource::Bank,
                NOW,
            )
        });

        let first = in_tx(&db, |tx| complete(tx, "e1", "a1", NOW + 900));
        let second = in_tx(&db, |tx| complete(tx, "e1", "a2", NOW + 900));

        assert!(first);
        assert!(!second);
        let read = db.run(|conn| Ok(load(conn, "e1")?)).unwrap().unwrap();
        assert_eq!(read.step, Step::Done);
        assert_eq!(read.account_id.as_deref(), Some("a1"));
        assert_eq!(read.expires_at, NOW + 900);
    }

    fn identity_of(nrn: &str) -> ProvenIdentity {
        ProvenIdentity {
            national_register_number: nrn.into(),
            ..identity()
        }
    }
}
