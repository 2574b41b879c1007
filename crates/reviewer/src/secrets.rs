//! Secrets in added lines: provider-format rules, a keyword rule gated by
//! entropy, and allowlists for what only looks like a secret.
//!
//! Each line is lower-cased once and searched for every rule's keywords
//! with one Aho-Corasick automaton; only rules whose keyword occurs run
//! their regex. Values never leave this module unredacted.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;
use base64::Engine;
use devops_models::Severity;
use regex::Regex;

/// One credential found in a line. `start..end` is the value's byte range,
/// for callers that mask the line; `redacted` is all that may be shown.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretMatch {
    pub rule: &'static str,
    pub name: &'static str,
    pub severity: Severity,
    pub confidence: f32,
    pub start: usize,
    pub end: usize,
    pub redacted: String,
}

/// How a rule's candidate is vetted before it is reported.
#[derive(Clone, Copy)]
enum Check {
    /// The format alone is convincing.
    Format,
    /// A marker line with no value to vet (a PEM header).
    Marker,
    /// The format plus a minimum Shannon entropy (bits per character).
    Entropy(f64),
    /// Header and payload must decode to JSON objects.
    Jwt,
    /// A password in a URL's user-info.
    UrlPassword,
    /// A value assigned to a credential-like name.
    Keyword,
}

struct Rule {
    id: &'static str,
    name: &'static str,
    /// Lower-case strings one of which must occur in the line.
    keywords: &'static [&'static str],
    /// Group `value` (or the whole match) is the secret.
    regex: &'static str,
    severity: Severity,
    confidence: f32,
    check: Check,
    /// Characters of the value that are a public format marker and may be
    /// shown (`AKIA`, `ghp_`); 0 shows nothing.
    shown_prefix: usize,
}

