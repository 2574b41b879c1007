//! Path globs as anchored regular expressions that mean the same to Rust's
//! `regex` (embedded search) and PostgreSQL's `~` (production search).

/// `src/**/*.rs`, `*.py` (any directory), `{api,web}/**`, `file?.[ch]`.
pub fn to_regex(glob: &str) -> Result<String, String> {
    if glob.is_empty() || glob.len() > 500 {
        return Err("path_glob must be 1-500 characters".into());
    }
    let mut out = String::from(if glob.contains('/') { "^" } else { "(^|/)" });
    let chars: Vec<char> = glob.trim_start_matches("./").chars().collect();
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
            '[' => {
                let end = chars[i + 1..].iter().position(|&c| c == ']').ok_or("unclosed [ in path_glob")? + i + 1;
                out.push('[');
                for (n, &c) in chars[i + 1..end].iter().enumerate() {
                    match c {
                        '!' if n == 0 => out.push('^'),
                        '\\' | '[' | ']' => {
                            out.push('\\');
                            out.push(c);
                        }
                        c => out.push(c),
                    }
                }
                out.push(']');
                i = end;
            }
            '{' if !in_braces => {
                in_braces = true;
                out.push('(');
            }
            '}' if in_braces => {
                in_braces = false;
                out.push(')');
            }
            ',' if in_braces => out.push('|'),
            c if c.is_alphanumeric() || c == '/' || c == '_' || c == '-' => out.push(c),
            c => {
                out.push('\\');
                out.push(c);
            }
        }
        i += 1;
    }
    if in_braces {
        return Err("unclosed { in path_glob".into());
    }
    out.push('$');
    Ok(out)
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
        assert!(to_regex("[abc").is_err());
        assert!(to_regex("{a,b").is_err());
    }
}
