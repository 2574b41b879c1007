//! Strips characters that can hide instructions from a human reviewer but
//! not from a model: control characters (other than newline and tab),
//! zero-width and bidirectional formatting characters, and Unicode tag
//! characters. Applied to every text that comes from outside (stored
//! context items, provider content) before it reaches an agent.

use std::borrow::Cow;

fn is_hidden(c: char) -> bool {
    match c {
        '\n' | '\t' => false,
        c if c.is_control() => true,
        // Zero-width, joiners, word joiner, invisible operators, BOM.
        '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{00AD}' => true,
        // Bidirectional embeddings, overrides and isolates.
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => true,
        // Tag characters: invisible ASCII look-alikes.
        '\u{E0000}'..='\u{E007F}' => true,
        _ => false,
    }
}

/// Returns `text` without hidden characters, borrowing when there are none.
pub fn sanitize(text: &str) -> Cow<'_, str> {
    if text.chars().any(is_hidden) {
        Cow::Owned(text.chars().filter(|c| !is_hidden(*c)).collect())
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_characters_are_removed() {
        assert!(matches!(sanitize("plain text\nwith\ttabs"), Cow::Borrowed(_)));
        assert_eq!(sanitize("ig\u{200B}nore\u{202E}previous\u{E0041}\u{0007}"), "ignoreprevious");
        assert_eq!(sanitize("caf\u{00E9} \u{1F600}"), "caf\u{00E9} \u{1F600}", "visible non-ASCII stays");
    }
}
