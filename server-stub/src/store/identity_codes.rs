//! Identity codes: the eID website's identification codes and the counter's activation codes
//! and links, single-use. Found by their keyed hashes; what a code is worth (bound number, tries
//! left, used, expired) is the `enrollment` module's to decide.

use super::enrollments::ProvenIdentity;
use super::{DbError, OptionalRow, Sql, Tx};
use crate::params;

/// An eID identification code as stored.
pub(crate) struct EidCode {
    /// The row's id.
    pub id: String,
    /// The phone number it was issued for (`None`: any number).
    pub phone_number: Option<String>,
    /// End of its lifetime.
    pub expires_at: i64,
    /// Whether it was used up.
    pub used: bool,
    /// Wrong codes counted against it.
    pub failures: u32,
    /// The identity it proves.
    pub identity: ProvenIdentity,
}

/// The eID identification code whose keyed hash is `code_hash`, used or not, if there is one.
pub(crate) fn find_eid_code(conn: &impl Sql, code_hash: &[u8]) -> Result<Option<EidCode>, DbError> {
    conn.query_row(
        "SELECT id, phone_number, expires_at, used_at IS NOT NULL, failures,
                given_name, family_name, birthdate, national_register_number, issuer,
                evidence_type, evidence_reference
         FROM identity_codes WHERE kind = 'eid' AND code_hash = ?1",
        params![code_hash],
        |row| {
            Ok(EidCode {
                id: row.get(0)?,
                phone_number: row.get(1)?,
                expires_at: row.get(2)?,
                used: row.get(3)?,
                failures: row.get(4)?,
                identity: ProvenIdentity::at(row, 5)?,
            })
        },
    )
    .optional()
}

/// A counter activation code as stored, found by its link.
pub(crate) struct CounterCode {
    /// The row's id.
    pub id: String,
    /// The keyed hash of the code the e-mail's link goes with.
    pub code_hash: Vec<u8>,
    /// End of its lifetime.
    pub expires_at: i64,
    /// Whether it was used up.
    pub used: bool,
    /// Wrong codes counted against it.
    pub failures: u32,
    /// The identity the official checked.
    pub identity: ProvenIdentity,
}

/// The counter activation code whose link token has the keyed hash `link_hash`, used or not,
/// if there is one.
pub(crate) fn find_counter_code_by_link(
    conn: &impl Sql,
    link_hash: &[u8],
) -> Result<Option<CounterCode>, DbError> {
    conn.query_row(
        "SELECT id, code_hash, expires_at, used_at IS NOT NULL, failures,
                given_name, family_name, birthdate, national_register_number, issuer,
                evidence_type, evidence_reference
         FROM identity_codes WHERE kind = 'counter' AND link_hash = ?1",
        params![link_hash],
        |row| {
            Ok(CounterCode {
                id: row.get(0)?,
                code_hash: row.get(1)?,
                expires_at: row.get(2)?,
                used: row.get(3)?,
                failures: row.get(4)?,
                identity: ProvenIdentity::at(row, 5)?,
            })
        },
    )
    .optional()
}

/// Counts one wrong code against the code `id`. An increment in the statement itself, so two
/// wrong codes always count two.
pub(crate) fn count_wrong_code(conn: &impl Sql, id: &str) -> Result<(), DbError> {
    conn.execute(
        "UPDATE identity_codes SET failures = failures + 1 WHERE id = ?1",
        params![id],
    )?;
    Ok(())
}

/// Counts one wrong code against the eID code live (unused, not expired at `now`) for
/// `phone_number`, if there is one.
pub(crate) fn count_wrong_code_for_number(
    tx: &Tx<'_>,
    phone_number: &str,
    now: i64,
) -> Result<(), DbError> {
    tx.execute(
        "UPDATE identity_codes SET failures = failures + 1
         WHERE kind = 'eid' AND phone_number = ?1 AND used_at IS NULL AND expires_at > ?2",
        params![phone_number, now],
    )?;
    Ok(())
}

