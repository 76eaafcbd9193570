//! Cleaning of text that came from a server or relying party before a person sees it.
//!
//! A relying party could try to spoof what the person reads: a right-to-left override turns
//! "gro.nigol" into "login.org", zero-width characters hide differences, control characters break
//! layout. Both the server (when it accepts a request) and the phone (when it shows one) clean.

/// Whether `c` must never be shown: control characters, bidirectional controls, zero-width and
/// other invisible formatting characters.
pub fn is_forbidden_char(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}'   // zero-width space/joiners, LRM, RLM
            | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // bidi isolates
            | '\u{FEFF}'              // zero-width no-break space / BOM
            | '\u{00AD}'              // soft hyphen
            | '\u{034F}'              // combining grapheme joiner
            | '\u{061C}'              // Arabic letter mark
            | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' // Hangul fillers (invisible)
            | '\u{180E}'              // Mongolian vowel separator
            | '\u{FFF9}'..='\u{FFFB}' // interlinear annotations
        )
}

/// Whether `text` contains any character [`is_forbidden_char`] refuses.
pub fn has_forbidden_chars(text: &str) -> bool {
    text.chars().any(is_forbidden_char)
}

/// Returns `text` without forbidden characters, with runs of white space folded to one space,
/// trimmed, and cut to at most `max_chars` characters (an ellipsis marks a cut).
pub fn clean_display_text(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars * 4));
    let mut pending_space = false;
    for c in text
        .chars()
        .filter(|c| !is_forbidden_char(*c) || *c == '\n' || *c == '\t')
    {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    if out.chars().count() > max_chars {
        let mut cut: String = out.chars().take(max_chars.saturating_sub(1)).collect();
        cut.push('…');
        return cut;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_bidi_override_and_zero_width() {
        let spoof = "Bank\u{202E}gro.nigol\u{200B} X";
        assert_eq!(clean_display_text(spoof, 100), "Bankgro.nigol X");
        assert!(has_forbidden_chars(spoof));
    }

    #[test]
    fn folds_whitespace_and_cuts() {
        assert_eq!(clean_display_text("  a \n\t b  ", 100), "a b");
        assert_eq!(clean_display_text("abcdef", 4), "abc…");
    }
}
