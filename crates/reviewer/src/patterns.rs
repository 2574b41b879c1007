//! Risky code in added lines: SQL built from strings, shell injection,
//! disabled TLS verification, eval of input, weak cryptography.
//!
//! Line rules, by language where the idiom is language-specific. Comment
//! lines are skipped: code that is only described cannot run.

use std::sync::LazyLock;

use devops_models::Severity;
use regex::Regex;

/// Languages a rule applies to; a rule with none applies to every file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Python,
    JavaScript,
    Go,
    Java,
    Rust,
    Ruby,
    Php,
    Shell,
    CSharp,
    Other,
}

impl Lang {
    pub fn of(path: &str) -> Lang {
        let ext = path.rsplit_once('.').map_or("", |(_, ext)| ext).to_ascii_lowercase();
        match ext.as_str() {
            "py" | "pyi" => Lang::Python,
            "js" | "jsx" | "mjs" | "cjs" | "ts" | "tsx" | "mts" | "cts" => Lang::JavaScript,
            "go" => Lang::Go,
            "java" | "kt" | "kts" | "scala" => Lang::Java,
            "rs" => Lang::Rust,
            "rb" => Lang::Ruby,
            "php" => Lang::Php,
            "sh" | "bash" | "zsh" => Lang::Shell,
            "cs" => Lang::CSharp,
            _ => Lang::Other,
        }
    }

    fn comment_prefixes(self) -> &'static [&'static str] {
        match self {
            Lang::Python | Lang::Ruby | Lang::Shell => &["#"],
            Lang::Php => &["#", "//", "/*", "*"],
            Lang::Other => &["#", "//", "/*", "* ", "--", "<!--"],
            _ => &["//", "/*", "* "],
        }
    }

    /// Whether `line` is only a comment.
    pub fn is_comment(self, line: &str) -> bool {
        let trimmed = line.trim_start();
        trimmed == "*" || self.comment_prefixes().iter().any(|p| trimmed.starts_with(p))
    }
}

pub struct PatternRule {
    pub id: &'static str,
    pub severity: Severity,
    pub confidence: f32,
    pub langs: &'static [Lang],
    pub regex: &'static str,
    pub message: &'static str,
    pub suggestion: &'static str,
}

/// A fragment of SQL that takes values: what injection targets.
const SQL: &str = r"(?:\bselect\b[^;]{0,80}\bfrom\b|\binsert\s+into\b|\bupdate\b\s+\w+\s+\bset\b|\bdelete\s+from\b|\bwhere\b\s+\w+\s*=)";