const RULES: &[Rule] = &[
    Rule {
        id: "aws-access-key-id",
        name: "AWS access key ID",
        keywords: &["akia", "asia", "abia", "acca"],
        regex: r"\b(?P<value>(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})\b",
        severity: Severity::Critical,
        confidence: 0.97,
        check: Check::Format,
        shown_prefix: 4,
    },
    Rule {
        id: "aws-secret-access-key",
        name: "AWS secret access key",
        keywords: &["aws", "secret_access", "secretaccess"],
        regex: r#"(?i)(?:aws|secret_?access).{0,24}?(?:=|:|=>|,)\s*[\x22'`]?(?P<value>[A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#,
        severity: Severity::Critical,
        confidence: 0.9,
        check: Check::Entropy(4.0),
        shown_prefix: 0,
    },
    Rule {
        id: "github-token",
        name: "GitHub token",
        keywords: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        regex: r"\b(?P<value>gh[pousr]_[A-Za-z0-9]{36,251})\b",
        severity: Severity::Critical,
        confidence: 0.98,
        check: Check::Format,
        shown_prefix: 4,
    },
    Rule {
        id: "github-fine-grained-token",
        name: "GitHub fine-grained token",
        keywords: &["github_pat_"],
        regex: r"\b(?P<value>github_pat_[A-Za-z0-9_]{82})\b",
        severity: Severity::Critical,
        confidence: 0.98,
        check: Check::Format,
        shown_prefix: 11,
    },
    Rule {
        id: "gitlab-token",
        name: "GitLab token",
        keywords: &["glpat-", "gldt-", "glrt-", "glptt-", "glcbt-", "gloas-"],
        regex: r"\b(?P<value>gl(?:pat|dt|rt|ptt|cbt|oas)-[A-Za-z0-9_\-]{20,64})(?:[^A-Za-z0-9_\-]|$)",
        severity: Severity::Critical,
        confidence: 0.97,
        check: Check::Entropy(3.0),
        shown_prefix: 6,
    },
    Rule {
        id: "slack-token",
        name: "Slack token",
        keywords: &["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xoxe"],
        regex: r"\b(?P<value>xox(?:[bpars]|e(?:\.xox[bp])?)-[0-9A-Za-z\-]{10,250})\b",
        severity: Severity::High,
        confidence: 0.95,
        check: Check::Entropy(3.0),
        shown_prefix: 5,
    },
    Rule {
        id: "slack-webhook",
        name: "Slack incoming webhook URL",
        keywords: &["hooks.slack.com"],
        regex: r"(?P<value>https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/_\-]{20,120})",
        severity: Severity::High,
        confidence: 0.95,
        check: Check::Entropy(3.0),
        shown_prefix: 0,
    },
    Rule {
        id: "discord-webhook",
        name: "Discord webhook URL",
        keywords: &["discord.com/api/webhooks", "discordapp.com/api/webhooks"],
        regex: r"(?P<value>https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d{5,30}/[A-Za-z0-9_\-]{60,80})",
        severity: Severity::High,
        confidence: 0.95,
        check: Check::Format,
        shown_prefix: 0,
    },
    Rule {
        id: "telegram-bot-token",
        name: "Telegram bot token",
        keywords: &[":aa"],
        regex: r"\b(?P<value>\d{8,10}:AA[0-9A-Za-z_\-]{33})(?:[^0-9A-Za-z_\-]|$)",
        severity: Severity::High,
        confidence: 0.9,
        check: Check::Format,
        shown_prefix: 0,
    },
    Rule {
        id: "stripe-live-key",
        name: "Stripe live secret key",
        keywords: &["sk_live_", "rk_live_"],
        regex: r"\b(?P<value>[sr]k_live_[0-9A-Za-z]{24,247})\b",
        severity: Severity::Critical,
        confidence: 0.98,
        check: Check::Format,
        shown_prefix: 8,
    },
    Rule {
        id: "stripe-test-key",
        name: "Stripe test secret key",
        keywords: &["sk_test_", "rk_test_"],
        regex: r"\b(?P<value>[sr]k_test_[0-9A-Za-z]{24,247})\b",
        severity: Severity::Medium,
        confidence: 0.9,
        check: Check::Entropy(3.5),
        shown_prefix: 8,
    },
    Rule {
        id: "google-api-key",
        name: "Google API key",
        keywords: &["aiza"],
        regex: r"\b(?P<value>AIza[0-9A-Za-z_\-]{35})(?:[^0-9A-Za-z_\-]|$)",
        severity: Severity::High,
        confidence: 0.95,
        check: Check::Format,
        shown_prefix: 4,
    },
    Rule {
        id: "openai-api-key",
        name: "OpenAI API key",
        keywords: &["t3blbkfj"],
        regex: r"\b(?P<value>sk-(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_\-]{20,160}T3BlbkFJ[A-Za-z0-9_\-]{20,160})(?:[^A-Za-z0-9_\-]|$)",
        severity: Severity::Critical,
        confidence: 0.98,
        check: Check::Format,
        shown_prefix: 3,
    },
    Rule {
        id: "anthropic-api-key",
        name: "Anthropic API key",
        keywords: &["sk-ant-"],
        regex: r"\b(?P<value>sk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_\-]{80,120})(?:[^A-Za-z0-9_\-]|$)",
        severity: Severity::Critical,
        confidence: 0.98,
        check: Check::Format,
        shown_prefix: 7,
    },
    Rule {
        id: "npm-token",
        name: "npm access token",
        keywords: &["npm_"],
        regex: r"\b(?P<value>npm_[A-Za-z0-9]{36})\b",
        severity: Severity::Critical,
        confidence: 0.95,
        check: Check::Entropy(3.5),
        shown_prefix: 4,
    },
    Rule {
        id: "pypi-token",
        name: "PyPI upload token",
        keywords: &["pypi-ageichlwas5vcmc"],
        regex: r"(?P<value>pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,})",
        severity: Severity::Critical,
        confidence: 0.98,
        check: Check::Format,
        shown_prefix: 5,
    },
    Rule {
        id: "sendgrid-api-key",
        name: "SendGrid API key",
        keywords: &["sg."],
        regex: r"\b(?P<value>SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43})(?:[^A-Za-z0-9_\-]|$)",
        severity: Severity::High,
        confidence: 0.97,
        check: Check::Format,
        shown_prefix: 3,
    },
    Rule {
        id: "twilio-api-key",
        name: "Twilio API key",
        keywords: &["sk"],
        regex: r"\b(?P<value>SK[0-9a-f]{32})\b",
        severity: Severity::High,
        confidence: 0.8,
        check: Check::Entropy(3.2),
        shown_prefix: 2,
    },
    Rule {
        id: "mailgun-api-key",
        name: "Mailgun API key",
        keywords: &["key-"],
        regex: r"\b(?P<value>key-[0-9a-f]{32})\b",
        severity: Severity::High,
        confidence: 0.85,
        check: Check::Entropy(3.2),
        shown_prefix: 4,
    },
    Rule {
        id: "shopify-token",
        name: "Shopify access token",
        keywords: &["shpat_", "shpca_", "shppa_", "shpss_"],
        regex: r"\b(?P<value>shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32})\b",
        severity: Severity::High,
        confidence: 0.97,
        check: Check::Format,
        shown_prefix: 6,
    },
    Rule {
        id: "azure-storage-key",
        name: "Azure storage account key",
        keywords: &["accountkey="],
        regex: r"(?i)AccountKey=(?P<value>[A-Za-z0-9+/]{86}==)",
        severity: Severity::Critical,
        confidence: 0.97,
        check: Check::Format,
        shown_prefix: 0,
    },
    Rule {
        id: "private-key",
        name: "private key",
        keywords: &["private key"],
        regex: r"-----BEGIN[ A-Z0-9]{0,20} PRIVATE KEY(?: BLOCK)?-----",
        severity: Severity::Critical,
        confidence: 0.97,
        check: Check::Marker,
        shown_prefix: 0,
    },
    Rule {
        id: "jwt",
        name: "JSON Web Token",
        keywords: &["eyj"],
        regex: r"\b(?P<value>eyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{16,})(?:[^A-Za-z0-9_\-.]|$)",
        severity: Severity::High,
        confidence: 0.85,
        check: Check::Jwt,
        shown_prefix: 0,
    },
    Rule {
        id: "url-credentials",
        name: "password in a connection URL",
        keywords: &["://"],
        regex: r"(?i)\b[a-z][a-z0-9+.\-]{1,20}://(?P<user>[^\s:/@'\x22`]{1,64}):(?P<value>[^\s/@'\x22`]{3,128})@(?P<host>[a-z0-9.\-_\[\]]{1,253})",
        severity: Severity::High,
        confidence: 0.85,
        check: Check::UrlPassword,
        shown_prefix: 0,
    },
    Rule {
        id: "generic-credential",
        name: "credential assigned in code or configuration",
        keywords: &["pass", "pwd", "secret", "token", "key", "credential", "connectionstring"],
        regex: r#"(?i)(?:^|[^a-z0-9_])(?P<name>[a-z0-9_.\-]{0,40}?(?:password|passwd|passphrase|pwd|secret|token|api[_.\-]?key|apikey|[a-z0-9][_.\-]key|credentials?|connection[_.\-]?string)(?:[_.\-]base)?)[\x22'`]?\s*(?:\]\s*)?(?::=|=>|==|=|:|,|>)\s*(?:[rbuf]?[\x22'`])?(?P<value>[^\s\x22'`;,<>(){}\[\]]{6,200})"#,
        severity: Severity::High,
        confidence: 0.7,
        check: Check::Keyword,
        shown_prefix: 0,
    },
];

