//! Cleaning of text that came from a server or relying party before a person sees it.
//!
//! A relying party could try to spoof what the person reads: a right-to-left override turns
//! "gro.nigol" into "login.org", zero-width characters hide differences, control characters break
//! layout, a Braille blank makes a payee look empty, stacked combining marks ("Zalgo") cover the
//! neighbouring lines, and a Cyrillic "а" inside a Latin word imitates a known name. Both the
//! server (when it accepts a request) and the phone (when it shows one) clean; the server refuses
//! text a party vouches for ([`check_showable`]) rather than cleaning it.
//!
//! Mixed-script detection follows UTS #39 per word: it catches "Stаd" or "PayPаl" with one
//! Cyrillic letter, not a word written entirely in another script that happens to look Latin
//! (an all-Cyrillic "Стад"). Such whole-script confusables cannot be told from genuine names in
//! that script without knowing which names the person expects, so they are not refused.

use unicode_normalization::char::is_combining_mark;
use unicode_security::MixedScript;

use crate::limits::MAX_COMBINING_MARKS_PER_BASE;

/// Whether `c` must never be shown: control characters, bidirectional controls, every invisible
/// character (Unicode's Default_Ignorable_Code_Point set and the format characters,
/// General_Category Cf: zero-width characters, joiners, variation selectors, tag characters,
/// fillers and interlinear annotation marks), and the graphic characters that render as nothing.
pub fn is_forbidden_char(c: char) -> bool {
    c.is_control()
        || is_blank_graphic(c)
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

/// Graphic characters (symbols, not white space nor default-ignorable) that render as nothing
/// or as a placeholder without meaning: a payee made of them looks blank or hides a gap inside
/// a name. The Hangul fillers, which are letters, are default-ignorable and listed with those.
fn is_blank_graphic(c: char) -> bool {
    matches!(
        c,
        '\u{2800}'      // Braille pattern blank: a cell with no dots, drawn as empty space
            | '\u{FFFC}' // object replacement: an embedded object that plain text cannot carry
            | '\u{1D159}' // musical symbol null notehead: an invisible base for musical marks
    )
}

/// Whether `text` contains any character [`is_forbidden_char`] refuses.
pub fn has_forbidden_chars(text: &str) -> bool {
    text.chars().any(is_forbidden_char)
}

/// Why text cannot be shown as it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unshowable {
    /// More characters than the field allows.
    #[error("longer than {max} characters")]
    TooLong {
        /// The field's limit, in characters.
        max: usize,
    },
    /// A control, invisible, blank-looking or bidirectional character.
    #[error("holds control, invisible, blank-looking or bidirectional characters")]
    ForbiddenChar,
    /// No letter or digit: empty, white space, or only punctuation, symbols and marks.
    #[error("holds no letter or digit")]
    Blank,
    /// A character carries more than [`MAX_COMBINING_MARKS_PER_BASE`] combining marks, or the
    /// same mark twice in a row.
    #[error(
        "stacks more than {MAX_COMBINING_MARKS_PER_BASE} combining marks, or one mark twice, \
         on a character"
    )]
    StackedMarks,
    /// A word mixes scripts that UTS #39 does not let share a word (Latin with Cyrillic, ...).
    #[error("mixes letters of different scripts in one word")]
    MixedScripts,
}

/// Checks that `text` can be shown as it is: at most `max_chars` characters, no character
/// [`is_forbidden_char`] refuses, at least one letter or digit, no character carrying
/// stacked marks, and no word mixing scripts. Text a party vouches for (names, a payee, a
/// binding message, a document name) is refused rather than cleaned when it fails, so what is
/// shown is what was signed.
pub fn check_showable(text: &str, max_chars: usize) -> Result<(), Unshowable> {
    if text.chars().count() > max_chars {
        Err(Unshowable::TooLong { max: max_chars })
    } else if has_forbidden_chars(text) {
        Err(Unshowable::ForbiddenChar)
    } else if !has_letter_or_digit(text) {
        Err(Unshowable::Blank)
    } else if has_stacked_marks(text) {
        Err(Unshowable::StackedMarks)
    } else if has_mixed_script_word(text) {
        Err(Unshowable::MixedScripts)
    } else {
        Ok(())
    }
}

/// Whether [`check_showable`] accepts `text`.
pub fn is_showable(text: &str, max_chars: usize) -> bool {
    check_showable(text, max_chars).is_ok()
}

