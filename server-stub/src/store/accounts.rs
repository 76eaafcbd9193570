//! Accounts and their devices: the person's identity, the devices' keys, the wrong-code
//! counts, the account history, the devices' push tokens, and the proof ids seen (replay cache).