pub const RULES: &[PatternRule] = &[
    PatternRule {
        id: "sql-string-building",
        severity: Severity::High,
        confidence: 0.8,
        langs: &[],
        // A quoted SQL fragment joined to a value: `+`, `%`, `.format(`,
        // f-strings, template literals, `format!`/`Sprintf` with a hole.
        // `{SQL}` stands for the SQL-fragment pattern.
        regex: r#"(?i)["'`][^"'`]*{SQL}[^"'`]*["'`]+\s*(?:\+|%\s*[\w(]|\.format\()|\bf["'][^"']*{SQL}[^"']*\{|`[^`]*{SQL}[^`]*\$\{|(?:format!|Sprintf|String\.format)\s*\(\s*"[^"]*{SQL}[^"]*(?:\{\}|\{\w+\}|%[sdv])|\+\s*["'][^"']*{SQL}"#,
        message: "SQL is built by joining strings with values: an injection risk.",
        suggestion: "Use bound parameters (`?`, `$1`, `%s` passed separately) instead of building the query text.",
    },
    PatternRule {
        id: "shell-injection",
        severity: Severity::High,
        confidence: 0.75,
        langs: &[Lang::Python],
        regex: r"\bos\.(?:system|popen)\s*\(|\bsubprocess\.\w+\([^)]*shell\s*=\s*True|\bcommands\.getoutput\(",
        message: "A command line runs through the shell: any interpolated value can inject commands.",
        suggestion: "Pass an argument list without `shell=True` (e.g. `subprocess.run([cmd, arg])`).",
    },
    PatternRule {
        id: "shell-injection",
        severity: Severity::High,
        confidence: 0.75,
        langs: &[Lang::JavaScript],
        regex: r"(?:child_process\.|(?:^|[^.\w]))exec(?:Sync)?\s*\(\s*(?:`[^`]*\$\{|[^,)]*\+)",
        message: "A command line built from values runs through the shell.",
        suggestion: "Use `execFile`/`spawn` with an argument array instead of a command string.",
    },
    PatternRule {
        id: "shell-injection",
        severity: Severity::High,
        confidence: 0.7,
        langs: &[Lang::Go, Lang::Rust, Lang::Java, Lang::CSharp, Lang::Ruby, Lang::Php],
        regex: r#"(?:exec\.Command|Command::new|ProcessBuilder|Process\.Start)\s*\(\s*"(?:/bin/)?(?:ba|z)?sh"\s*(?:,\s*"-c"|\)\s*\.arg\("-c"\))|Runtime\.getRuntime\(\)\.exec\(|\b(?:system|exec|shell_exec|passthru)\s*\(\s*["'][^"']*["']\s*\.\s*\$|`[^`]*#\{"#,
        message: "A command line runs through a shell with values spliced in.",
        suggestion: "Run the program directly with an argument list; never pass input to `sh -c`.",
    },
    PatternRule {
        id: "tls-verification-disabled",
        severity: Severity::High,
        confidence: 0.9,
        langs: &[],
        regex: r#"(?i)\bverify\s*=\s*False\b|InsecureSkipVerify\s*:\s*true|rejectUnauthorized\s*:\s*false|NODE_TLS_REJECT_UNAUTHORIZED\s*[=:]\s*["']?0|danger_accept_invalid_(?:certs|hostnames)\s*\(\s*true|CURLOPT_SSL_VERIFY(?:PEER|HOST)\s*,\s*(?:0|false)|ssl\._create_unverified_context|CERT_NONE\b|NoopHostnameVerifier|TrustAllCerts|ServerCertificateValidationCallback\s*=.*=>\s*true|\bcurl\b[^|;]*\s(?:-k|--insecure)\b"#,
        message: "TLS certificate verification is switched off: connections can be intercepted.",
        suggestion: "Keep verification on; trust a private CA by adding its certificate instead.",
    },
    PatternRule {
        id: "eval-of-input",
        severity: Severity::High,
        confidence: 0.7,
        langs: &[Lang::Python],
        regex: r#"(?:^|[^.\w])(?:eval|exec)\s*\(|\bpickle\.loads?\(|\byaml\.load\(\s*[\w.\[\]"']+\s*\)|\byaml\.unsafe_load\(|\bmarshal\.loads\("#,
        message: "Code or objects are built from data at run time: input reaching this runs arbitrary code.",
        suggestion: "Parse the data instead (`ast.literal_eval`, `json.loads`, `yaml.safe_load`).",
    },
    PatternRule {
        id: "eval-of-input",
        severity: Severity::High,
        confidence: 0.7,
        langs: &[Lang::JavaScript, Lang::Php, Lang::Ruby],
        regex: r#"(?:^|[^.\w])eval\s*\(|\bnew\s+Function\s*\(|\bset(?:Timeout|Interval)\s*\(\s*["'`]|\bunserialize\s*\(\s*\$_|\binstance_eval\b"#,
        message: "Code is evaluated from a string at run time.",
        suggestion: "Avoid evaluating strings; dispatch on data instead.",
    },
    PatternRule {
        id: "weak-crypto",
        severity: Severity::Medium,
        confidence: 0.7,
        langs: &[],
        regex: r#"(?i)\bhashlib\.(?:md5|sha1)\s*\(|\bcreateHash\s*\(\s*["'](?:md5|sha1)["']|MessageDigest\.getInstance\s*\(\s*"(?:MD5|SHA-?1)"|\bmd5::compute\b|\bcrypto/(?:md5|sha1|des|rc4)\b|\bDES(?:ede)?/|\b(?:AES|DES)/ECB\b|\bMODE_ECB\b|\bCipher\.getInstance\s*\(\s*"(?:AES|DES)"\s*\)|\bRC4\b|\bSHA1PRNG\b"#,
        message: "A weak hash or cipher mode is used.",
        suggestion: "Use SHA-256 or better for integrity, a password hash (argon2, bcrypt, scrypt) for passwords, and an AEAD mode (AES-GCM, ChaCha20-Poly1305) for encryption.",
    },
];

pub struct Compiled {
    pub rule: &'static PatternRule,
    pub regex: Regex,
}

pub static COMPILED: LazyLock<Vec<Compiled>> = LazyLock::new(|| {
    RULES
        .iter()
        .map(|rule| {
            #[allow(clippy::unwrap_used)] // constants; a unit test compiles each
            let regex = Regex::new(&rule.regex.replace("{SQL}", SQL)).unwrap();
            Compiled { rule, regex }
        })
        .collect()
});

