//! Enrollments: one row per activation in progress, its step, the proven identity, the SMS
//! code and its counts.
