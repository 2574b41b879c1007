//! Which files of a tree are indexed, and why the others are not.

use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// Why a file was left out; reported to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    Ignored,
    Vendored,
    Generated,
    Binary,
    TooLarge,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Ignored => "gitignored",
            SkipReason::Vendored => "vendored",
            SkipReason::Generated => "generated",
            SkipReason::Binary => "binary",
            SkipReason::TooLarge => "too_large",
        }
    }
}

const VENDORED_DIRS: &[&str] = &[
    "vendor",
    "node_modules",
    "third_party",
    "thirdparty",
    "third-party",
    "bower_components",
    "site-packages",
    ".venv",
    "venv",
    "__pycache__",
    "dist",
    "target",
    ".git",
    ".yarn",
    "Pods",
    "Carthage",
];

const GENERATED_NAMES: &[&str] = &[
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "Cargo.lock",
    "go.sum",
    "poetry.lock",
    "composer.lock",
    "Gemfile.lock",
    "uv.lock",
];

const GENERATED_SUFFIXES: &[&str] = &[
    ".min.js",
    ".min.css",
    ".map",
    ".pb.go",
    "_pb2.py",
    "_pb2_grpc.py",
    ".pb.h",
    ".pb.cc",
    ".g.dart",
    ".designer.cs",
    ".snap",
];

const BINARY_EXTENSIONS: &[&str] = &[
    "png",
    "jpg",
    "jpeg",
    "gif",
    "bmp",
    "ico",
    "webp",
    "svgz",
    "pdf",
    "zip",
    "gz",
    "tgz",
    "bz2",
    "xz",
    "zst",
    "7z",
    "rar",
    "jar",
    "war",
    "class",
    "so",
    "dylib",
    "dll",
    "exe",
    "o",
    "a",
    "lib",
    "bin",
    "wasm",
    "woff",
    "woff2",
    "ttf",
    "otf",
    "eot",
    "mp3",
    "mp4",
    "mov",
    "avi",
    "webm",
    "wav",
    "flac",
    "ogg",
    "psd",
    "sqlite",
    "db",
    "pyc",
    "parquet",
    "onnx",
    "safetensors",
    "pt",
];

/// Decides by path alone, before anything is read.
pub struct PathFilter {
    /// `.gitignore` files of the tree, deepest last.
    ignores: Vec<(String, Gitignore)>,
}

impl PathFilter {
    /// `gitignores` are `(path of the .gitignore, its content)`.
    pub fn new(gitignores: &[(String, String)]) -> Self {
        let mut ignores: Vec<(String, Gitignore)> = gitignores
            .iter()
            .filter_map(|(path, content)| {
                let dir = path.strip_suffix(".gitignore")?.trim_end_matches('/').to_owned();
                let mut builder = GitignoreBuilder::new(if dir.is_empty() { "/" } else { &dir });
                for line in content.lines() {
                    let _ = builder.add_line(None, line);
                }
                Some((dir, builder.build().ok()?))
            })
            .collect();
        ignores.sort_by_key(|(dir, _)| dir.matches('/').count() + usize::from(!dir.is_empty()));
        Self { ignores }
    }

    pub fn check(&self, path: &str, size: u64, max_file_bytes: u64) -> Option<SkipReason> {
        let name = path.rsplit('/').next().unwrap_or(path);
        let dirs = path.split('/').rev().skip(1);
        if dirs.into_iter().any(|d| VENDORED_DIRS.contains(&d)) {
            return Some(SkipReason::Vendored);
        }
        if GENERATED_NAMES.contains(&name) || GENERATED_SUFFIXES.iter().any(|s| name.ends_with(s)) {
            return Some(SkipReason::Generated);
        }
        let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
        if BINARY_EXTENSIONS.contains(&ext.as_str()) {
            return Some(SkipReason::Binary);
        }
        if size > max_file_bytes {
            return Some(SkipReason::TooLarge);
        }
        if self.ignored(path) {
            return Some(SkipReason::Ignored);
        }
        None
    }

    fn ignored(&self, path: &str) -> bool {
        let mut ignored = false;
        for (dir, matcher) in &self.ignores {
            let relative = if dir.is_empty() {
                path
            } else if let Some(rest) = path.strip_prefix(dir.as_str()).and_then(|r| r.strip_prefix('/')) {
                rest
            } else {
                continue;
            };
            let root = if dir.is_empty() { std::path::PathBuf::from("/") } else { std::path::PathBuf::from(dir) };
            let m = matcher.matched_path_or_any_parents(root.join(relative), false);
            if m.is_ignore() {
                ignored = true;
            } else if m.is_whitelist() {
                ignored = false;
            }
        }
        ignored
    }
}

/// Decides by content, once read: binary or machine-generated text.
pub fn check_content(bytes: &[u8]) -> Option<SkipReason> {
    let head = &bytes[..bytes.len().min(8000)];
    if head.contains(&0) || std::str::from_utf8(bytes).is_err() {
        return Some(SkipReason::Binary);
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).to_ascii_lowercase();
    let generated = head.contains("@generated")
        || (head.contains("code generated") && head.contains("do not edit"))
        || head.contains("autogenerated by")
        || head.contains("auto-generated by")
        || head.contains("this file is automatically generated");
    generated.then_some(SkipReason::Generated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_rules() {
        let filter = PathFilter::new(&[
            (".gitignore".into(), "*.log\n/build/\n!keep.log\n".into()),
            ("web/.gitignore".into(), "secret.ts\n".into()),
        ]);
        let check = |p: &str| filter.check(p, 10, 1000);
        assert_eq!(check("src/main.rs"), None);
        assert_eq!(check("debug.log"), Some(SkipReason::Ignored));
        assert_eq!(check("keep.log"), None);
        assert_eq!(check("build/out.js"), Some(SkipReason::Ignored));
        assert_eq!(check("web/secret.ts"), Some(SkipReason::Ignored));
        assert_eq!(check("api/secret.ts"), None);
        assert_eq!(check("web/node_modules/x/index.js"), Some(SkipReason::Vendored));
        assert_eq!(check("static/app.min.js"), Some(SkipReason::Generated));
        assert_eq!(check("Cargo.lock"), Some(SkipReason::Generated));
        assert_eq!(check("logo.PNG"), Some(SkipReason::Binary));
        assert_eq!(filter.check("big.rs", 1001, 1000), Some(SkipReason::TooLarge));
    }

    #[test]
    fn content_rules() {
        assert_eq!(check_content(b"fn main() {}\n"), None);
        assert_eq!(check_content(b"\x7fELF\x00\x00"), Some(SkipReason::Binary));
        assert_eq!(check_content(&[0xff, 0xfe, 0x41]), Some(SkipReason::Binary));
        assert_eq!(
            check_content(b"// Code generated by protoc-gen-go. DO NOT EDIT.\npackage x\n"),
            Some(SkipReason::Generated)
        );
        assert_eq!(check_content(b"# @generated by tool\n"), Some(SkipReason::Generated));
    }
}
