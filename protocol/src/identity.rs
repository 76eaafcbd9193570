//! Identity tokens: what a bank (and later the eID website or the counter) vouches for.
//!
//! A token is an ES256 compact JWS signed by a key the server lists as trusted, bound to one
//! enrollment by its id and the server's nonce, valid for minutes, with the person's identity.

use serde::{Deserialize, Serialize};

use crate::jose::{self, UnverifiedJws};
use crate::limits::{CLOCK_SKEW_SECS, MAX_IDENTITY_TOKEN_LIFETIME_SECS, MAX_NAME_CHARS};
use crate::{ProtocolError, Result, display};

/// The `typ` of an identity token.
pub const IDENTITY_TYP: &str = "sleutel-identity+jwt";

/// The audience every identity token must name: the Sleutel server.
pub const IDENTITY_AUDIENCE: &str = "sleutel";

/// The banks whose app can prove an identity (the list on the Belgian digital-key pages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum Bank {
    /// Belfius.
    Belfius,
    /// BNP Paribas Fortis.
    BnpParibasFortis,
    /// CBC.
    Cbc,
    /// Fintro.
    Fintro,
    /// Hello Bank!.
    HelloBank,
    /// ING.
    Ing,
    /// KBC.
    Kbc,
    /// KBC Brussels.
    KbcBrussels,
}

impl Bank {
    /// Every bank, in the order the app lists them.
    pub const ALL: [Bank; 8] = [
        Bank::Belfius,
        Bank::BnpParibasFortis,
        Bank::Cbc,
        Bank::Fintro,
        Bank::HelloBank,
        Bank::Ing,
        Bank::Kbc,
        Bank::KbcBrussels,
    ];

    /// The identifier used in URLs and JSON (`kbc`, `bnp-paribas-fortis`, ...).
    pub fn id(self) -> &'static str {
        match self {
            Bank::Belfius => "belfius",
            Bank::BnpParibasFortis => "bnp-paribas-fortis",
            Bank::Cbc => "cbc",
            Bank::Fintro => "fintro",
            Bank::HelloBank => "hello-bank",
            Bank::Ing => "ing",
            Bank::Kbc => "kbc",
            Bank::KbcBrussels => "kbc-brussels",
        }
    }

    /// The name to show.
    pub fn display_name(self) -> &'static str {
        match self {
            Bank::Belfius => "Belfius",
            Bank::BnpParibasFortis => "BNP Paribas Fortis",
            Bank::Cbc => "CBC",
            Bank::Fintro => "Fintro",
            Bank::HelloBank => "Hello Bank!",
            Bank::Ing => "ING",
            Bank::Kbc => "KBC",
            Bank::KbcBrussels => "KBC Brussels",
        }
    }

    /// The bank with this identifier.
    pub fn from_id(id: &str) -> Result<Bank> {
        Bank::ALL
            .into_iter()
            .find(|b| b.id() == id)
            .ok_or_else(|| ProtocolError::invalid("bank", format!("unknown bank {id:?}")))
    }

    /// The issuer name in this bank's identity tokens.
    pub fn issuer(self) -> String {
        format!("bank:{}", self.id())
    }
}

/// Where an identity was proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum IdentitySource {
    /// Bank card through the bank's app.
    Bank,
    /// eID card through the government website.
    Eid,
    /// Activation code from the town-hall counter.
    Counter,
}

/// What the issuer checked, recorded with the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// Kind of evidence (`bank_debit_card`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// A non-secret reference to it (the last four digits of a card, a card serial, ...).
    pub reference: String,
}

/// The claims of an identity token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityClaims {
    /// Who vouches (`bank:kbc`).
    pub iss: String,
    /// Always [`IDENTITY_AUDIENCE`].
    pub aud: String,
    /// The enrollment this identity is for.
    pub enrollment_id: String,
    /// The server's nonce for that enrollment.
    pub nonce: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// The source kind.
    pub source: IdentitySource,
    /// What was checked.
    pub evidence: Evidence,
    /// Given name(s).
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Birth date, `YYYY-MM-DD`.
    pub birthdate: String,
    /// Belgian national register number, 11 digits.
    pub national_register_number: String,
}

