//! Splitting files into chunks: syntax-aware with tree-sitter for the
//! languages we parse, line windows for every other text file.
//!
//! A definition (function, method, class, impl, type) that fits the budget
//! is one chunk, with the comments right above it. A container that does not
//! fit (a large class or impl) is split into its members, each carrying the
//! container's header so the chunk still says where it lives. A function
//! that does not fit is cut into line windows under its own name. Code
//! between definitions (imports, constants, statements) becomes windows too,
//! so every line of a file is searchable.

use sha2::{Digest, Sha256};
use tree_sitter::{Language, Node, Parser};

/// Limits on chunk size.
#[derive(Debug, Clone, Copy)]
pub struct ChunkLimits {
    pub max_bytes: usize,
    pub window_lines: usize,
}

impl Default for ChunkLimits {
    fn default() -> Self {
        Self { max_bytes: 3000, window_lines: 60 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub path: String,
    pub language: &'static str,
    /// `Class.method`, `Type::method` or a bare name; empty for windows
    /// outside any definition.
    pub symbol: String,
    /// 1-based, inclusive.
    pub start_line: u32,
    pub end_line: u32,
    pub content: String,
    /// Over symbol and content: equal hashes embed the same.
    pub content_hash: String,
}

/// The languages parsed by syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syntax {
    Rust,
    Python,
    TypeScript,
    Tsx,
    JavaScript,
    Go,
    Java,
}

impl Syntax {
    fn language(self) -> Language {
        match self {
            Syntax::Rust => tree_sitter_rust::LANGUAGE.into(),
            Syntax::Python => tree_sitter_python::LANGUAGE.into(),
            Syntax::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            Syntax::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
            Syntax::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Syntax::Go => tree_sitter_go::LANGUAGE.into(),
            Syntax::Java => tree_sitter_java::LANGUAGE.into(),
        }
    }

    fn separator(self) -> &'static str {
        match self {
            Syntax::Rust => "::",
            _ => ".",
        }
    }
}

/// The language label of `path`, and its parser if we have one.
fn detect(path: &str) -> (&'static str, Option<Syntax>) {
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "rs" => ("rust", Some(Syntax::Rust)),
        "py" | "pyi" => ("python", Some(Syntax::Python)),
        "ts" | "mts" | "cts" => ("typescript", Some(Syntax::TypeScript)),
        "tsx" => ("typescript", Some(Syntax::Tsx)),
        "js" | "jsx" | "mjs" | "cjs" => ("javascript", Some(Syntax::JavaScript)),
        "go" => ("go", Some(Syntax::Go)),
        "java" => ("java", Some(Syntax::Java)),
        "c" | "h" => ("c", None),
        "cc" | "cpp" | "cxx" | "hpp" | "hh" => ("cpp", None),
        "cs" => ("csharp", None),
        "rb" => ("ruby", None),
        "php" => ("php", None),
        "kt" | "kts" => ("kotlin", None),
        "swift" => ("swift", None),
        "scala" => ("scala", None),
        "sh" | "bash" | "zsh" => ("shell", None),
        "sql" => ("sql", None),
        "proto" => ("protobuf", None),
        "md" | "markdown" | "rst" => ("markdown", None),
        "toml" => ("toml", None),
        "yaml" | "yml" => ("yaml", None),
        "json" => ("json", None),
        "html" | "htm" => ("html", None),
        "css" | "scss" | "less" => ("css", None),
        "tf" | "hcl" => ("hcl", None),
        _ if name == "Dockerfile" => ("dockerfile", None),
        _ if name == "Makefile" => ("make", None),
        _ => ("text", None),
    }
}

/// The language label the index records for `path`.
pub fn language_of(path: &str) -> &'static str {
    detect(path).0
}