/// Uses up the code `id` at `now`. Conditional: `false` (nothing written) when it was used
/// already, so a code proves an identity once.
pub(crate) fn use_up(conn: &impl Sql, id: &str, now: i64) -> Result<bool, DbError> {
    let changed = conn.execute(
        "UPDATE identity_codes SET used_at = ?2 WHERE id = ?1 AND used_at IS NULL",
        params![id, now],
    )?;
    Ok(changed > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    const NOW: i64 = 1_000_000;

    /// A store with one live eID code `c1` for `+32470000001`, hash `[1; 32]`.
    fn store_with_code(dir: &tempfile::TempDir) -> Store {
        let db = Store::open_sqlite(&dir.path().join("s.db")).unwrap();
        db.run(|conn| {
            conn.execute(
                "INSERT INTO identity_codes (id, kind, code_hash, phone_number, email, given_name,
                     family_name, birthdate, national_register_number, issuer, evidence_type,
                     evidence_reference, created_at, expires_at)
                 VALUES ('c1', 'eid', ?1, '+32470000001', 'an@example.be', 'An', 'Peeters',
                     '1985-07-30', '85073003328', 'eid', 'eid_card', 'card 590-1234567-89', ?2, ?3)",
                params![[1u8; 32], NOW, NOW + 600],
            )?;
            Ok(())
        })
        .unwrap();
        db
    }

    fn find(db: &Store) -> EidCode {
        db.run(|conn| Ok(find_eid_code(conn, &[1; 32])?))
            .unwrap()
            .unwrap()
    }

    #[test]
    fn an_eid_code_is_found_by_its_hash_with_its_identity() {
        let dir = tempfile::tempdir().unwrap();
        let db = store_with_code(&dir);

        let code = find(&db);

        assert_eq!(code.id, "c1");
        assert_eq!(code.phone_number.as_deref(), Some("+32470000001"));
        assert_eq!(code.expires_at, NOW + 600);
        assert!(!code.used);
        assert_eq!(code.failures, 0);
        assert_eq!(code.identity.national_register_number(), "85073003328");
        assert_eq!(code.identity.evidence_type, "eid_card");
    }

    #[test]
    fn a_code_is_used_up_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = store_with_code(&dir);

        let first = db.run(|conn| Ok(use_up(conn, "c1", NOW)?)).unwrap();
        let second = db.run(|conn| Ok(use_up(conn, "c1", NOW + 1)?)).unwrap();

        assert!(first);
        assert!(!second);
        assert!(find(&db).used);
    }

    #[test]
    fn a_wrong_code_for_a_number_counts_on_its_live_code_only() {
        let dir = tempfile::tempdir().unwrap();
        let db = store_with_code(&dir);

        db.run(|conn| {
            let tx = conn.immediate()?;
            count_wrong_code_for_number(&tx, "+32470000001", NOW)?;
            count_wrong_code_for_number(&tx, "+32470000002", NOW)?;
            count_wrong_code_for_number(&tx, "+32470000001", NOW + 600)?;
            tx.commit()?;
            Ok(())
        })
        .unwrap();

        assert_eq!(find(&db).failures, 1);
    }
}

// --- Issued by the simulators (the eID website, the counter) and used by the block page --------
//
// Paths are written out in full here, so that this part needs no `use` of its own at the top
// of the file, where the enrollment side keeps its imports.

/// An identification or activation code a simulator issues, with the identity it proves.
pub(crate) struct IssuedBySimulator<'a> {
    /// The row's id.
    pub(crate) id: &'a str,
    /// The code's keyed hash.
    pub(crate) code_hash: &'a [u8],
    /// The person's e-mail address.
    pub(crate) email: &'a str,
    /// The identity the code proves.
    pub(crate) person: &'a crate::store::outboxes::CitizenIdentity,
    /// Who vouches for the identity.
    pub(crate) issuer: &'a str,
    /// What was checked.
    pub(crate) evidence_type: &'a str,
    /// Which document was checked.
    pub(crate) evidence_reference: &'a str,
    /// When it was issued (Unix seconds).
    pub(crate) created_at: i64,
    /// When it stops working (Unix seconds).
    pub(crate) expires_at: i64,
}