impl IdentityClaims {
    /// Checks everything that does not need a key: binding, lifetime, names, birth date and
    /// national register number.
    pub fn validate(&self, enrollment_id: &str, nonce: &str, now: i64) -> Result<()> {
        if self.aud != IDENTITY_AUDIENCE {
            return Err(ProtocolError::mismatch("identity.aud", self.aud.clone()));
        }
        if self.enrollment_id != enrollment_id {
            return Err(ProtocolError::mismatch(
                "identity.enrollment_id",
                "other enrollment",
            ));
        }
        // Constant time is not needed: the nonce is not a secret once the bank has it.
        if self.nonce != nonce {
            return Err(ProtocolError::mismatch("identity.nonce", "other nonce"));
        }
        if self.exp <= now {
            return Err(ProtocolError::Expired("identity token"));
        }
        if self.iat > now + CLOCK_SKEW_SECS {
            return Err(ProtocolError::NotYetValid("identity token"));
        }
        // Both times come from the token: their difference can exceed an i64, which is a
        // lifetime too long, not an overflow.
        if self.exp <= self.iat
            || self
                .exp
                .checked_sub(self.iat)
                .is_none_or(|lifetime| lifetime > MAX_IDENTITY_TOKEN_LIFETIME_SECS)
        {
            return Err(ProtocolError::invalid("identity.exp", "lifetime too long"));
        }
        for (field, value) in [
            ("given_name", &self.given_name),
            ("family_name", &self.family_name),
        ] {
            if let Err(why) = display::check_showable(value, MAX_NAME_CHARS) {
                return Err(ProtocolError::invalid(field, why.to_string()));
            }
        }
        let birth = Date::parse(&self.birthdate)?;
        check_national_register_number(&self.national_register_number, birth)?;
        Ok(())
    }

    /// The person's age in whole years on the day `now` falls on (UTC).
    pub fn age_at(&self, now: i64) -> Result<u32> {
        Ok(Date::parse(&self.birthdate)?.age_on(Date::from_unix(now)))
    }
}

/// The characters of identification codes (eID website) and activation codes (counter): capital
/// letters and digits without the look-alikes a person misreads on paper or a screen (0/O, 1/I/L,
/// 2/Z, 5/S, 8/B).
pub const IDENTITY_CODE_ALPHABET: &str = "34679ACDEFGHJKMNPQRTUVWXY";

/// Characters of an identification code from the eID website: 25^8 (about 2^37) values, enough
/// for a code that is bound to one phone number, lives minutes and allows a few wrong tries.
pub const IDENTIFICATION_CODE_LENGTH: usize = 8;

/// Characters of an activation code from the counter: 25^12 (about 2^55) values, since it is
/// valid for days and not bound to a phone number.
pub const ACTIVATION_CODE_LENGTH: usize = 12;

/// Random bytes of the token in the counter's activation link: 256 bits from the OS generator.
/// The link is the factor the e-mail carries; it must be unguessable on its own, since the server
/// finds the activation code's row by it (a keyed hash) before it looks at the code typed.
pub const ACTIVATION_TOKEN_BYTES: usize = 32;

/// Characters of the activation link's token: base64url of [`ACTIVATION_TOKEN_BYTES`] without
/// padding.
pub const ACTIVATION_TOKEN_CHARS: usize = (ACTIVATION_TOKEN_BYTES * 8).div_ceil(6);

