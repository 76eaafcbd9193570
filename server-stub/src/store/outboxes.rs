//! The simulators' outboxes (SMS, e-mail, push) and the simulated world: citizens, bank cards,
//! eID cards.