/// Stores a counter activation code, found later by the keyed hash of its link's token,
/// `link_hash`.
pub(crate) fn issue_counter_code(
    tx: &crate::store::Tx<'_>,
    code: &IssuedBySimulator<'_>,
    link_hash: &[u8],
) -> Result<(), crate::store::DbError> {
    use crate::store::Sql;
    tx.execute(
        "INSERT INTO identity_codes (id, kind, code_hash, link_hash, phone_number, email,
             given_name, family_name, birthdate, national_register_number, issuer,
             evidence_type, evidence_reference, created_at, expires_at)
         VALUES (?1, 'counter', ?2, ?13, NULL, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,
             ?12)",
        crate::params![
            code.id,
            code.code_hash,
            code.email,
            code.person.given_name,
            code.person.family_name,
            code.person.birthdate,
            code.person.national_register_number,
            code.issuer,
            code.evidence_type,
            code.evidence_reference,
            code.created_at,
            code.expires_at,
            link_hash
        ],
    )?;
    Ok(())
}

/// Marks every live eID identification code of `phone_number` used, so that a new one replaces
/// them.
pub(crate) fn retire_eid_codes_of_number(
    tx: &crate::store::Tx<'_>,
    phone_number: &str,
    now: i64,
) -> Result<(), crate::store::DbError> {
    use crate::store::Sql;
    tx.execute(
        "UPDATE identity_codes SET used_at = ?2
         WHERE kind = 'eid' AND phone_number = ?1 AND used_at IS NULL",
        crate::params![phone_number, now],
    )?;
    Ok(())
}

/// Stores an eID identification code, bound to `phone_number`.
pub(crate) fn issue_eid_code(
    tx: &crate::store::Tx<'_>,
    code: &IssuedBySimulator<'_>,
    phone_number: &str,
) -> Result<(), crate::store::DbError> {
    use crate::store::Sql;
    tx.execute(
        "INSERT INTO identity_codes (id, kind, code_hash, phone_number, email, given_name,
             family_name, birthdate, national_register_number, issuer, evidence_type,
             evidence_reference, created_at, expires_at)
         VALUES (?1, 'eid', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        crate::params![
            code.id,
            code.code_hash,
            phone_number,
            code.email,
            code.person.given_name,
            code.person.family_name,
            code.person.birthdate,
            code.person.national_register_number,
            code.issuer,
            code.evidence_type,
            code.evidence_reference,
            code.created_at,
            code.expires_at
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod simulator_tests {
    use super::*;
    use crate::store::Store;
    use crate::store::outboxes::CitizenIdentity;

    #[test]
    fn the_block_page_uses_a_counter_code_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("s.db")).unwrap();
        let uses = store
            .run(|conn| {
                let tx = conn.immediate()?;
                let person = CitizenIdentity {
                    given_name: "An".into(),
                    family_name: "Peeters".into(),
                    birthdate: "1985-07-30".into(),
                    national_register_number: "85073003328".into(),
                };
                issue_counter_code(
                    &tx,
                    &IssuedBySimulator {
                        id: "code",
                        code_hash: b"code-hash",
                        email: "an@example.be",
                        person: &person,
                        issuer: "counter",
                        evidence_type: "counter_identity_check",
                        evidence_reference: "document X",
                        created_at: 0,
                        expires_at: 1000,
                    },
                    b"link-hash",
                )?;
                let first = use_up(&tx, "code", 10)?;
                let second = use_up(&tx, "code", 20)?;
                tx.commit()?;
                Ok([first, second])
            })
            .unwrap();

        assert_eq!(uses, [true, false]);
    }
}