/// Values published in vendors' documentation as examples.
const DOCUMENTED_EXAMPLES: &[&str] = &[
    "AKIAIOSFODNN7EXAMPLE",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
    "sk_test_BQokikJOvBiI2HlWgH4olfQ2",
    "rk_test_4eC39HqLyjWDarjtT1zdp7dc",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
];

/// Words that mark a value as a stand-in rather than a credential.
const PLACEHOLDER_WORDS: &[&str] = &[
    "example",
    "sample",
    "dummy",
    "placeholder",
    "changeme",
    "change_me",
    "change-me",
    "your_",
    "your-",
    "yourkey",
    "redacted",
    "notreal",
    "not_real",
    "not-a-real",
    "fake",
    "insert",
    "replace",
    "todo",
    "<",
    "${",
    "#{",
    "{{",
    "%(",
    "$(",
];

/// Values that are names or literals, not secrets.
const NON_SECRET_VALUES: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "true",
    "false",
    "null",
    "none",
    "nil",
    "undefined",
    "required",
    "optional",
    "string",
    "bearer",
    "basic",
    "hidden",
    "empty",
    "default",
    "unknown",
    "test",
    "testing",
];

/// Names that look like credential names but hold public or derived values.
const NON_SECRET_NAMES: &[&str] = &[
    "public",
    "publishable",
    "pub_key",
    "pubkey",
    "hash",
    "digest",
    "checksum",
    "sha",
    "fingerprint",
    "cache",
    "sort",
    "primary",
    "foreign",
    "partition",
    "lookup",
    "idempotency",
    "index",
    "map",
    "field",
    "column",
    "type",
    "name",
    "id",
    "length",
    "len",
    "size",
    "count",
    "max",
    "min",
    "file",
    "path",
    "url",
    "uri",
    "env",
    "header",
    "prefix",
    "format",
    "kind",
    "label",
    "policy",
    "ref",
    "var",
    "param",
    "event",
    "encoding",
    "algorithm",
    "timeout",
];