/// The rules that fire on one added line of a file in `lang`.
pub fn scan_line(lang: Lang, line: &str) -> Vec<&'static PatternRule> {
    if lang.is_comment(line) {
        return Vec::new();
    }
    let mut fired: Vec<&'static PatternRule> = Vec::new();
    for compiled in COMPILED.iter() {
        let applies = compiled.rule.langs.is_empty() || compiled.rule.langs.contains(&lang);
        if applies && !fired.iter().any(|r| r.id == compiled.rule.id) && compiled.regex.is_match(line) {
            fired.push(compiled.rule);
        }
    }
    fired
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(path: &str, line: &str) -> Vec<&'static str> {
        scan_line(Lang::of(path), line).iter().map(|r| r.id).collect()
    }

    #[test]
    fn every_rule_compiles() {
        assert_eq!(COMPILED.len(), RULES.len());
    }

    #[test]
    fn risky_lines_fire_their_rule() {
        let cases = [
            ("app.py", "cursor.execute(\"SELECT * FROM users WHERE id = \" + user_id)", "sql-string-building"),
            ("app.py", "cursor.execute(f\"DELETE FROM jobs WHERE id = {job_id}\")", "sql-string-building"),
            ("app.py", "q = \"UPDATE accounts SET balance = %s\" % amount", "sql-string-building"),
            ("db.js", "db.query(`SELECT name FROM users WHERE email = '${email}'`)", "sql-string-building"),
            ("db.go", "q := fmt.Sprintf(\"SELECT * FROM t WHERE name = '%s'\", name)", "sql-string-building"),
            ("db.rs", "let q = format!(\"DELETE FROM items WHERE id = {}\", id);", "sql-string-building"),
            ("Repo.java", "String q = \"select * from orders where id = \" + orderId;", "sql-string-building"),
            ("app.py", "subprocess.run(cmd, shell=True)", "shell-injection"),
            ("app.py", "os.system(\"rm -rf \" + path)", "shell-injection"),
            ("run.js", "exec(`git clone ${url}`)", "shell-injection"),
            ("run.go", "exec.Command(\"sh\", \"-c\", userInput)", "shell-injection"),
            ("client.py", "requests.get(url, verify=False)", "tls-verification-disabled"),
            ("client.go", "tls.Config{InsecureSkipVerify: true}", "tls-verification-disabled"),
            ("client.js", "new https.Agent({ rejectUnauthorized: false })", "tls-verification-disabled"),
            ("client.rs", ".danger_accept_invalid_certs(true)", "tls-verification-disabled"),
            ("deploy.sh", "curl -k https://internal/api", "tls-verification-disabled"),
            ("calc.py", "result = eval(request.args[\"expr\"])", "eval-of-input"),
            ("load.py", "data = pickle.loads(body)", "eval-of-input"),
            ("page.js", "const f = new Function(\"a\", body);", "eval-of-input"),
            ("hash.py", "digest = hashlib.md5(password.encode())", "weak-crypto"),
            ("Enc.java", "Cipher.getInstance(\"AES/ECB/PKCS5Padding\")", "weak-crypto"),
        ];
        for (path, line, rule) in cases {
            assert_eq!(ids(path, line), [rule], "{path}: {line}");
        }
    }

    #[test]
    fn safe_lines_and_comments_stay_quiet() {
        for (path, line) in [
            ("app.py", "cursor.execute(\"SELECT * FROM users WHERE id = %s\", (user_id,))"),
            ("app.py", "# cursor.execute(\"SELECT * FROM users WHERE id = \" + user_id)"),
            ("db.rs", "sqlx::query(\"SELECT id FROM t WHERE name = $1\").bind(name)"),
            ("app.py", "subprocess.run([\"git\", \"clone\", url], check=True)"),
            ("parse.js", "const m = pattern.exec(line);"),
            ("app.py", "model.eval()"),
            ("client.py", "requests.get(url, verify=True)"),
            ("hash.py", "hashlib.sha256(data).hexdigest()"),
            ("log.js", "console.log(\"selected \" + count + \" rows from cache\")"),
            ("README.md", "Select the files from the list, then press Update."),
        ] {
            assert_eq!(ids(path, line), Vec::<&str>::new(), "{path}: {line}");
        }
    }
}
