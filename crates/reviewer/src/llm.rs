//! The optional LLM pass: the diff (cut to a byte budget) goes to an
//! OpenAI-compatible `/v1/chat/completions` endpoint, which answers with
//! findings as JSON. Off unless `reviewer.llm_url` is set. It never fails a
//! review: a timeout, an error or an answer that does not parse only means
//! no LLM findings, and is logged.

use std::time::Duration;

use devops_models::{Finding, FindingCategory, Severity};
use serde::Deserialize;

use crate::diff::FileDiff;
use crate::secrets::SecretScanner;

const RULE: &str = "llm-review";
const MAX_FINDINGS: usize = 20;
const MAX_TEXT: usize = 600;

const INSTRUCTIONS: &str = "You review a unified diff for bugs and security problems a careful senior engineer \
would flag. Report only real problems in added lines. Answer with JSON only: {\"findings\": [{\"file\": path, \
\"line\": line number in the new file, \"severity\": \"low\"|\"medium\"|\"high\", \"message\": what is wrong, \
\"suggestion\": how to fix it}]}. An empty list is a fine answer.";

#[derive(Debug, Clone)]
pub struct LlmReviewer {
    client: reqwest::Client,
    url: String,
    model: String,
    api_key: Option<String>,
    max_diff_bytes: usize,
    max_tokens: u32,
}

#[derive(Debug, Deserialize)]
struct Answer {
    findings: Vec<Suggested>,
}

#[derive(Debug, Deserialize)]
struct Suggested {
    file: String,
    line: u32,
    #[serde(default)]
    severity: String,
    message: String,
    #[serde(default)]
    suggestion: String,
}

impl LlmReviewer {
    /// `base_url` with or without `/v1`; `api_key` from the environment.
    pub fn new(
        base_url: &str,
        model: &str,
        api_key: Option<String>,
        timeout: Duration,
        max_diff_bytes: usize,
        max_tokens: u32,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            client: reqwest::Client::builder().timeout(timeout).build()?,
            url: format!("{}/v1/chat/completions", base_url.trim_end_matches('/').trim_end_matches("/v1")),
            model: model.to_owned(),
            api_key,
            max_diff_bytes,
            max_tokens,
        })
    }

    /// Findings on files of the diff. Lines the diff does not show are kept:
    /// the review moves them to its summary.
    pub async fn review(&self, diff: &str, files: &[FileDiff], scanner: &SecretScanner) -> Vec<Finding> {
        match self.ask(diff).await {
            Ok(answer) => self.findings(answer, files, scanner),
            Err(reason) => {
                tracing::warn!(%reason, "LLM review skipped");
                Vec::new()
            }
        }
    }

    async fn ask(&self, diff: &str) -> Result<Answer, String> {
        let mut cut = self.max_diff_bytes.min(diff.len());
        while !diff.is_char_boundary(cut) {
            cut -= 1;
        }
        let body = serde_json::json!({
            "model": self.model,
            "messages": [
                {"role": "system", "content": INSTRUCTIONS},
                {"role": "user", "content": &diff[..cut]},
            ],
            "response_format": {"type": "json_object"},
            "max_tokens": self.max_tokens,
            "temperature": 0,
        });
        let mut request = self.client.post(&self.url).json(&body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(|err| err.to_string())?;
        if !response.status().is_success() {
            return Err(format!("the endpoint answered {}", response.status()));
        }
        let reply: serde_json::Value = response.json().await.map_err(|err| err.to_string())?;
        let content = reply
            .pointer("/choices/0/message/content")
            .and_then(serde_json::Value::as_str)
            .ok_or("no message content in the answer")?;
        serde_json::from_str(content.trim().trim_start_matches("```json").trim_matches('`'))
            .map_err(|err| format!("the answer is not the findings JSON: {err}"))
    }

    fn findings(&self, answer: Answer, files: &[FileDiff], scanner: &SecretScanner) -> Vec<Finding> {
        answer
            .findings
            .into_iter()
            .filter(|s| s.line > 0 && files.iter().any(|f| f.path == s.file && !f.deleted))
            .take(MAX_FINDINGS)
            .map(|s| {
                let severity = match s.severity.as_str() {
                    "high" | "critical" => Severity::Medium,
                    "medium" => Severity::Low,
                    _ => Severity::Info,
                };
                let message = clean(&s.message, scanner);
                Finding {
                    fingerprint: Finding::fingerprint_of(RULE, &s.file, &message),
                    file: s.file,
                    line: s.line,
                    severity,
                    category: FindingCategory::Quality,
                    rule: RULE.into(),
                    message,
                    suggestion: clean(&s.suggestion, scanner),
                    confidence: 0.5,
                }
            })
            .collect()
    }
}

/// Bounded, single-line, and with any secret the model echoed redacted.
fn clean(text: &str, scanner: &SecretScanner) -> String {
    let mut text: String = text.chars().filter(|c| !c.is_control()).take(MAX_TEXT).collect();
    let mut found = scanner.scan_line("", &text);
    found.sort_by_key(|m| std::cmp::Reverse(m.start));
    for m in found {
        text.replace_range(m.start..m.end, &m.redacted);
    }
    text
}