/// Files whose contents are machine-written hashes and resolved versions.
const LOCKFILES: &[&str] = &[
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "cargo.lock",
    "poetry.lock",
    "pipfile.lock",
    "go.sum",
    "composer.lock",
    "gemfile.lock",
    "uv.lock",
    "bun.lock",
    "flake.lock",
    "packages.lock.json",
];

struct Compiled {
    regexes: Vec<Regex>,
    keywords: AhoCorasick,
    /// Keyword pattern index → rule index.
    keyword_rule: Vec<usize>,
}

static COMPILED: LazyLock<Compiled> = LazyLock::new(|| {
    #[allow(clippy::unwrap_used)] // the rules are constants; the unit tests compile every one
    let regexes = RULES.iter().map(|rule| Regex::new(rule.regex).unwrap()).collect();
    let mut patterns = Vec::new();
    let mut keyword_rule = Vec::new();
    for (index, rule) in RULES.iter().enumerate() {
        for keyword in rule.keywords {
            patterns.push(*keyword);
            keyword_rule.push(index);
        }
    }
    #[allow(clippy::unwrap_used)]
    let keywords = AhoCorasick::new(&patterns).unwrap();
    Compiled { regexes, keywords, keyword_rule }
});

static DOTTED_IDENTIFIER: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::unwrap_used)]
    Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+$").unwrap()
});

static UUID: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::unwrap_used)]
    Regex::new(r"^(?i)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$").unwrap()
});

/// The secret scanner, with the operator's extra allow patterns.
#[derive(Clone, Default)]
pub struct SecretScanner {
    allow: Vec<Regex>,
}

impl SecretScanner {
    /// `allow`: regular expressions; a value matching any is never reported.
    pub fn new(allow: &[String]) -> Result<Self, regex::Error> {
        Ok(Self { allow: allow.iter().map(|p| Regex::new(p)).collect::<Result<_, _>>()? })
    }

    /// Every secret in `line` of the file at `path`, one per value.
    pub fn scan_line(&self, path: &str, line: &str) -> Vec<SecretMatch> {
        let compiled = &*COMPILED;
        let lower = line.to_ascii_lowercase();
        let mut candidates = vec![false; RULES.len()];
        for hit in compiled.keywords.find_overlapping_iter(&lower) {
            candidates[compiled.keyword_rule[hit.pattern().as_usize()]] = true;
        }
        if !candidates.iter().any(|&c| c) {
            return Vec::new();
        }
        let lockfile = is_lockfile(path);
        let mut found: Vec<SecretMatch> = Vec::new();
        for (index, rule) in RULES.iter().enumerate() {
            if !candidates[index] || (lockfile && matches!(rule.check, Check::Keyword | Check::Entropy(_))) {
                continue;
            }
            for captures in compiled.regexes[index].captures_iter(line) {
                let Some(whole) = captures.get(0) else { continue };
                let value = captures.name("value").unwrap_or(whole);
                // A span another rule already reported is one secret, not two.
                if found.iter().any(|f| f.start < value.end() && value.start() < f.end) {
                    continue;
                }
                let confidence = match self.vet(rule, &captures, value.as_str()) {
                    Some(confidence) => confidence,
                    None => continue,
                };
                found.push(SecretMatch {
                    rule: rule.id,
                    name: rule.name,
                    severity: rule.severity,
                    confidence,
                    start: value.start(),
                    end: value.end(),
                    redacted: redact(value.as_str(), rule.shown_prefix),
                });
            }
        }
        found
    }

