//! Every size, count and time limit of the protocol, with the reason next to it.

/// Largest HTTP request body either side accepts. Action requests with a 7,500-character
/// transaction text and two-signature responses fit comfortably; anything bigger is an attack.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Largest compact JWS accepted anywhere (action requests, identity tokens, proofs).
pub const MAX_JWS_BYTES: usize = 32 * 1024;

/// Clock difference tolerated between phone and server, in seconds. Phones drift; a minute is the
/// usual allowance for DPoP proofs (RFC 9449 §11.1 leaves it to the server).
pub const CLOCK_SKEW_SECS: i64 = 60;

/// Clock difference tolerated between a relying party and the server when checking a client
/// assertion's `exp`, `nbf` and `iat` (RFC 7523 §3 lets the server allow "some small leeway").
/// Both ends are servers that keep time by NTP, so the allowance is tighter than the phones'.
pub const CLIENT_ASSERTION_CLOCK_SKEW_SECS: i64 = 30;

/// Furthest ahead a client assertion's `exp` may lie. An assertion is made for one request and
/// sent at once; a long-lived one is a bearer credential that could be stolen and replayed
/// elsewhere (until its `jti` is used), and its `jti` would have to be kept that long.
pub const MAX_CLIENT_ASSERTION_LIFETIME_SECS: i64 = 300;

/// Longest `jti` of a client assertion: a random id of a few dozen characters is plenty, and
/// anything longer is refused before it is hashed and stored.
pub const MAX_CLIENT_ASSERTION_JTI_CHARS: usize = 256;

/// How long a DPoP-style proof stays acceptable after its `iat`.
pub const PROOF_MAX_AGE_SECS: i64 = 120;

/// How long the server remembers a proof id to refuse replays: the longest a proof can stay
/// acceptable after it is first seen. A proof may be dated up to [`CLOCK_SKEW_SECS`] in the
/// future and is then good for [`PROOF_MAX_AGE_SECS`] after that date.
pub const PROOF_REMEMBER_SECS: i64 = PROOF_MAX_AGE_SECS + CLOCK_SKEW_SECS;

/// Longest lifetime an action request may claim. A request is answered within minutes; a longer
/// lifetime only widens the window for a phished approval.
pub const MAX_ACTION_LIFETIME_SECS: i64 = 15 * 60;

/// How long after a completion its answer can be asked for again (a phone that lost the answer
/// repeats the call), at least: the server keeps the enrollment alive this long after it
/// completes, and the phone, which cannot know whether its call arrived, gives itself the same
/// time from the moment it sends. Minutes are enough to come back online; a repeat compares the
/// PIN key and counts a wrong one, so the window buys an attacker nothing.
pub const COMPLETION_REPEAT_SECS: i64 = 10 * 60;

/// Longest lifetime of an identity token from a bank, the eID website or the counter ("minutes").
pub const MAX_IDENTITY_TOKEN_LIFETIME_SECS: i64 = 10 * 60;

/// Longest display name of a relying party, in characters, after cleaning.
pub const MAX_RP_NAME_CHARS: usize = 64;

/// Longest text to show on the phone for a request, in characters, after cleaning.
pub const MAX_ACTION_TEXT_CHARS: usize = 200;

/// Longest binding message, in characters. CIBA recommends a short message that fits the screen.
pub const MAX_BINDING_MESSAGE_CHARS: usize = 64;

/// Longest name of a document to sign, in characters: file names of contracts and forms fit,
/// and the whole name stays readable on one or two lines of a phone screen.
pub const MAX_DOCUMENT_NAME_CHARS: usize = 128;

/// Longest IBAN as written, spaces included: 34 characters (ISO 13616) in groups of four, so
/// at most 8 spaces. The IBAN is shown to the person as sent; spaces beyond that would stretch
/// or shift it on the screen.
pub const MAX_IBAN_CHARS: usize = 42;

/// Most combining marks one character may carry in text shown to the person. UTS #39 §5.4
/// suggests refusing more than four nonspacing marks in a row; legitimate writing stays within
/// that (Vietnamese written decomposed puts two on a vowel, Devanagari nukta, vowel sign and
/// nasal three, Burmese medials, vowels and tone four), while "Zalgo" text stacks tens of marks
/// so that they spill over the lines above and below and hide what is written there.
pub const MAX_COMBINING_MARKS_PER_BASE: usize = 4;

/// Longest person name (given or family) accepted in an identity token.
pub const MAX_NAME_CHARS: usize = 100;

/// Number of digits of the code the person chooses.
pub const PIN_LENGTH: usize = 5;

/// Number of digits of the SMS control code.
pub const SMS_CODE_LENGTH: usize = 6;

/// Length of random identifiers (request ids, enrollment ids, ...) in bytes before base64url.
pub const ID_BYTES: usize = 16;

/// Largest accepted identifier length in characters (base64url of [`ID_BYTES`] is 22).
pub const MAX_ID_CHARS: usize = 64;

/// Longest FCM registration token accepted, in characters. Google documents the token as an
/// opaque string and does not fix its length; tokens seen today are about 150 to 300 characters.
/// Four kilobytes leave room for any growth while keeping a stored token (one per device) small.
pub const MAX_FCM_TOKEN_CHARS: usize = 4096;

/// Longest APNs device token accepted, in bytes (twice as many hexadecimal characters). Tokens
/// are 32 bytes today, but Apple documents them as variable in length and asks providers not to
/// hard-code their size; 200 bytes is over six times today's size and still keeps the token
/// (which goes into the path of every APNs request) short.
pub const MAX_APNS_TOKEN_BYTES: usize = 200;
