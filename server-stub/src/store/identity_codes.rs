//! Identity codes: the eID website's identification codes and the counter's activation codes
//! and links, single-use.