    /// The confidence of a candidate, or None when it is not a secret.
    fn vet(&self, rule: &Rule, captures: &regex::Captures<'_>, value: &str) -> Option<f32> {
        if DOCUMENTED_EXAMPLES.contains(&value) || self.allow.iter().any(|allow| allow.is_match(value)) {
            return None;
        }
        if !matches!(rule.check, Check::Marker) && looks_like_placeholder(value) {
            return None;
        }
        match rule.check {
            Check::Format | Check::Marker => Some(rule.confidence),
            Check::Entropy(minimum) => (entropy(value) >= minimum).then_some(rule.confidence),
            Check::Jwt => is_jwt(value).then_some(rule.confidence),
            Check::UrlPassword => {
                let user = captures.name("user").map_or("", |m| m.as_str());
                let host = captures.name("host").map_or("", |m| m.as_str()).to_ascii_lowercase();
                let documentation_host = ["example.com", "example.org", "example.net", "host", "hostname"]
                    .iter()
                    .any(|h| host == *h || host.ends_with(&format!(".{h}")));
                let reference = value.starts_with('$') || value.starts_with('%') || value.contains('{');
                (!documentation_host && !reference && value != user && !is_non_secret_value(value))
                    .then_some(rule.confidence)
            }
            Check::Keyword => {
                let name = captures.name("name").map_or("", |m| m.as_str()).to_ascii_lowercase();
                generic_confidence(&name, value)
            }
        }
    }
}

/// A value assigned to a credential-like name is reported when it looks
/// like a credential: not a reference, identifier, number, path, UUID or
/// hash, with enough variety for its kind.
fn generic_confidence(name: &str, value: &str) -> Option<f32> {
    let parts: Vec<&str> = name.split(['_', '-', '.']).collect();
    if NON_SECRET_NAMES.iter().any(|word| parts.contains(word) || name.starts_with(word) && name.len() > word.len() + 3)
        && !name.ends_with("secret")
    {
        return None;
    }
    if is_non_secret_value(value) || is_reference(value) || UUID.is_match(value) {
        return None;
    }
    if value.starts_with(['/', '.', ':', '~'])
        || value.contains("://")
        || value.contains("%2F")
        || value.contains("%2f")
    {
        return None; // paths and URLs
    }
    let code = value.trim_start_matches(['&', '*', '!']);
    if code.contains("::") || code.contains("->") || DOTTED_IDENTIFIER.is_match(code) {
        return None; // code: `Type::method`, `self.config.token`
    }
    let hex = value.chars().all(|c| c.is_ascii_hexdigit());
    if hex && matches!(value.len(), 32 | 40 | 56 | 64 | 96 | 128) && name.contains("hash") {
        return None;
    }
    if value.starts_with("sha256:") || value.starts_with("sha512-") || value.starts_with("sha1-") {
        return None;
    }
    let has_digit = value.chars().any(|c| c.is_ascii_digit());
    let has_symbol = value.chars().any(|c| !c.is_ascii_alphanumeric());
    let has_upper = value.chars().any(|c| c.is_ascii_uppercase());
    let has_lower = value.chars().any(|c| c.is_ascii_lowercase());
    // Identifiers and words (`user_password`, `SecretName`) carry no digit.
    if !has_digit && (!has_symbol || value.chars().all(|c| c.is_ascii_alphabetic() || c == '_' || c == '.' || c == '-'))
    {
        return None;
    }
    if value.chars().all(|c| c.is_ascii_digit() || c == '.' || c == '_') {
        return None; // numbers and versions
    }
    let password = ["password", "passwd", "passphrase", "pwd"].iter().any(|w| name.contains(w));
    let classes = [has_digit, has_symbol, has_upper, has_lower].iter().filter(|&&c| c).count();
    let bits = entropy(value);
    if password {
        (value.len() >= 8 && classes >= 3 && bits >= 2.8).then_some(0.75)
    } else if value.len() >= 16 && bits >= 3.3 && classes >= 2 {
        Some(if bits >= 4.0 { 0.85 } else { 0.7 })
    } else {
        None
    }
}

