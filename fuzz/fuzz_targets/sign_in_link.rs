//! Sign-in links (rotating QR codes and app links), as the phone reads a scanned or tapped link
//! and the server reads the link the phone sends back (`SignInLink::parse`), and the return URL
//! of an app sign-in as the phone accepts it from the server. The first byte picks the server's
//! base URL. Checks that an accepted link written out again (`to_url`) reads back to the same
//! link, and that an accepted return URL lies on the server's origin.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sleutel_fuzz::targets::sign_in_link::run(data);
});
