//! The simulators a person deals with outside the app: the bank's authorize page, the eID
//! website, the town-hall counter, the "block my key" page, the SMS and e-mail the person
//! receives, and the push channel.
//!
//! Each call decodes a success and turns a refusal into [`HarnessError::Api`]; the `_raw`
//! variants hand back the server's answer as it came, for tests that check a refusal's status
//! and body.

use std::time::Duration;

use serde::Serialize;
use sleutel_protocol::api::sim::{
    ActivationCodeIssued, BankAuthorize, BlockMyKey, Citizen, CounterActivation, EidIdentification,
    EmailOutbox, IdentificationCodeIssued, KeyBlocked, NewCitizen, PushOutbox, SmsOutbox,
};
use sleutel_protocol::api::{self, ApiError};
use sleutel_protocol::clock;
use sleutel_protocol::identity::Date;
use sleutel_protocol::limits::SMS_CODE_LENGTH;
use url::Url;

use crate::{HarnessError, Result, http_client};

/// Client of the server's `/sim/` endpoints.
#[derive(Clone)]
pub struct SimClient {
    http: reqwest::Client,
    base: String,
}

/// Turns an error answer into [`HarnessError::Api`], or an unexpected one into `Http`.
pub(crate) async fn api_error(response: reqwest::Response) -> HarnessError {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    match serde_json::from_str::<ApiError>(&body) {
        Ok(e) => HarnessError::Api(e),
        Err(_) => HarnessError::Http(format!(
            "HTTP {status}: {}",
            body.chars().take(200).collect::<String>()
        )),
    }
}

/// The JSON body of a successful answer, or the answer's error.
pub(crate) async fn json_or_error<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T> {
    if !response.status().is_success() {
        return Err(api_error(response).await);
    }
    Ok(response.json().await?)
}

impl SimClient {
    /// A client for the server at `base` (no trailing slash).
    pub fn new(base: &str) -> Result<Self> {
        Ok(Self::with_client(http_client()?, base))
    }

    /// A client for the server at `base` over `http` (a client the caller already built).
    pub fn with_client(http: reqwest::Client, base: &str) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// A POST of `body` as JSON to the simulator page `path` (no proof: the simulators stand in
    /// for the world outside the app), answered as it came.
    pub async fn post_raw<T: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<reqwest::Response> {
        Ok(self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await?)
    }

