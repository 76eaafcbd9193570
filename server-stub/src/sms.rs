//! Sending SMS control codes. The server writes every message to an outbox table the
//! simulator serves (`GET /sim/outbox/sms`). The sender is a trait inside the crate: a real SMS
//! gateway would be another implementation, chosen where `server::start` builds the state; it
//! is not pluggable from outside.

use crate::store::{Tx, outboxes};

use crate::clock;
use crate::error::Result;

/// Sends a text message to a phone number.
pub(crate) trait SmsSender: Send + Sync + 'static {
    /// Sends `text` to `phone_number` (E.164). `db` is the connection of the transaction that
    /// decided to send, so an outbox write commits or rolls back with it.
    fn send(&self, db: &Tx<'_>, phone_number: &str, text: &str) -> Result<()>;
}

/// The default sender: the simulator's SMS outbox.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct OutboxSms;

impl SmsSender for OutboxSms {
    fn send(&self, db: &Tx<'_>, phone_number: &str, text: &str) -> Result<()> {
        Ok(outboxes::queue_sms(db, phone_number, text, clock::now())?)
    }
}

/// The text of the SMS that carries a control code, in Dutch as the person reads it.
pub(crate) fn control_code_text(code: &str) -> String {
    format!("Sleutel: uw controlecode is {code}. Geef deze code aan niemand door.")
}

/// A Belgian mobile number masked for display: `+32470123456` -> `+32 4•• •• 34 56`. Only the
/// last four digits show, enough for the person to recognise the number.
pub(crate) fn mask_phone_number(number: &str) -> String {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 6 {
        return "•••".into();
    }
    let tail = &digits[digits.len() - 4..];
    format!(
        "+32 {}•• •• {}{} {}{}",
        digits.get(2).copied().unwrap_or('•'),
        tail[0],
        tail[1],
        tail[2],
        tail[3]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_all_but_the_last_four_digits() {
        assert_eq!(mask_phone_number("+32470123456"), "+32 4•• •• 34 56");
    }

    #[test]
    fn the_text_carries_the_code_once() {
        let text = control_code_text("123456");
        assert_eq!(text.matches("123456").count(), 1);
    }
}