/// Chunks one file's text.
pub fn chunk_file(path: &str, text: &str, limits: ChunkLimits) -> Vec<Chunk> {
    let (language, syntax) = detect(path);
    let mut chunker = Chunker { path, language, text, lines: line_starts(text), limits, out: Vec::new() };
    let parsed = syntax.and_then(|syntax| {
        let mut parser = Parser::new();
        parser.set_language(&syntax.language()).ok()?;
        Some((syntax, parser.parse(text, None)?))
    });
    match parsed {
        Some((syntax, tree)) => {
            let root = tree.root_node();
            let end = chunker.last_line();
            chunker.members(syntax, root, "", None, 0, end);
        }
        None => {
            let end = chunker.last_line();
            chunker.windows("", None, 0, end);
        }
    }
    chunker.out
}

/// A definition found in the tree.
struct Definition<'t> {
    /// The node whose span is the chunk (includes decorators and `export`).
    outer: Node<'t>,
    name: String,
    /// Present for containers whose members can be chunked separately.
    body: Option<Node<'t>>,
}

struct Chunker<'a> {
    path: &'a str,
    language: &'static str,
    text: &'a str,
    /// Byte offset of each line's start.
    lines: Vec<usize>,
    limits: ChunkLimits,
    out: Vec<Chunk>,
}

impl<'a> Chunker<'a> {
    fn last_line(&self) -> usize {
        self.lines.len().saturating_sub(1)
    }

    /// Chunks the children of `parent` that lie in lines `[from, to]`.
    fn members(
        &mut self,
        syntax: Syntax,
        parent: Node<'_>,
        prefix: &str,
        header: Option<&str>,
        from: usize,
        to: usize,
    ) {
        let mut gap_start = from;
        let mut comment_start: Option<usize> = None;
        let mut cursor = parent.walk();
        let children: Vec<Node<'_>> = parent.named_children(&mut cursor).collect();
        for child in children {
            let (start, end) = (child.start_position().row, child.end_position().row);
            if start < gap_start {
                continue;
            }
            if child.kind().contains("comment") {
                comment_start = comment_start.or(Some(start));
                continue;
            }
            let Some(def) = definition(syntax, child, self.text) else {
                comment_start = None;
                continue;
            };
            // Comments directly above a definition document it.
            let def_start = match comment_start.take() {
                Some(c) if c >= gap_start => c,
                _ => start,
            };
            if def_start > gap_start {
                self.windows(prefix, header, gap_start, def_start - 1);
            }
            let symbol = if prefix.is_empty() {
                def.name.clone()
            } else {
                format!("{prefix}{}{}", syntax.separator(), def.name)
            };
            self.definition(syntax, &def, &symbol, header, def_start, end);
            gap_start = end + 1;
        }
        if gap_start <= to {
            self.windows(prefix, header, gap_start, to);
        }
    }

    fn definition(
        &mut self,
        syntax: Syntax,
        def: &Definition<'_>,
        symbol: &str,
        header: Option<&str>,
        start: usize,
        end: usize,
    ) {
        let span = self.span(start, end);
        let header_len = header.map_or(0, |h| h.len() + 1);
        if span.len() + header_len <= self.limits.max_bytes {
            self.push(symbol, header, start, end);
            return;
        }
        if let Some(body) = def.body {
            // Header: the lines from the definition's start up to its first member.
            let mut cursor = body.walk();
            let first_member = body.named_children(&mut cursor).next().map(|n| n.start_position().row);
            let header_end = match first_member {
                Some(row) if row > def.outer.start_position().row => row - 1,
                _ => def.outer.start_position().row,
            };
            let header_end = header_end.min(def.outer.start_position().row + 4);
            let own_header = self.span(def.outer.start_position().row, header_end).trim_end().to_owned();
            let combined = match header {
                Some(outer) => format!("{outer}\n{own_header}"),
                None => own_header,
            };
            if start < def.outer.start_position().row {
                self.windows(symbol, header, start, def.outer.start_position().row - 1);
            }
            self.members(syntax, body, symbol, Some(&combined), header_end + 1, end);
            return;
        }
        self.windows(symbol, header, start, end);
    }

