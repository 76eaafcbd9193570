//! The JSON bodies the server reads (phone API and simulators), through the reader every
//! handler uses. The first byte picks the body's type. Checks that an accepted body survives a
//! JSON round trip unchanged.
use serde::Serialize;
use serde::de::DeserializeOwned;
use sleutel_protocol::api::sign_in::OpenSignInLink;
use sleutel_protocol::api::sim::{BlockMyKey, CounterActivation, EidIdentification, NewCitizen};
use sleutel_protocol::api::{
    ChangePin, CompleteEnrollment, RegisterBiometricKey, RegisterPushToken, StartEnrollment,
    SubmitIdentity, SubmitIdentityCode, VerifySms,
};
use sleutel_protocol::jose::GeneralJws;
use sleutel_server::fuzzing::json_body;

fn round_trip<T: DeserializeOwned + Serialize + PartialEq>(body: &[u8]) -> bool {
    let Ok(parsed) = json_body::<T>(body) else {
        return false;
    };
    let again = serde_json::to_vec(&parsed).map(|bytes| json_body::<T>(&bytes));
    assert!(matches!(again, Ok(Ok(ref p)) if *p == parsed));
    true
}

/// Runs the target on `data`; true when the reader under test accepted it.
pub fn run(data: &[u8]) -> bool {
    let Some((&pick, body)) = data.split_first() else {
        return false;
    };
    match pick % 14 {
        0 => round_trip::<StartEnrollment>(body),
        1 => round_trip::<SubmitIdentity>(body),
        2 => round_trip::<SubmitIdentityCode>(body),
        3 => round_trip::<VerifySms>(body),
        4 => round_trip::<CompleteEnrollment>(body),
        5 => round_trip::<GeneralJws>(body),
        6 => round_trip::<ChangePin>(body),
        7 => round_trip::<RegisterBiometricKey>(body),
        8 => round_trip::<RegisterPushToken>(body),
        9 => round_trip::<OpenSignInLink>(body),
        10 => round_trip::<BlockMyKey>(body),
        11 => round_trip::<EidIdentification>(body),
        12 => round_trip::<CounterActivation>(body),
        _ => round_trip::<NewCitizen>(body),
    }
}
