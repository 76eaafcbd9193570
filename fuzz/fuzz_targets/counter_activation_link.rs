//! The counter e-mail's activation link (`sleutel://enroll/counter?activation=...`) as the
//! phone reads it. Checks that an accepted link yields a token of the activation token's shape,
//! and that the link the server builds for that token reads back to it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sleutel_fuzz::targets::counter_activation_link::run(data);
});