    /// Line windows over `[from, to]`, skipping blank ones.
    fn windows(&mut self, symbol: &str, header: Option<&str>, from: usize, to: usize) {
        let header_len = header.map_or(0, |h| h.len() + 1);
        let mut start = from;
        while start <= to {
            let mut end = start;
            let mut bytes = self.span(start, start).len();
            while end < to && end + 1 - start < self.limits.window_lines {
                let next = self.span(end + 1, end + 1).len();
                if bytes + next + header_len > self.limits.max_bytes {
                    break;
                }
                bytes += next;
                end += 1;
            }
            if !self.span(start, end).trim().is_empty() {
                self.push(symbol, header, start, end);
            }
            start = end + 1;
        }
    }

    fn push(&mut self, symbol: &str, header: Option<&str>, start: usize, end: usize) {
        let body = self.span(start, end).trim_end();
        // A single line longer than the budget (minified code) is cut.
        let body = truncate_at_char(body, self.limits.max_bytes);
        let content = match header {
            Some(header) => format!("{header}\n{body}"),
            None => body.to_owned(),
        };
        let content_hash = content_hash(symbol, &content);
        self.out.push(Chunk {
            path: self.path.to_owned(),
            language: self.language,
            symbol: symbol.to_owned(),
            start_line: u32::try_from(start + 1).unwrap_or(u32::MAX),
            end_line: u32::try_from(end + 1).unwrap_or(u32::MAX),
            content,
            content_hash,
        });
    }

    /// The text of lines `[start, end]` (0-based, inclusive).
    fn span(&self, start: usize, end: usize) -> &'a str {
        let from = self.lines.get(start).copied().unwrap_or(self.text.len());
        let to = self.lines.get(end + 1).copied().unwrap_or(self.text.len());
        &self.text[from..to.max(from)]
    }
}

