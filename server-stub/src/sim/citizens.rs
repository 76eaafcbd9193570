//! Simulated citizens: a made-up Flemish name, an adult birth date, a valid national register
//! number, and two cards at one bank (a debit card that can prove an identity, and a credit card
//! that cannot), and an eID card; each card has a random 4-digit PIN stored only as a salted hash.

use crate::store::outboxes::{self, CardKind, NewCard, NewEidCard};
use crate::store::{Sql, Tx};
use axum::Json;
use axum::extract::State;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use sleutel_protocol::api::sim::{Card, Citizen, EidCard, NewCitizen};
use sleutel_protocol::display;
use sleutel_protocol::identity::{self, Bank, Date};
use sleutel_protocol::limits::MAX_NAME_CHARS;

use crate::error::{Result, ServerError};
use crate::extract::{self, RawBody};
use crate::server::AppState;
use crate::{clock, random};

/// Digits of a card PIN.
pub(crate) const CARD_PIN_DIGITS: usize = 4;

/// Digits of a card number (with the Luhn check digit).
pub(crate) const CARD_NUMBER_DIGITS: usize = 16;

/// Bancontact/Maestro debit cards of Belgian banks start with 6703.
pub(crate) const DEBIT_CARD_PREFIX: &str = "6703";

/// VISA credit cards start with 4.
pub(crate) const CREDIT_CARD_PREFIX: &str = "4";

/// Digits of an eID card serial (the card number printed on a Belgian eID).
pub(crate) const EID_SERIAL_DIGITS: usize = 12;

/// Years an eID card is valid when the citizen's card is made up (a Belgian eID: 10 years).
pub(crate) const EID_VALIDITY_YEARS: i32 = 10;

/// Bytes of salt per card PIN hash.
const PIN_SALT_BYTES: usize = 16;

/// Random national register serials or card numbers can collide; this many fresh draws are
/// tried before giving up.
const MAX_INSERT_TRIES: usize = 5;

/// Birth years of made-up citizens: adults of every age, nobody under 18 by default.
const BIRTH_YEARS: std::ops::RangeInclusive<u32> = 1950..=2000;

const GIVEN_NAMES: [&str; 20] = [
    "Jan", "Els", "Pieter", "An", "Luc", "Sofie", "Wim", "Griet", "Bart", "Lotte", "Koen", "Ine",
    "Tom", "Katrien", "Joris", "Marie", "Stijn", "Hanne", "Dirk", "Eline",
];

const FAMILY_NAMES: [&str; 20] = [
    "Peeters",
    "Janssens",
    "Maes",
    "Jacobs",
    "Mertens",
    "Willems",
    "Claes",
    "Goossens",
    "Wouters",
    "De Smet",
    "Dubois",
    "Vermeulen",
    "Van den Broeck",
    "De Backer",
    "Lambrechts",
    "Hermans",
    "Aerts",
    "Pauwels",
    "Van Damme",
    "Verstraete",
];

/// `POST /sim/citizens`: creates a citizen; missing fields are made up. The answer carries the
/// card PINs once: the simulated person needs them, the server keeps only hashes.
pub(crate) async fn create(
    State(state): State<AppState>,
    RawBody(body): RawBody,
) -> Result<Json<Citizen>> {
    let new: NewCitizen = if body.iter().all(u8::is_ascii_whitespace) {
        NewCitizen::default()
    } else {
        extract::json(&body)?
    };
    let given_name = name_or_made_up("given_name", new.given_name, &GIVEN_NAMES)?;
    let family_name = name_or_made_up("family_name", new.family_name, &FAMILY_NAMES)?;
    let birth = match new.birthdate {
        Some(text) => {
            let date =
                Date::parse(&text).map_err(|e| ServerError::InvalidRequest(e.to_string()))?;
            if date.year < 1900 || date > Date::from_unix(clock::now()) {
                return Err(ServerError::InvalidRequest(
                    "birthdate must be between 1900 and today".into(),
                ));
            }
            date
        }
        None => random_birth_date()?,
    };
    let bank = new.bank.unwrap_or(Bank::Kbc);
    let valid_until = match new.eid_valid_until {
        Some(text) => Date::parse(&text).map_err(|e| ServerError::InvalidRequest(e.to_string()))?,
        None => {
            let today = Date::from_unix(clock::now());
            Date {
                year: today.year + EID_VALIDITY_YEARS,
                // Day 1-28 exists in every month, so the date is valid in any year.
                day: today.day.min(28),
                ..today
            }
        }
    };
    let citizen = state
        .db(move |_, conn| {
            for _ in 0..MAX_INSERT_TRIES {
                let tx = conn.immediate()?;
                let citizen = made_up_citizen(&given_name, &family_name, birth, bank, valid_until)?;
                match insert(&tx, &citizen) {
                    Ok(()) => {
                        tx.commit()?;
                        return Ok(citizen);
                    }
                    // A colliding number: roll back and draw again.
                    Err(ServerError::Database(e)) if e.is_unique_violation() => {}
                    Err(e) => return Err(e),
                }
            }
            Err(ServerError::Internal(
                "could not draw a unique national register or card number".into(),
            ))
        })
        .await?;
    Ok(Json(citizen))
}

fn name_or_made_up(field: &str, given: Option<String>, choices: &[&str]) -> Result<String> {
    match given {
        Some(name) => {
            let name = name.trim().to_owned();
            display::check_showable(&name, MAX_NAME_CHARS).map_err(|why| {
                ServerError::InvalidRequest(format!("{field} cannot be shown: {why}"))
            })?;
            Ok(name)
        }
        None => {
            let index = random::below(u32::try_from(choices.len()).unwrap_or(1))? as usize;
            Ok(choices.get(index).copied().unwrap_or("Jan").to_owned())
        }
    }
}

