//! Identity codes: the eID website's identification codes and the counter's activation codes
//! and links, single-use.

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

/// Marks the counter code `code_id` used by the block page, if it was not used yet; `false`
/// (nothing written) when it was.
pub(crate) fn use_counter_code_on_block_page(
    tx: &impl crate::store::Sql,
    code_id: &str,
    now: i64,
) -> Result<bool, crate::store::DbError> {
    let used = tx.execute(
        "UPDATE identity_codes SET used_at = ?2 WHERE id = ?1 AND used_at IS NULL",
        crate::params![code_id, now],
    )?;
    Ok(used > 0)
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
                let first = use_counter_code_on_block_page(&tx, "code", 10)?;
                let second = use_counter_code_on_block_page(&tx, "code", 20)?;
                tx.commit()?;
                Ok([first, second])
            })
            .unwrap();

        assert_eq!(uses, [true, false]);
    }
}