fn is_non_secret_value(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    NON_SECRET_VALUES.contains(&lower.as_str())
}

/// Interpolations and lookups: the secret lives elsewhere.
fn is_reference(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    // `%NAME%` (Windows), and YAML tags, anchors and aliases or annotations
    // (`!Ref`, `*defaults`, `@Value`): a marker then a plain name.
    let marked_name = value.starts_with(['!', '&', '*', '@'])
        && value[1..].chars().all(|c| c.is_ascii_alphabetic() || c == '_' || c == '-');
    value.starts_with('$')
        || (value.starts_with('%') && value.ends_with('%'))
        || marked_name
        || ["process.env", "os.environ", "os.getenv", "env.", "env::", "getenv", "secrets.", "vault:", "arn:aws:"]
            .iter()
            .any(|marker| lower.starts_with(marker))
}

fn looks_like_placeholder(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    if PLACEHOLDER_WORDS.iter().any(|word| lower.contains(word)) || value.ends_with("EXAMPLE") {
        return true;
    }
    // Runs of a filler character (`xxxxx`, `XXXXX`, `*****`, `00000`), and
    // counting sequences. Case matters: `Xxxx` inside a random token is chance.
    let bytes = value.as_bytes();
    if bytes
        .windows(5)
        .any(|w| matches!(w[0], b'x' | b'X' | b'*' | b'0' | b'.' | b'#' | b'-' | b'_') && w.iter().all(|&b| b == w[0]))
    {
        return true;
    }
    ["0123456", "1234567", "abcdefg"].iter().any(|run| lower.contains(run))
}

fn is_lockfile(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    LOCKFILES.contains(&name.as_str())
}

/// Shannon entropy in bits per character.
pub fn entropy(value: &str) -> f64 {
    let mut counts = [0u32; 256];
    for &byte in value.as_bytes() {
        counts[usize::from(byte)] += 1;
    }
    let len = value.len() as f64;
    if len == 0.0 {
        return 0.0;
    }
    counts.iter().filter(|&&c| c > 0).map(|&c| f64::from(c) / len).map(|p| -p * p.log2()).sum()
}

/// Header and payload are base64url JSON objects, the header with `alg`.
fn is_jwt(value: &str) -> bool {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts = value.split('.');
    let decode = |part: Option<&str>| -> Option<serde_json::Value> {
        let bytes = engine.decode(part?.trim_end_matches('=')).ok()?;
        serde_json::from_slice::<serde_json::Value>(&bytes).ok().filter(serde_json::Value::is_object)
    };
    let header = decode(parts.next());
    let payload = decode(parts.next());
    matches!((header, payload), (Some(h), Some(_)) if h.get("alg").is_some())
}

