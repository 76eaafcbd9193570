//! Cleaning of text that came from a server or relying party before a person sees it.
//!
//! A relying party could try to spoof what the person reads: a right-to-left override turns
//! "gro.nigol" into "login.org", zero-width characters hide differences, control characters break
//! layout. Both the server (when it accepts a request) and the phone (when it shows one) clean.

/// Whether `c` must never be shown: control characters, bidirectional controls, and every
/// invisible character (Unicode's Default_Ignorable_Code_Point set and the format characters,
/// General_Category Cf): zero-width characters, joiners, variation selectors, tag characters,
/// fillers and interlinear annotation marks.
pub fn is_forbidden_char(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}'                   // soft hyphen
            | '\u{034F}'                 // combining grapheme joiner
            | '\u{0600}'..='\u{0605}'   // Arabic number signs (Cf)
            | '\u{061C}'                 // Arabic letter mark
            | '\u{06DD}' | '\u{070F}'    // Arabic end of ayah, Syriac abbreviation mark (Cf)
            | '\u{0890}'..='\u{0891}' | '\u{08E2}' // Arabic pound/piastre marks, disputed end of ayah
            | '\u{115F}' | '\u{1160}'    // Hangul fillers
            | '\u{17B4}' | '\u{17B5}'    // Khmer inherent vowels (invisible)
            | '\u{180B}'..='\u{180F}'   // Mongolian variation selectors and vowel separator
            | '\u{200B}'..='\u{200F}'   // zero-width space/joiners, LRM, RLM
            | '\u{202A}'..='\u{202E}'   // bidi embeddings and overrides
            | '\u{2060}'..='\u{206F}'   // word joiner, invisible operators, bidi isolates, deprecated format
            | '\u{3164}' | '\u{FFA0}'    // Hangul fillers
            | '\u{FE00}'..='\u{FE0F}'   // variation selectors
            | '\u{FEFF}'                 // zero-width no-break space / BOM
            | '\u{FFF0}'..='\u{FFFB}'   // unassigned specials, interlinear annotations
            | '\u{110BD}' | '\u{110CD}'  // Kaithi number signs (Cf)
            | '\u{13430}'..='\u{1343F}' // Egyptian hieroglyph format controls
            | '\u{1BCA0}'..='\u{1BCA3}' // shorthand format controls
            | '\u{1D173}'..='\u{1D17A}' // musical symbol format controls
            | '\u{E0000}'..='\u{E0FFF}' // tag characters and variation selectors supplement
        )
}

/// Whether `text` contains any character [`is_forbidden_char`] refuses.
pub fn has_forbidden_chars(text: &str) -> bool {
    text.chars().any(is_forbidden_char)
}

/// Whether `text` can be shown as it is: not blank, at most `max_chars` characters, and no
/// character [`is_forbidden_char`] refuses. Text a party vouches for (names, a binding message)
/// is refused rather than cleaned when it fails, so what is shown is what was signed.
pub fn is_showable(text: &str, max_chars: usize) -> bool {
    !text.trim().is_empty() && text.chars().count() <= max_chars && !has_forbidden_chars(text)
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
    fn removes_tags_variation_selectors_and_fillers() {
        let hidden = "Ban\u{E0041}k\u{FE0F}\u{3164}\u{2066}X\u{2069}\u{180E}";
        assert_eq!(clean_display_text(hidden, 100), "BankX");
        assert!(!has_forbidden_chars(
            "Online overheid — Ik log in (België) €12,50"
        ));
    }

    #[test]
    fn showable_text_is_non_blank_short_and_clean() {
        assert!(is_showable("Jan", 3));
        assert!(is_showable("Online overheid — €12,50", 64));
        assert!(!is_showable("Jans", 3));
        assert!(!is_showable("", 10));
        assert!(!is_showable(" \t ", 10));
        assert!(!is_showable("A\u{202E}B", 10));
        assert!(!is_showable("A\nB", 10));
        // Characters, not bytes, are counted.
        assert!(is_showable("éé", 2));
    }

    #[test]
    fn folds_whitespace_and_cuts() {
        assert_eq!(clean_display_text("  a \n\t b  ", 100), "a b");
        assert_eq!(clean_display_text("abcdef", 4), "abc…");
    }
}
