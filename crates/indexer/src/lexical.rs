//! Terms for lexical search, shared by documents and queries so both back
//! ends see the same words: identifiers are split at case and underscore
//! boundaries, lower-cased, stemmed, and stop words dropped.

use std::sync::LazyLock;

use rust_stemmers::{Algorithm, Stemmer};

static STEMMER: LazyLock<Stemmer> = LazyLock::new(|| Stemmer::create(Algorithm::English));

/// English function words and the keywords every language repeats; they
/// would match everything.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "do", "does", "for", "from", "how", "if", "in", "is", "it", "of",
    "on", "or", "the", "this", "to", "we", "what", "when", "where", "which", "who", "why", "with", "fn", "def", "func",
    "let", "var", "const", "pub", "self", "return", "use", "import", "else", "new", "mut", "impl", "struct", "class",
    "public", "private", "static", "void", "int", "string", "str", "none", "null", "true", "false", "elif", "package",
];

/// The terms of `text`, in order, repeats kept (they carry term frequency).
pub fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        for part in split_identifier(word) {
            if let Some(term) = normalize(part) {
                out.push(term);
            }
        }
    }
    out
}

/// The terms of a document: its path, its symbol and its text, capped so
/// one huge chunk cannot dominate the lexical index.
pub fn document_text(path: &str, symbol: &str, content: &str) -> String {
    const MAX_TERMS: usize = 4096;
    let mut all = terms(path);
    all.extend(terms(symbol));
    all.extend(terms(content));
    all.truncate(MAX_TERMS);
    all.join(" ")
}

fn normalize(part: &str) -> Option<String> {
    if part.chars().count() < 2 || part.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let lower = part.to_lowercase();
    if STOP_WORDS.contains(&lower.as_str()) {
        return None;
    }
    Some(STEMMER.stem(&lower).into_owned())
}

/// `verifyHMACSignature_v2` → `verify`, `HMAC`, `Signature`, `v2`.
fn split_identifier(word: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let chars: Vec<(usize, char)> = word.char_indices().collect();
    let mut start = 0;
    for i in 1..chars.len() {
        let (at, c) = chars[i];
        let (_, prev) = chars[i - 1];
        let next_lower = chars.get(i + 1).is_some_and(|(_, n)| n.is_lowercase());
        let boundary = (prev.is_lowercase() && c.is_uppercase())
            || (prev.is_uppercase() && c.is_uppercase() && next_lower)
            || (prev.is_alphabetic() && c.is_ascii_digit() && !prev.is_ascii_alphabetic());
        if boundary {
            parts.push(&word[start..at]);
            start = at;
        }
    }
    if start < word.len() {
        parts.push(&word[start..]);
    }
    parts
}

/// Identifier-like words of a query (`verify_signature`, `HttpClient`,
/// `parse_url`), for the trigram match on symbol names.
pub fn identifiers(query: &str) -> Vec<String> {
    query
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':' || c == '.'))
        .map(|w| w.trim_matches(|c| c == ':' || c == '.'))
        .filter(|w| w.len() >= 3)
        .filter(|w| w.contains('_') || w.contains("::") || w.contains('.') || split_identifier(w).len() > 1)
        .map(str::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_identifiers_and_stems() {
        assert_eq!(terms("verifyWebhookSignatures"), ["verifi", "webhook", "signatur"]);
        assert_eq!(terms("parse_HTTPHeader v2"), ["pars", "http", "header", "v2"]);
        assert_eq!(terms("where do we verify webhook signatures?"), ["verifi", "webhook", "signatur"]);
        assert_eq!(terms("fn x() { return 1; }"), Vec::<String>::new());
    }

    #[test]
    fn finds_identifiers_in_queries() {
        assert_eq!(identifiers("where is verify_signature called"), ["verify_signature"]);
        assert_eq!(identifiers("HttpClient::send"), ["httpclient::send"]);
        assert!(identifiers("plain words only").is_empty());
    }
}