/// What may be shown of a value: a public format marker, then its length.
fn redact(value: &str, shown_prefix: usize) -> String {
    let shown: String = value.chars().take(shown_prefix.min(value.len() / 3)).collect();
    format!("{shown}…[redacted, {} characters]", value.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_in(path: &str, line: &str) -> Vec<&'static str> {
        SecretScanner::default().scan_line(path, line).into_iter().map(|m| m.rule).collect()
    }

    #[test]
    fn every_rule_compiles_and_has_lower_case_keywords() {
        assert_eq!(COMPILED.regexes.len(), RULES.len());
        for rule in RULES {
            assert!(rule.keywords.iter().all(|k| *k == k.to_ascii_lowercase()), "{}", rule.id);
        }
    }

    #[test]
    fn provider_formats_are_found_and_redacted() {
        let cases = [
            ("aws-access-key-id", "aws_access_key_id = AKIAQ3EGUVWXF4ZN7KPD"),
            ("aws-secret-access-key", "aws_secret_access_key = \"q8Zr3vT0Xb7Kp2Wm9Ns4Yc6Ld1Fh5Jg8Ae3Ru0Vi\""),
            ("github-token", "token: ghp_R8sT2vX9qL4mN7pK1wZ3yB6cD0fG5hJ8kQ2a"),
            ("gitlab-token", "GITLAB_TOKEN=glpat-Xr4Tq9Zm2Kw7Bn5Lp8Vd"),
            ("slack-token", "SLACK=xoxb-2837465019-4829103756-Qm8Rt2Xz9Kp4Wn7Lb3Vc"),
            ("stripe-live-key", "Stripe.api_key = 'sk_live_51Hq8ZrT3vXb7Kp2Wm9Ns4YcLd'"),
            ("google-api-key", "\"apiKey\": \"AIzaSyB3xR9tQ7mZ2kW8pL4nV6cJ1dF0hG5sYq3\""),
            ("private-key", "-----BEGIN OPENSSH PRIVATE KEY-----"),
            ("sendgrid-api-key", "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"),
            ("url-credentials", "DATABASE_URL=postgres://app:Zq8vN2mK4pL9@db.internal:5432/app"),
            ("generic-credential", "db_password = \"Xk9#mP2$vL5q\""),
            ("generic-credential", "export SERVICE_API_KEY=f7Kq2Zx9Lm4Tn8Rb3Wp6Yc1V"),
        ];
        for (rule, line) in cases {
            let found = SecretScanner::default().scan_line("config/app.yaml", line);
            assert_eq!(found.iter().map(|m| m.rule).collect::<Vec<_>>(), [rule], "{line}");
            let secret = &line[found[0].start..found[0].end];
            assert!(!found[0].redacted.contains(secret), "{rule}: {}", found[0].redacted);
        }
        let jwt = "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzdmMtYmlsbGluZyIsImV4cCI6MTc5MDAwMDAwMH0.kT3qP8vX2mZr9Lw4Bn7Yc1Df5Gh0Js6Ka";
        assert_eq!(rules_in("a.http", jwt), ["jwt"]);
    }

    #[test]
    fn look_alikes_are_never_reported() {
        for line in [
            "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "stripe.api_key = \"sk_test_4eC39HqLyjWDarjtT1zdp7dc\"",
            "token: ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "password = \"${DB_PASSWORD}\"",
            "password: {{ .Values.db.password }}",
            "api_key = os.environ[\"API_KEY\"]",
            "secret = process.env.SECRET",
            "password = \"changeme\"",
            "API_KEY=<your-api-key>",
            "request_id = \"3f2b8c1e-9d4a-4f6b-8e2c-7a1d5b9c0e3f\"",
            "commit_hash = \"9fceb02d0ae598e95dc970b74767f19372d61af8\"",
            "\"integrity\": \"sha512-v2kDEe57lecTulaDIuNTPy3Ry4gLGJ6Z1O3vE1krgXZNrsQ+5/6UBJhRXjLnsvG5Y3nJ2bj8dS4FeW3SyHf0kg==\"",
            "let token = get_token();",
            "password_hash = bcrypt(password)",
            "max_tokens = 4096",
            "token_type: bearer",
            "public_key = \"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\"",
            "postgres://user:password@localhost:5432/db",
            "postgres://postgres:postgres@localhost/app",
            "https://user:pass@example.com/repo.git",
            "jwt = eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
            "SECRET_NAME = \"prod/app/database\"",
            "password_field = \"password\"",
        ] {
            assert_eq!(rules_in("src/settings.py", line), Vec::<&str>::new(), "{line}");
        }
        let lock =
            "\"resolved\": \"https://registry.npmjs.org/x\", \"token\": \"9fceb02d0ae598e95dc970b74767f19372d61af8aa\"";
        assert!(rules_in("package-lock.json", lock).is_empty());
    }

    #[test]
    fn operator_allow_patterns_silence_values() {
        let scanner = SecretScanner::new(&["^ghp_R8sT2".into()]).expect("allow");
        assert!(scanner.scan_line("a", "ghp_R8sT2vX9qL4mN7pK1wZ3yB6cD0fG5hJ8kQ2a").is_empty());
        assert!(SecretScanner::new(&["(".into()]).is_err());
    }

    #[test]
    fn entropy_separates_words_from_random_strings() {
        assert!(entropy("aaaaaaaa") < 0.01);
        assert!(entropy("passwordpassword") < 3.0);
        assert!(entropy("q8Zr3vT0Xb7Kp2Wm9Ns4Yc6Ld1Fh5Jg8") > 4.0);
    }
}
