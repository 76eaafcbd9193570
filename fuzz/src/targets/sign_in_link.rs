//! Sign-in links (rotating QR codes and app links), as the phone reads a scanned or tapped link
//! and the server reads the link the phone sends back (`SignInLink::parse`), and the return URL
//! of an app sign-in as the phone accepts it from the server. The first byte picks the server's
//! base URL. Checks that an accepted link written out again (`to_url`) reads back to the same
//! link, and that an accepted return URL lies on the server's origin.
use crate::text;
use sleutel_core::fuzzing::sign_in_return_url;
use sleutel_protocol::api::sign_in::SignInLink;

/// Base URLs a server may have: https, plain http on a port, and under a path.
const SERVERS: [&str; 3] = [
    "https://sleutel.example",
    "http://127.0.0.1:8440",
    "https://id.example/sleutel",
];

/// Runs the target on `data`; true when the reader under test accepted it.
pub fn run(data: &[u8]) -> bool {
    let Some((&pick, rest)) = data.split_first() else {
        return false;
    };
    let server = SERVERS[usize::from(pick) % SERVERS.len()];
    let Some(link) = text(rest) else {
        return false;
    };
    let parsed = SignInLink::parse(link, server);
    if let Ok(parsed) = &parsed {
        assert!(!parsed.id().is_empty());
        let again = SignInLink::parse(&parsed.to_url(server), server);
        assert_eq!(again.as_ref().ok(), Some(parsed));
    }
    if let Ok(accepted) = sign_in_return_url(link, server) {
        let (Ok(url), Ok(server)) = (url::Url::parse(&accepted), url::Url::parse(server)) else {
            panic!("an accepted return URL is a URL");
        };
        assert_eq!(url.origin(), server.origin());
        assert!(url.username().is_empty() && url.password().is_none());
    }
    parsed.is_ok()
}