/// Whether `text` has a letter or digit that is shown (forbidden characters do not count: the
/// Hangul fillers are letters). Text without one is blank or nearly so (".", "—", "⠀⠀") and
/// tells the person nothing about who or what it names.
pub fn has_letter_or_digit(text: &str) -> bool {
    text.chars()
        .any(|c| c.is_alphanumeric() && !is_forbidden_char(c))
}

/// Counts the combining marks on the current base character, to bound stacking.
#[derive(Default)]
struct MarkStack {
    marks: usize,
    last: Option<char>,
}

impl MarkStack {
    /// Takes the next character; false for a mark beyond [`MAX_COMBINING_MARKS_PER_BASE`] on
    /// its base or repeating the mark before it (UTS #39 §5.4 suggests refusing both).
    fn accept(&mut self, c: char) -> bool {
        if !is_combining_mark(c) {
            *self = Self::default();
            return true;
        }
        if self.marks >= MAX_COMBINING_MARKS_PER_BASE || self.last == Some(c) {
            return false;
        }
        self.marks += 1;
        self.last = Some(c);
        true
    }
}

/// Whether some character of `text` carries stacked marks (see [`MarkStack::accept`]).
fn has_stacked_marks(text: &str) -> bool {
    let mut stack = MarkStack::default();
    text.chars().any(|c| !stack.accept(c))
}

/// Whether some word of `text` (split on white space) mixes scripts: its UTS #39 resolved script
/// set is empty. Digits and punctuation (script Common) and most marks (Inherited) go with any
/// script, and Han with Hiragana and Katakana (Japanese), with Hangul (Korean) or with Bopomofo
/// counts as one writing system. A Latin word with a Cyrillic "а" is refused; "Müller", "BE68",
/// "東京タワー" and an all-Greek name are not.
pub fn has_mixed_script_word(text: &str) -> bool {
    text.split_whitespace().any(|word| !word.is_single_script())
}

