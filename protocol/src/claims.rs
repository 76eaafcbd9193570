//! The identity claims a relying party can ask for, and what the person consents to share.
//!
//! A request names claims as required (refusing one declines the request) or optional (the
//! person may leave each out). The ID token carries only claims that were asked for, that the
//! relying party is registered for, and that the person consented to.

/// Full name ("An Peeters").
pub const NAME: &str = "name";
/// Given name.
pub const GIVEN_NAME: &str = "given_name";
/// Family name.
pub const FAMILY_NAME: &str = "family_name";
/// Date of birth, `YYYY-MM-DD`.
pub const BIRTHDATE: &str = "birthdate";
/// The Belgian national register number (11 digits).
pub const NATIONAL_REGISTER_NUMBER: &str = "national_register_number";
/// The phone number verified by SMS at activation, E.164.
pub const PHONE_NUMBER: &str = "phone_number";
/// Whether the person is 18 or older, without the date of birth: data minimisation for a
/// service that only needs to know the person is an adult.
pub const AGE_OVER_18: &str = "age_over_18";

/// Every claim this protocol knows, in the order a consent screen lists them.
pub const ALL: [&str; 7] = [
    NAME,
    GIVEN_NAME,
    FAMILY_NAME,
    BIRTHDATE,
    NATIONAL_REGISTER_NUMBER,
    PHONE_NUMBER,
    AGE_OVER_18,
];

/// Whether `claim` is one this protocol knows.
pub fn is_known(claim: &str) -> bool {
    ALL.contains(&claim)
}