fn random_birth_date() -> Result<Date> {
    let span = BIRTH_YEARS.end() - BIRTH_YEARS.start() + 1;
    Ok(Date {
        year: i32::try_from(BIRTH_YEARS.start() + random::below(span)?).unwrap_or(1985),
        month: 1 + random::below(12)?,
        // Day 1-28 exists in every month.
        day: 1 + random::below(28)?,
    })
}

/// A national register number for `birth`: `YYMMDD`, a serial 001-997, and the mod-97 check.
fn national_register_number(birth: Date) -> Result<String> {
    let serial = 1 + random::below(997)?;
    let first_nine = format!(
        "{:02}{:02}{:02}{serial:03}",
        birth.year.rem_euclid(100),
        birth.month,
        birth.day
    );
    let check = identity::national_register_check(&first_nine, birth.year);
    Ok(format!("{first_nine}{check:02}"))
}

/// The Luhn check digit for `digits` (ISO/IEC 7812).
fn luhn_check_digit(digits: &str) -> u32 {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

fn card_number(prefix: &str) -> Result<String> {
    let body = format!(
        "{prefix}{}",
        random::digits(CARD_NUMBER_DIGITS - 1 - prefix.len())?
    );
    Ok(format!("{body}{}", luhn_check_digit(&body)))
}

fn made_up_citizen(
    given_name: &str,
    family_name: &str,
    birth: Date,
    bank: Bank,
    eid_valid_until: Date,
) -> Result<Citizen> {
    let card = |prefix: &str, kind: CardKind| -> Result<Card> {
        Ok(Card {
            number: card_number(prefix)?,
            pin: random::digits(CARD_PIN_DIGITS)?,
            kind: kind.as_str().to_owned(),
        })
    };
    Ok(Citizen {
        citizen_id: random::id()?,
        given_name: given_name.to_owned(),
        family_name: family_name.to_owned(),
        birthdate: birth.to_iso(),
        national_register_number: national_register_number(birth)?,
        bank,
        debit_card: card(DEBIT_CARD_PREFIX, CardKind::Debit)?,
        credit_card: card(CREDIT_CARD_PREFIX, CardKind::Credit)?,
        eid_card: EidCard {
            serial: random::digits(EID_SERIAL_DIGITS)?,
            pin: random::digits(CARD_PIN_DIGITS)?,
            valid_until: eid_valid_until.to_iso(),
        },
    })
}

fn insert(tx: &Tx<'_>, citizen: &Citizen) -> Result<()> {
    outboxes::add_citizen(tx, citizen, clock::now())?;
    for (card, kind) in [
        (&citizen.debit_card, CardKind::Debit),
        (&citizen.credit_card, CardKind::Credit),
    ] {
        let salt = random::bytes::<PIN_SALT_BYTES>()?;
        outboxes::add_card(
            tx,
            &NewCard {
                number: &card.number,
                citizen_id: &citizen.citizen_id,
                bank: citizen.bank,
                kind,
                pin_salt: &salt,
                pin_hash: &card_pin_hash(&salt, &card.pin)?,
            },
        )?;
    }
    let salt = random::bytes::<PIN_SALT_BYTES>()?;
    outboxes::add_eid_card(
        tx,
        &NewEidCard {
            serial: &citizen.eid_card.serial,
            citizen_id: &citizen.citizen_id,
            valid_until: &citizen.eid_card.valid_until,
            pin_salt: &salt,
            pin_hash: &card_pin_hash(&salt, &citizen.eid_card.pin)?,
        },
    )?;
    Ok(())
}

pub(crate) use crate::store::outboxes::CitizenIdentity;

/// The identity of the citizen `citizen_id`.
pub(crate) fn citizen_identity(conn: &impl Sql, citizen_id: &str) -> Result<CitizenIdentity> {
    outboxes::citizen_identity(conn, citizen_id)?
        .ok_or_else(|| ServerError::NotFound(format!("no citizen {citizen_id:?}")))
}

/// The stored form of a card PIN: HMAC-SHA256 keyed with the card's random salt.
pub(crate) fn card_pin_hash(salt: &[u8], pin: &str) -> Result<Vec<u8>> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(salt)
        .map_err(|_| ServerError::Internal("card PIN salt of invalid length".into()))?;
    mac.update(pin.as_bytes());
    Ok(mac.finalize().into_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_citizens_have_valid_numbers_and_cards() {
        for _ in 0..50 {
            let birth = random_birth_date().unwrap();
            let citizen =
                made_up_citizen("Jan", "Peeters", birth, Bank::Ing, Date::from_unix(0)).unwrap();
            identity::check_national_register_number(&citizen.national_register_number, birth)
                .unwrap();
            for card in [&citizen.debit_card, &citizen.credit_card] {
                assert_eq!(card.number.len(), CARD_NUMBER_DIGITS);
                let (body, check) = card.number.split_at(CARD_NUMBER_DIGITS - 1);
                assert_eq!(check, luhn_check_digit(body).to_string());
                assert_eq!(card.pin.len(), CARD_PIN_DIGITS);
            }
            assert!(citizen.debit_card.number.starts_with(DEBIT_CARD_PREFIX));
        }
    }

    #[test]
    fn luhn_matches_a_known_number() {
        // 4111 1111 1111 1111 is the classic valid test VISA number.
        assert_eq!(luhn_check_digit("411111111111111"), 1);
    }

    #[test]
    fn born_in_2000s_use_the_2_prefix_rule() {
        let birth = Date::parse("2004-03-09").unwrap();
        let nrn = national_register_number(birth).unwrap();
        identity::check_national_register_number(&nrn, birth).unwrap();
    }
}