/// Returns `text` without forbidden characters and without the combining marks beyond the
/// stacking bound, with runs of white space folded to one space, trimmed, and cut to at most
/// `max_chars` characters (an ellipsis marks a cut). Text that was nothing but such characters
/// comes back empty: the caller shows nothing, or refuses it where it is required. Never panics,
/// and reads the input once.
pub fn clean_display_text(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars.saturating_mul(4)));
    let mut pending_space = false;
    let mut stack = MarkStack::default();
    for c in text
        .chars()
        .filter(|c| !is_forbidden_char(*c) || *c == '\n' || *c == '\t')
    {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            stack = MarkStack::default();
            continue;
        }
        if !stack.accept(c) {
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    if out.chars().count() > max_chars {
        if max_chars == 0 {
            return String::new();
        }
        let mut cut: String = out.chars().take(max_chars - 1).collect();
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

    /// Names, payees, binding messages and document names the callers really send.
    const LEGITIMATE: &[&str] = &[
        "AB12",
        "TEST-1",
        "NIEUW",
        "Online overheid",
        "Stad Gent",
        "BNP Paribas Fortis",
        "Huurcontract Kerkstraat 12.pdf",
        "Huurcontract2026.pdf",
        "BE68",
        "Müller",
        "Mu\u{0308}ller",
        "Françoise",
        "Ødegaard",
        "O'Brien",
        "Jean-Luc Van den Bossche",
        "Ελένη Παπαδοπούλου",
        "Анна Иванова",
        "محمد العلي",
        "東京タワー",
        "山田 太郎",
        "やまだ たろう",
        "김민준",
        "Nguye\u{0302}\u{0303}n",
        "\u{091C}\u{093C}\u{093F}\u{0902}",
        "\u{1000}\u{103C}\u{102D}\u{102F}\u{1038}",
    ];

    #[test]
    fn legitimate_names_and_messages_are_showable() {
        for text in LEGITIMATE {
            assert_eq!(check_showable(text, 64), Ok(()), "{text:?}");
        }
    }

    #[test]
    fn legitimate_text_is_unchanged_by_cleaning() {
        for text in LEGITIMATE {
            assert_eq!(clean_display_text(text, 64), *text);
        }
    }

    #[test]
    fn blank_looking_graphic_characters_are_forbidden() {
        for c in [
            '\u{2800}',
            '\u{FFFC}',
            '\u{1D159}',
            '\u{3164}',
            '\u{FFA0}',
            '\u{115F}',
            '\u{1160}',
        ] {
            assert!(is_forbidden_char(c), "{c:?}");
            assert_eq!(
                clean_display_text(&format!("Stad{c} Gent"), 64),
                "Stad Gent"
            );
        }
        assert_eq!(
            check_showable("Stad Gent\u{2800}", 64),
            Err(Unshowable::ForbiddenChar)
        );
        assert_eq!(clean_display_text("\u{2800}\u{2800}", 64), "");
    }

    #[test]
    fn text_without_a_letter_or_digit_is_not_showable() {
        for text in [".", "—", "€", "- . -", "()", "\u{0301}"] {
            assert_eq!(check_showable(text, 64), Err(Unshowable::Blank), "{text:?}");
        }
        // Made of forbidden characters, it is refused for those first.
        assert_eq!(
            check_showable("\u{2800}\u{2800}", 64),
            Err(Unshowable::ForbiddenChar)
        );
        assert!(is_showable("1", 64));
        assert!(is_showable("Ⅻ", 64));
    }

    #[test]
    fn more_than_the_bound_of_combining_marks_is_not_showable() {
        let marks = ['\u{0300}', '\u{0301}', '\u{0302}', '\u{0303}', '\u{0304}'];
        let within: String = std::iter::once('Z')
            .chain(marks[..4].iter().copied())
            .collect();
        let beyond: String = std::iter::once('Z').chain(marks.iter().copied()).collect();
        assert_eq!(check_showable(&within, 64), Ok(()));
        assert_eq!(check_showable(&beyond, 64), Err(Unshowable::StackedMarks));
        // The bound is per base character: four marks on each of two letters is fine.
        assert_eq!(check_showable(&format!("{within}{within}"), 64), Ok(()));
    }

    #[test]
    fn a_mark_repeated_on_one_character_is_not_showable() {
        assert_eq!(
            check_showable("e\u{0301}\u{0301}", 64),
            Err(Unshowable::StackedMarks)
        );
    }

    #[test]
    fn cleaning_drops_stacked_marks_beyond_the_bound() {
        let zalgo: String = std::iter::once('Z')
            .chain(('\u{0300}'..='\u{036F}').filter(|c| *c != '\u{034F}'))
            .chain("al".chars())
            .collect();
        assert_eq!(
            clean_display_text(&zalgo, 64),
            "Z\u{0300}\u{0301}\u{0302}\u{0303}al"
        );
        assert_eq!(clean_display_text("e\u{0301}\u{0301}", 64), "e\u{0301}");
        // A mark hidden behind an invisible joiner still counts for the same character.
        assert_eq!(
            clean_display_text("e\u{0301}\u{200D}\u{0301}", 64),
            "e\u{0301}"
        );
    }

    #[test]
    fn a_word_mixing_latin_and_cyrillic_is_not_showable() {
        // "а" here is U+0430 CYRILLIC SMALL LETTER A.
        for text in ["St\u{0430}d Gent", "PayP\u{0430}l", "BNP P\u{0430}ribas"] {
            assert_eq!(
                check_showable(text, 64),
                Err(Unshowable::MixedScripts),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_word_mixing_latin_and_greek_is_not_showable() {
        // "ο" here is U+03BF GREEK SMALL LETTER OMICRON.
        assert_eq!(
            check_showable("G\u{03BF}ogle", 64),
            Err(Unshowable::MixedScripts)
        );
    }

    #[test]
    fn too_long_text_is_not_showable() {
        assert_eq!(
            check_showable("Jans", 3),
            Err(Unshowable::TooLong { max: 3 })
        );
    }

    #[test]
    fn cleaning_is_bounded_and_total_for_any_limit() {
        let hostile: String =
            "Z\u{0301}\u{0302}\u{0303}\u{0304}\u{0305}\u{2800} \u{202E}".repeat(10_000);
        let cleaned = clean_display_text(&hostile, 64);
        assert_eq!(cleaned.chars().count(), 64);
        assert!(cleaned.ends_with('…'));
        assert_eq!(clean_display_text("abc", 0), "");
        assert_eq!(clean_display_text("", 0), "");
        assert_eq!(clean_display_text("abc", usize::MAX), "abc");
    }

    #[test]
    fn folds_whitespace_and_cuts() {
        assert_eq!(clean_display_text("  a \n\t b  ", 100), "a b");
        assert_eq!(clean_display_text("abcdef", 4), "abc…");
    }
}
