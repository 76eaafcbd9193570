//! What the sign-in pages read from a browser: the session id in the `Cookie` header (only
//! under the name this server sets) and the page language from `Accept-Language` (tags and
//! `q=` weights). The first byte picks the server's URL (HTTPS, where the cookie is
//! `__Host-`-prefixed, or plain loopback) and where the `Cookie` header ends (the next byte).
//! Checks that a session id is non-empty, holds no separator, and stands in the header under
//! the server's cookie name, and that the language is one of the pages'.

use sleutel_server::fuzzing::browser_headers;

/// The two kinds of server URL, with the cookie name each sets.
const SERVERS: [(&str, &str); 2] = [
    ("https://sleutel.example", "__Host-sleutel_sign_in="),
    ("http://127.0.0.1:8440", "sleutel_sign_in="),
];

/// Runs the target on `data`; true when the reader under test accepted it.
pub fn run(data: &[u8]) -> bool {
    let Some((&pick, rest)) = data.split_first() else {
        return false;
    };
    let Some((&length, rest)) = rest.split_first() else {
        return false;
    };
    let (server, name) = SERVERS[usize::from(pick) % SERVERS.len()];
    let (cookie, language) = rest.split_at(usize::from(length).min(rest.len()));
    let (session, lang) = browser_headers(Some(cookie), Some(language), server);
    assert!(["nl", "fr", "en"].contains(&lang));
    let Some(session) = session else {
        return false;
    };
    assert!(!session.is_empty() && !session.contains(';'));
    let header = String::from_utf8_lossy(cookie);
    assert!(header.contains(&format!("{name}{session}")));
    true
}
