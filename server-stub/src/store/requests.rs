//! Action requests and their answers: pending requests of an account, the phone's answer with
//! its evidence, supersession, closing on a block.