    /// A GET of the simulator page `path` with `query`, decoded.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .query(query)
            .send()
            .await?;
        json_or_error(response).await
    }

    /// Creates a citizen with a debit and a credit card at a bank.
    pub async fn create_citizen(&self, new: &NewCitizen) -> Result<Citizen> {
        json_or_error(self.post_raw(api::sim::PATH_CITIZENS, new).await?).await
    }

    /// Plays the person in the bank's app: opens the handoff URL, enters card number and card
    /// PIN, and returns the deep link the bank sends the person back to the app with.
    pub async fn bank_authorize(
        &self,
        handoff_url: &str,
        card_number: &str,
        card_pin: &str,
    ) -> Result<String> {
        let response = self
            .bank_authorize_raw(handoff_url, card_number, card_pin)
            .await?;
        if response.status() != reqwest::StatusCode::SEE_OTHER {
            return Err(api_error(response).await);
        }
        response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| HarnessError::Http("bank redirect without Location".into()))
    }

    /// As [`SimClient::bank_authorize`], but hands back the bank's answer to the card form as it
    /// came: a 303 to the app's deep link, or a refusal. The handoff page itself must open.
    pub async fn bank_authorize_raw(
        &self,
        handoff_url: &str,
        card_number: &str,
        card_pin: &str,
    ) -> Result<reqwest::Response> {
        let url =
            Url::parse(handoff_url).map_err(|e| HarnessError::Http(format!("handoff URL: {e}")))?;
        let page = self.http.get(url.clone()).send().await?;
        if !page.status().is_success() {
            return Err(api_error(page).await);
        }
        // A missing parameter goes to the bank empty, and the bank refuses it as a person's
        // browser would see it refused.
        let param = |name: &str| query_param(&url, name).unwrap_or_default();
        let form = BankAuthorize {
            enrollment_id: param("enrollment_id"),
            nonce: param("nonce"),
            redirect_uri: param("redirect_uri"),
            card_number: card_number.to_owned(),
            card_pin: card_pin.to_owned(),
        };
        let mut post_url = url.clone();
        post_url.set_query(None);
        Ok(self.http.post(post_url).form(&form).send().await?)
    }

    /// Plays the person on the eID website: creates an identification token for `phone_number`
    /// and `email`, reads the eID card with its PIN, and returns the identification code shown.
    pub async fn eid_identification(
        &self,
        phone_number: &str,
        email: &str,
        card_serial: &str,
        card_pin: &str,
    ) -> Result<IdentificationCodeIssued> {
        let form = EidIdentification {
            phone_number: phone_number.to_owned(),
            email: email.to_owned(),
            card_serial: card_serial.to_owned(),
            card_pin: card_pin.to_owned(),
        };
        json_or_error(
            self.post_raw(api::sim::PATH_EID_IDENTIFICATION, &form)
                .await?,
        )
        .await
    }

    /// Revokes an eID card, as when it is reported lost.
    pub async fn revoke_eid_card(&self, serial: &str) -> Result<()> {
        let response = self
            .http
            .post(format!(
                "{}{}",
                self.base,
                api::sim::path_eid_card_revoke(serial)
            ))
            .send()
            .await?;
        let _: serde_json::Value = json_or_error(response).await?;
        Ok(())
    }

    /// Plays the official at the counter: the person's identity document was checked; returns
    /// the activation code handed out (the e-mail with the link goes to `email`).
    pub async fn counter_activation(
        &self,
        citizen: &Citizen,
        email: &str,
    ) -> Result<ActivationCodeIssued> {
        let form = CounterActivation {
            national_register_number: citizen.national_register_number.clone(),
            document_number: citizen.eid_card.serial.clone(),
            email: email.to_owned(),
        };
        json_or_error(
            self.post_raw(api::sim::PATH_COUNTER_ACTIVATION, &form)
                .await?,
        )
        .await
    }

    /// Every e-mail sent to `email`, oldest first.
    pub async fn email_messages(&self, email: &str) -> Result<EmailOutbox> {
        self.get(api::sim::PATH_EMAIL, &[("email", email)]).await
    }

    /// The activation link in the newest e-mail to `email`, as the person taps it.
    pub async fn activation_link(&self, email: &str) -> Result<String> {
        let outbox = self.email_messages(email).await?;
        outbox
            .messages
            .last()
            .and_then(|m| activation_link_in(&m.text))
            .map(str::to_owned)
            .ok_or_else(|| HarnessError::Missing(format!("an activation e-mail to {email}")))
    }

    /// Plays the person on the "block my key" page.
    pub async fn block_my_key(&self, form: &BlockMyKey) -> Result<KeyBlocked> {
        json_or_error(self.post_raw(api::sim::PATH_BLOCK, form).await?).await
    }

    /// Every SMS sent to `phone_number`, oldest first.
    pub async fn sms_messages(&self, phone_number: &str) -> Result<SmsOutbox> {
        self.get(api::sim::PATH_SMS, &[("phone_number", phone_number)])
            .await
    }

    /// The control code in the newest SMS to `phone_number`, already there (no waiting).
    pub async fn last_sms_code(&self, phone_number: &str) -> Result<String> {
        let outbox = self.sms_messages(phone_number).await?;
        let code = outbox.messages.last().and_then(|m| sms_code_in(&m.text));
        code.ok_or_else(|| HarnessError::Missing(format!("an SMS code to {phone_number}")))
    }

    /// Waits until `phone_number` has received more than `already_seen` SMS messages and returns
    /// the control code in the newest one, as a person reads it off the screen.
    pub async fn wait_for_sms_code(
        &self,
        phone_number: &str,
        already_seen: usize,
        timeout: Duration,
    ) -> Result<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let outbox = self.sms_messages(phone_number).await?;
            if outbox.messages.len() > already_seen
                && let Some(code) = outbox.messages.last().and_then(|m| sms_code_in(&m.text))
            {
                return Ok(code);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(HarnessError::Timeout(format!("an SMS to {phone_number}")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Push messages for `account_id` with a sequence number above `after`.
    pub async fn push_messages(&self, account_id: &str, after: i64) -> Result<PushOutbox> {
        let after = after.to_string();
        self.get(
            api::sim::PATH_PUSH,
            &[("account_id", account_id), ("after", &after)],
        )
        .await
    }
}

/// The value of the query parameter `name` of `url` (a handoff URL, a deep link), decoded.
pub fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A citizen of 17, for the tests of the age every identity source enforces: born on 1 January
/// seventeen years before this year, so under 18 on every day of it.
pub fn minor() -> NewCitizen {
    let today = Date::from_unix(clock::now());
    NewCitizen {
        birthdate: Some(format!("{:04}-01-01", today.year - 17)),
        ..NewCitizen::default()
    }
}

/// The counter's activation link in an e-mail's text, as the person taps it.
pub fn activation_link_in(text: &str) -> Option<&str> {
    text.split_whitespace()
        .find(|word| word.starts_with(api::DEEP_LINK_COUNTER_ACTIVATION))
}

/// The first run of exactly [`SMS_CODE_LENGTH`] digits in an SMS text.
pub fn sms_code_in(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == SMS_CODE_LENGTH)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_code_in_an_sms() {
        assert_eq!(
            sms_code_in("Sleutel: uw controlecode is 042917. Geef deze code aan niemand door."),
            Some("042917".into())
        );
        assert_eq!(sms_code_in("geen code 12345 hier"), None);
    }
}