/// Whether `token` has the shape of an activation link's token: exactly
/// [`ACTIVATION_TOKEN_CHARS`] base64url characters.
pub fn is_activation_token(token: &str) -> bool {
    token.len() == ACTIVATION_TOKEN_CHARS
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Characters per group when a code is shown (`ACDE-FGHJ`): easier to copy by hand.
pub const IDENTITY_CODE_GROUP: usize = 4;

/// Brings a code as a person typed it to its canonical form: spaces and dashes dropped, letters
/// in capitals. Refuses a code of another length or with a character outside
/// [`IDENTITY_CODE_ALPHABET`] (a look-alike such as `O` or `1` is refused, not guessed at: the
/// person should look again).
pub fn normalize_identity_code(text: &str, length: usize) -> Result<String> {
    let code: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if code.chars().count() != length {
        return Err(ProtocolError::invalid(
            "code",
            format!("the code has {length} characters"),
        ));
    }
    if !code.chars().all(|c| IDENTITY_CODE_ALPHABET.contains(c)) {
        return Err(ProtocolError::invalid(
            "code",
            "the code contains a character that codes never use",
        ));
    }
    Ok(code)
}

/// A canonical code grouped for display: `ACDEFGHJ` -> `ACDE-FGHJ`.
pub fn format_identity_code(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    chars
        .chunks(IDENTITY_CODE_GROUP)
        .map(|group| group.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// The issuer and key id of a parsed, not yet verified identity token: they say which key to
/// verify it with. Parse the token once and verify the same [`UnverifiedJws`] afterwards.
pub fn peek_issuer(jws: &UnverifiedJws) -> Result<(String, Option<String>)> {
    #[derive(Deserialize)]
    struct Iss {
        iss: String,
    }
    let iss: Iss = jose::parse_claims(jws.unverified_payload(), "identity token")?;
    Ok((iss.iss, jws.header.kid.clone()))
}

/// A calendar date (proleptic Gregorian, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    /// Year.
    pub year: i32,
    /// Month 1-12.
    pub month: u32,
    /// Day 1-31.
    pub day: u32,
}

impl Date {
    /// Parses `YYYY-MM-DD` and checks the day exists.
    pub fn parse(text: &str) -> Result<Date> {
        let bad = || ProtocolError::invalid("birthdate", format!("{text:?} is not YYYY-MM-DD"));
        let b = text.as_bytes();
        // Digits everywhere but the two dashes: `u32::from_str` alone would take "+9".
        let shape_ok = b.len() == 10
            && b.iter().enumerate().all(|(i, &c)| match i {
                4 | 7 => c == b'-',
                _ => c.is_ascii_digit(),
            });
        if !shape_ok {
            return Err(bad());
        }
        let num = |s: &str| s.parse::<u32>().map_err(|_| bad());
        let (year, month, day) = (num(&text[..4])?, num(&text[5..7])?, num(&text[8..])?);
        let date = Date {
            year: year as i32,
            month,
            day,
        };
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(date.year, month) {
            return Err(bad());
        }
        Ok(date)
    }

    /// The UTC date of a Unix time.
    pub fn from_unix(secs: i64) -> Date {
        // Days-to-civil conversion (Howard Hinnant's algorithm, public domain).
        let z = secs.div_euclid(86_400) + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Date { year, month, day }
    }

    /// Whole years from `self` to `today`.
    pub fn age_on(self, today: Date) -> u32 {
        let mut years = today.year - self.year;
        if (today.month, today.day) < (self.month, self.day) {
            years -= 1;
        }
        years.max(0) as u32
    }

    /// `YYYY-MM-DD`.
    pub fn to_iso(self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Checks a Belgian national register number: 11 digits `YYMMDD SSS CC`, where the first six
/// digits are the birth date and `CC = 97 - (first nine digits mod 97)`; for people born in 2000
/// or later the nine digits are prefixed with `2` before the division. Bis numbers (people not in
/// the national register) carry the birth month plus 20 or plus 40 and are accepted alike.
pub fn check_national_register_number(nrn: &str, birth: Date) -> Result<()> {
    if nrn.len() != 11 || !nrn.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ProtocolError::invalid(
            "national_register_number",
            "must be 11 digits",
        ));
    }
    let matches_birth = [0, 20, 40].iter().any(|bis_offset| {
        nrn[..6]
            == format!(
                "{:02}{:02}{:02}",
                birth.year % 100,
                birth.month + bis_offset,
                birth.day
            )
    });
    if !matches_birth {
        return Err(ProtocolError::invalid(
            "national_register_number",
            "does not match the birth date",
        ));
    }
    let check: u64 = nrn[9..].parse().unwrap_or(u64::MAX);
    if check != national_register_check(&nrn[..9], birth.year) {
        return Err(ProtocolError::invalid(
            "national_register_number",
            "check digits wrong",
        ));
    }
    Ok(())
}

/// The two check digits for the first nine digits of a national register number.
pub fn national_register_check(first_nine: &str, birth_year: i32) -> u64 {
    let base: u64 = first_nine.parse().unwrap_or(0);
    let base = if birth_year >= 2000 {
        2_000_000_000 + base
    } else {
        base
    };
    97 - base % 97
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::display::Unshowable;

    #[test]
    fn national_register_numbers_before_and_after_2000() {
        let d = Date::parse("1985-07-14").unwrap();
        let check = national_register_check("850714123", 1985);
        let nrn = format!("850714123{check:02}");
        assert!(check_national_register_number(&nrn, d).is_ok());
        let wrong = format!("850714123{:02}", (check + 1) % 100);
        assert!(check_national_register_number(&wrong, d).is_err());

        let d2 = Date::parse("2003-01-31").unwrap();
        let check2 = national_register_check("030131045", 2003);
        assert!(check_national_register_number(&format!("030131045{check2:02}"), d2).is_ok());
        // The pre-2000 rule gives another check for the same digits.
        let old_rule = national_register_check("030131045", 1903);
        assert_ne!(old_rule, check2);
        assert!(check_national_register_number(&format!("030131045{old_rule:02}"), d2).is_err());
    }

    #[test]
    fn bis_numbers_carry_the_month_plus_20_or_40() {
        let d = Date::parse("1990-03-05").unwrap();
        for month in ["23", "43"] {
            let nine = format!("90{month}05123");
            let nrn = format!("{nine}{:02}", national_register_check(&nine, 1990));
            assert!(check_national_register_number(&nrn, d).is_ok(), "{nrn}");
        }
        let nine = "901305123";
        let nrn = format!("{nine}{:02}", national_register_check(nine, 1990));
        assert!(check_national_register_number(&nrn, d).is_err());
    }

    #[test]
    fn identity_codes_are_normalised_and_look_alikes_refused() {
        assert_eq!(
            normalize_identity_code(" acde-fghj ", IDENTIFICATION_CODE_LENGTH),
            Ok("ACDEFGHJ".into())
        );
        for bad in [
            "ACDEFGH",
            "ACDEFGHJK",
            "ACDEFGH0",
            "ACDEFGHO",
            "ACDEFGH1",
            "ACDEFGHI",
        ] {
            assert!(
                normalize_identity_code(bad, IDENTIFICATION_CODE_LENGTH).is_err(),
                "{bad}"
            );
        }
        assert_eq!(format_identity_code("ACDEFGHJKMNP"), "ACDE-FGHJ-KMNP");
    }

    #[test]
    fn dates_parse_and_ages_count_whole_years() {
        assert!(Date::parse("2001-02-29").is_err());
        assert!(Date::parse("2000-02-29").is_ok());
        assert!(Date::parse("85-07-14").is_err());
        assert!(Date::parse("+985-07-14").is_err());
        assert!(Date::parse("2000-+2-29").is_err());
        assert!(Date::parse("2000-02-+9").is_err());
        assert!(Date::parse("2000/02/29").is_err());
        assert_eq!(
            Date::from_unix(0),
            Date {
                year: 1970,
                month: 1,
                day: 1
            }
        );
        assert_eq!(Date::from_unix(951_782_400).to_iso(), "2000-02-29");
        let birth = Date::parse("2008-11-23").unwrap();
        assert_eq!(birth.age_on(Date::parse("2026-11-22").unwrap()), 17);
        assert_eq!(birth.age_on(Date::parse("2026-11-23").unwrap()), 18);
    }

    const NOW: i64 = 1_800_000_000;

    fn valid_claims() -> IdentityClaims {
        let nrn = format!("850714123{:02}", national_register_check("850714123", 1985));
        IdentityClaims {
            iss: Bank::Kbc.issuer(),
            aud: IDENTITY_AUDIENCE.into(),
            enrollment_id: "enr".into(),
            nonce: "non".into(),
            iat: NOW,
            exp: NOW + 300,
            source: IdentitySource::Bank,
            evidence: Evidence {
                kind: "bank_debit_card".into(),
                reference: "•••• 1234".into(),
            },
            given_name: "Jan".into(),
            family_name: "Peeters".into(),
            birthdate: "1985-07-14".into(),
            national_register_number: nrn,
        }
    }

    #[test]
    fn a_lifetime_too_large_for_an_i64_is_refused_not_overflowed() {
        // `exp - iat` overflowed here (a panic in debug builds) for an `iat` far in the past;
        // fuzz/seeds/identity_token keeps such a token.
        let mut claims = valid_claims();
        for iat in [i64::MIN, -1] {
            (claims.iat, claims.exp) = (iat, i64::MAX);
            assert_eq!(
                claims.validate("enr", "non", NOW),
                Err(ProtocolError::invalid("identity.exp", "lifetime too long"))
            );
        }
    }

    #[test]
    fn validate_refuses_each_broken_claim_with_its_own_error() {
        assert_eq!(valid_claims().validate("enr", "non", NOW), Ok(()));
        let unshowable = |field, why: Unshowable| ProtocolError::invalid(field, why.to_string());
        type Breakage = fn(&mut IdentityClaims);
        let cases: [(&str, Breakage, ProtocolError); 13] = [
            (
                "other enrollment",
                |c| c.enrollment_id = "other".into(),
                ProtocolError::mismatch("identity.enrollment_id", "other enrollment"),
            ),
            (
                "other nonce",
                |c| c.nonce = "other".into(),
                ProtocolError::mismatch("identity.nonce", "other nonce"),
            ),
            (
                "other audience",
                |c| c.aud = "someone-else".into(),
                ProtocolError::mismatch("identity.aud", "someone-else"),
            ),
            (
                "expired",
                |c| (c.iat, c.exp) = (NOW - 600, NOW),
                ProtocolError::Expired("identity token"),
            ),
            (
                "issued in the future",
                |c| (c.iat, c.exp) = (NOW + CLOCK_SKEW_SECS + 1, NOW + CLOCK_SKEW_SECS + 300),
                ProtocolError::NotYetValid("identity token"),
            ),
            (
                "lifetime over ten minutes",
                |c| c.exp = NOW + MAX_IDENTITY_TOKEN_LIFETIME_SECS + 1,
                ProtocolError::invalid("identity.exp", "lifetime too long"),
            ),
            (
                "empty name",
                |c| c.given_name = "  ".into(),
                unshowable("given_name", Unshowable::Blank),
            ),
            (
                "too long name",
                |c| c.given_name = "J".repeat(MAX_NAME_CHARS + 1),
                unshowable(
                    "given_name",
                    Unshowable::TooLong {
                        max: MAX_NAME_CHARS,
                    },
                ),
            ),
            (
                "unprintable name",
                |c| c.given_name = "Ja\u{202E}n".into(),
                unshowable("given_name", Unshowable::ForbiddenChar),
            ),
            (
                "unprintable family name",
                |c| c.family_name = "Pee\u{200B}ters".into(),
                unshowable("family_name", Unshowable::ForbiddenChar),
            ),
            (
                "blank-looking name",
                |c| c.given_name = "\u{2800}".into(),
                unshowable("given_name", Unshowable::ForbiddenChar),
            ),
            (
                "name mixing Latin and Cyrillic",
                |c| c.family_name = "P\u{0435}eters".into(),
                unshowable("family_name", Unshowable::MixedScripts),
            ),
            (
                "birth date with a sign",
                |c| c.birthdate = "+985-07-14".into(),
                ProtocolError::invalid("birthdate", "\"+985-07-14\" is not YYYY-MM-DD"),
            ),
        ];
        for (what, breakage, expected) in cases {
            let mut claims = valid_claims();
            breakage(&mut claims);
            assert_eq!(claims.validate("enr", "non", NOW), Err(expected), "{what}");
        }
    }

    #[test]
    fn the_issuer_is_read_from_the_parsed_token() {
        let claims = serde_json::to_vec(&valid_claims()).unwrap();
        let key = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
        let header = jose::Header::es256(IDENTITY_TYP).with_kid("k1".to_owned());
        let token = jose::sign_compact(&header, &claims, &key).unwrap();
        let jws = UnverifiedJws::parse(&token, "identity token").unwrap();

        assert_eq!(
            peek_issuer(&jws).unwrap(),
            ("bank:kbc".to_owned(), Some("k1".to_owned()))
        );
    }

    #[test]
    fn banks_round_trip_their_ids() {
        for bank in Bank::ALL {
            assert_eq!(Bank::from_id(bank.id()).unwrap(), bank);
        }
        assert!(Bank::from_id("visa").is_err());
    }
}
