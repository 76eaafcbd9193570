//! The bank simulator's form (`POST /sim/bank/{bank}/authorize`), read as the simulator reads
//! it. Checks that an accepted form binds to identifiers, returns only to the app, and carries
//! a card number without spaces and a PIN of digits.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sleutel_fuzz::targets::bank_form::run(data);
});
