//! Path globs as anchored regular expressions that mean the same to Rust's
//! `regex` (embedded search) and PostgreSQL's `~` (production search).

/// `src/**/*.rs`, `*.py` (any directory), `{api,web}/**`, `file?.[ch]`.
/// A `[` or `{` that does not open a valid class or group is a literal, as
/// in shells, so the only errors are length and control characters.
pub fn to_regex(glob: &str) -> Result<String, String> {
    if glob.is_empty() || glob.len() > 500 || glob.chars().any(char::is_control) {
        return Err("path_glob must be 1-500 printable characters".into());
    }
    let mut out = String::from(if glob.contains('/') { "^" } else { "(^|/)" });
    let chars: Vec<char> = glob.trim_start_matches("./").chars().collect();
    // Braces open a group only when they close, without nesting.
    let closing_brace = |from: usize| chars[from + 1..].iter().position(|&c| c == '}' || c == '{');
    let mut i = 0;
    let mut in_braces = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' if chars.get(i + 1) == Some(&'*') => {
                if chars.get(i + 2) == Some(&'/') {
                    out.push_str("(.*/)?");
                    i += 2;
                } else {
                    out.push_str(".*");
                    i += 1;
                }
            }
            '*' => out.push_str("[^/]*"),
            '?' => out.push_str("[^/]"),
            '[' => match class(&chars[i + 1..]) {
                Some((regex, used)) => {
                    out.push_str(&regex);
                    i += used;
                }
                None => out.push_str("\\["),
            },
            '{' if !in_braces && closing_brace(i).is_some_and(|n| chars[i + 1 + n] == '}') => {
                in_braces = true;
                out.push('(');
            }
            '}' if in_braces => {
                in_braces = false;
                out.push(')');
            }
            ',' if in_braces => out.push('|'),
            // Both regex dialects take `\` before ASCII punctuation as a literal, and reject it elsewhere.
            c if c.is_ascii_punctuation() && c != '/' && c != '_' && c != '-' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
        i += 1;
    }
    out.push('$');
    Ok(out)
}

/// A `[...]` class starting after its `[`: the regex and how many characters
/// it used, or `None` if it is not a valid class.
fn class(rest: &[char]) -> Option<(String, usize)> {
    let end = rest.iter().skip(1).position(|&c| c == ']')? + 1;
    let mut regex = String::from("[");
    for (n, &c) in rest[..end].iter().enumerate() {
        match c {
            '!' if n == 0 => regex.push('^'),
            '\\' | '[' | ']' | '^' | '&' | '~' => {
                regex.push('\\');
                regex.push(c);
            }
            c => regex.push(c),
        }
    }
    regex.push(']');
    regex::Regex::new(&regex).ok().map(|_| (regex, end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(glob: &str, path: &str) -> bool {
        regex::Regex::new(&to_regex(glob).expect("glob")).expect("regex").is_match(path)
    }

    #[test]
    fn globs() {
        assert!(matches("src/**/*.rs", "src/a/b/c.rs"));
        assert!(matches("src/**/*.rs", "src/c.rs"));
        assert!(!matches("src/**/*.rs", "lib/src/c.rs"));
        assert!(matches("*.py", "deep/dir/x.py"));
        assert!(!matches("*.py", "x.pyc"));
        assert!(matches("{api,web}/**", "web/app.ts"));
        assert!(!matches("{api,web}/**", "cli/app.ts"));
        assert!(matches("file?.[ch]", "file1.c"));
        assert!(!matches("file?.[!ch]", "file1.c"));
        assert!(matches("a+b(1).txt", "a+b(1).txt"));
        assert!(matches("dir/ünï cødé.rs", "dir/ünï cødé.rs"));
        assert!(matches("a\\b", "a\\b"));
        assert!(to_regex("a\u{2}b").is_err());
        assert!(matches("a{b{c}", "a{bc"), "only the inner braces close");
        for literal in ["[abc", "{a,b", "[]", "[z-a]"] {
            assert!(matches(literal, literal), "{literal} is a literal");
        }
    }
}