fn truncate_at_char(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

fn line_starts(text: &str) -> Vec<usize> {
    let mut starts = vec![0];
    starts.extend(text.match_indices('\n').map(|(i, _)| i + 1).filter(|&i| i < text.len()));
    starts
}

/// The hash that keys embedding reuse.
pub fn content_hash(symbol: &str, content: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(symbol.as_bytes());
    hasher.update([0]);
    hasher.update(content.as_bytes());
    hex::encode(&hasher.finalize()[..16])
}

fn field_text(node: Node<'_>, field: &str, text: &str) -> Option<String> {
    node.child_by_field_name(field).and_then(|n| n.utf8_text(text.as_bytes()).ok()).map(|s| {
        // Generic parameters and whitespace make poor symbol names.
        s.split(['<', '(']).next().unwrap_or(s).split_whitespace().collect::<Vec<_>>().join(" ")
    })
}

/// Whether `node` is a definition, and if so its name and body.
fn definition<'t>(syntax: Syntax, node: Node<'t>, text: &str) -> Option<Definition<'t>> {
    let kind = node.kind();
    let leaf = |name: Option<String>| name.map(|name| Definition { outer: node, name, body: None });
    let container = |name: Option<String>| {
        name.map(|name| Definition { outer: node, name, body: node.child_by_field_name("body") })
    };
    // Wrappers whose inner declaration names the chunk but whose span includes them.
    let unwrap = |inner: Option<Node<'t>>| {
        inner.and_then(|inner| definition(syntax, inner, text)).map(|d| Definition { outer: node, ..d })
    };
    match (syntax, kind) {
        (Syntax::Rust, "function_item" | "function_signature_item") => leaf(field_text(node, "name", text)),
        (
            Syntax::Rust,
            "struct_item" | "enum_item" | "union_item" | "type_item" | "const_item" | "static_item"
            | "macro_definition",
        ) => leaf(field_text(node, "name", text)),
        (Syntax::Rust, "trait_item" | "mod_item") => container(field_text(node, "name", text)),
        (Syntax::Rust, "impl_item") => {
            let ty = field_text(node, "type", text)?;
            let name = match field_text(node, "trait", text) {
                Some(t) => format!("<{ty} as {t}>"),
                None => ty,
            };
            container(Some(name))
        }
        (Syntax::Python, "function_definition") => leaf(field_text(node, "name", text)),
        (Syntax::Python, "class_definition") => container(field_text(node, "name", text)),
        (Syntax::Python, "decorated_definition") => unwrap(node.child_by_field_name("definition")),
        (
            Syntax::TypeScript | Syntax::Tsx | Syntax::JavaScript,
            "function_declaration"
            | "generator_function_declaration"
            | "method_definition"
            | "interface_declaration"
            | "type_alias_declaration"
            | "enum_declaration"
            | "abstract_method_signature",
        ) => leaf(field_text(node, "name", text)),
        (Syntax::TypeScript | Syntax::Tsx | Syntax::JavaScript, "class_declaration" | "abstract_class_declaration") => {
            container(field_text(node, "name", text))
        }
        (Syntax::TypeScript | Syntax::Tsx | Syntax::JavaScript, "export_statement") => {
            unwrap(node.child_by_field_name("declaration"))
        }
        (Syntax::TypeScript | Syntax::Tsx | Syntax::JavaScript, "lexical_declaration" | "variable_declaration") => {
            // `const handler = async (req) => { ... }`
            let mut cursor = node.walk();
            let declarator = node.named_children(&mut cursor).find(|c| c.kind() == "variable_declarator")?;
            let value = declarator.child_by_field_name("value")?;
            matches!(value.kind(), "arrow_function" | "function_expression" | "function" | "class")
                .then(|| leaf(field_text(declarator, "name", text)))
                .flatten()
        }
        (Syntax::Go, "function_declaration") => leaf(field_text(node, "name", text)),
        (Syntax::Go, "method_declaration") => {
            let name = field_text(node, "name", text)?;
            let receiver =
                node.child_by_field_name("receiver").and_then(|r| r.utf8_text(text.as_bytes()).ok()).and_then(|r| {
                    r.trim_matches(['(', ')']).split_whitespace().last().map(|t| t.trim_start_matches('*').to_owned())
                });
            leaf(Some(match receiver {
                Some(receiver) => format!("{receiver}.{name}"),
                None => name,
            }))
        }
        (Syntax::Go, "type_declaration") => {
            let mut cursor = node.walk();
            let spec = node.named_children(&mut cursor).find(|c| c.kind() == "type_spec")?;
            leaf(field_text(spec, "name", text))
        }
        (
            Syntax::Java,
            "class_declaration"
            | "interface_declaration"
            | "enum_declaration"
            | "record_declaration"
            | "annotation_type_declaration",
        ) => container(field_text(node, "name", text)),
        (Syntax::Java, "method_declaration" | "constructor_declaration") => leaf(field_text(node, "name", text)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn symbols(chunks: &[Chunk]) -> Vec<&str> {
        chunks.iter().map(|c| c.symbol.as_str()).collect()
    }

    #[test]
    fn rust_functions_and_impls_with_doc_comments() {
        let src = "use std::fmt;\n\n/// Checks the HMAC.\nfn verify_signature(body: &[u8]) -> bool {\n    true\n}\n\nstruct Hook;\n\nimpl Hook {\n    fn handle(&self) {}\n}\n";
        let chunks = chunk_file("src/hook.rs", src, ChunkLimits::default());
        assert_eq!(symbols(&chunks), ["", "verify_signature", "Hook", "Hook"]);
        assert_eq!(chunks[1].start_line, 3, "the doc comment belongs to the function");
        assert_eq!(chunks[1].end_line, 6);
        assert!(chunks[1].content.starts_with("/// Checks the HMAC."));
        assert_eq!(chunks[0].language, "rust");
    }

    #[test]
    fn an_oversized_class_is_split_into_methods_that_carry_its_header() {
        let methods: String = (0..6)
            .map(|i| {
                format!(
                    "    def method_{i}(self):\n        value = {i}\n{}        return value\n\n",
                    "        value += 1\n".repeat(8)
                )
            })
            .collect();
        let src = format!("import os\n\nclass Handler(Base):\n    \"\"\"Handles things.\"\"\"\n\n{methods}");
        let limits = ChunkLimits { max_bytes: 400, window_lines: 60 };
        let chunks = chunk_file("app/handler.py", &src, limits);
        let method_chunks: Vec<&Chunk> = chunks.iter().filter(|c| c.symbol.starts_with("Handler.method_")).collect();
        assert_eq!(method_chunks.len(), 6, "{:?}", symbols(&chunks));
        for chunk in &method_chunks {
            assert!(chunk.content.starts_with("class Handler(Base):"), "{}", chunk.content);
            assert!(chunk.content.len() <= 400 + 40);
        }
        assert_eq!(method_chunks[0].start_line, 6);
    }

    #[test]
    fn every_parsed_language_yields_named_definitions() {
        let cases = [
            (
                "a.py",
                "def alpha():\n    return 1\n\nclass Beta:\n    def gamma(self):\n        pass\n",
                vec!["alpha", "Beta"],
            ),
            (
                "a.ts",
                "export function alpha(x: number): number { return x }\ninterface Beta { a: string }\nconst gamma = (y: string) => y;\n",
                vec!["alpha", "Beta", "gamma"],
            ),
            ("a.tsx", "export const Alpha = () => <div/>;\n", vec!["Alpha"]),
            ("a.js", "function alpha() {}\nclass Beta { gamma() {} }\n", vec!["alpha", "Beta"]),
            (
                "a.go",
                "package main\n\nfunc alpha() {}\n\ntype Beta struct{}\n\nfunc (b *Beta) Gamma() {}\n",
                vec!["", "alpha", "Beta", "Beta.Gamma"],
            ),
            ("A.java", "class Alpha {\n  void beta() {}\n}\n", vec!["Alpha"]),
        ];
        for (path, src, expected) in cases {
            let chunks = chunk_file(path, src, ChunkLimits::default());
            assert_eq!(symbols(&chunks), expected, "{path}");
        }
    }

    #[test]
    fn other_text_is_chunked_by_line_windows_covering_every_line() {
        let src: String = (1..=130).map(|i| format!("line {i}\n")).collect();
        let chunks = chunk_file("notes/README.md", &src, ChunkLimits { max_bytes: 3000, window_lines: 60 });
        let spans: Vec<(u32, u32)> = chunks.iter().map(|c| (c.start_line, c.end_line)).collect();
        assert_eq!(spans, [(1, 60), (61, 120), (121, 130)]);
        assert_eq!(chunks[0].language, "markdown");
    }

    #[test]
    fn an_oversized_function_becomes_windows_under_its_name() {
        let body: String = (0..200).map(|i| format!("    let v{i} = {i};\n")).collect();
        let src = format!("fn huge() {{\n{body}}}\n");
        let chunks = chunk_file("big.rs", &src, ChunkLimits { max_bytes: 1000, window_lines: 60 });
        assert!(chunks.len() > 3);
        assert!(chunks.iter().all(|c| c.symbol == "huge" && c.content.len() <= 1000));
        assert_eq!(chunks.last().map(|c| c.end_line), Some(202));
    }

    #[test]
    fn equal_content_hashes_equal() {
        let a = chunk_file("x.rs", "fn a() {}\n", ChunkLimits::default());
        let b = chunk_file("moved/y.rs", "fn a() {}\n", ChunkLimits::default());
        assert_eq!(a[0].content_hash, b[0].content_hash);
        let c = chunk_file("x.rs", "fn a() { 1 }\n", ChunkLimits::default());
        assert_ne!(a[0].content_hash, c[0].content_hash);
    }
}
