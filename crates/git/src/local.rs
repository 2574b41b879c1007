//! Writing to a local repository without touching its work tree: commits
//! built in a private index, branches moved by compare-and-swap, merges
//! computed with `git merge-tree`. Hooks never run.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::mirror::{isolated_git, run};
use crate::{Error, Result};

/// A file to write into a commit; `None` deletes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEdit {
    pub path: String,
    pub content: Option<Vec<u8>>,
}

/// The author and committer of commits this process makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub name: String,
    pub email: String,
}

/// What a merge attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeTree {
    Clean { tree: String },
    Conflicts { paths: Vec<String> },
}

#[derive(Debug, Clone)]
pub struct LocalRepository {
    git_dir: PathBuf,
    bare: bool,
}

/// Refuses paths that could escape the tree or reach git's own files.
pub fn check_tree_path(path: &str) -> Result<()> {
    let ok = !path.is_empty()
        && path.len() <= 4096
        && !path.starts_with('/')
        && !path.ends_with('/')
        && !path.chars().any(|c| c.is_control())
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != ".." && !part.eq_ignore_ascii_case(".git"));
    if ok { Ok(()) } else { Err(Error::InvalidUrl(format!("bad file path {path:?}"))) }
}

/// A branch name git accepts and that cannot be read as an option.
pub fn check_branch(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with(['-', '/', '.'])
        && !name.ends_with(['/', '.'])
        && !name.ends_with(".lock")
        && !name.contains("..")
        && !name.contains("//")
        && !name.contains("@{")
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if ok { Ok(()) } else { Err(Error::InvalidUrl(format!("bad branch name {name:?}"))) }
}

impl LocalRepository {
    /// The repository at `path` (a work tree or a bare repository).
    pub async fn open(path: &Path) -> Result<Self> {
        let ceiling = path.parent().unwrap_or(path);
        let out = Command::new("git")
            .arg("-C")
            .arg(path)
            .args(["rev-parse", "--absolute-git-dir", "--is-bare-repository"])
            .env("GIT_CEILING_DIRECTORIES", ceiling)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .stdin(Stdio::null())
            .output()
            .await?;
        if !out.status.success() {
            return Err(Error::NotFound(format!("a git repository at {}", path.display())));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let git_dir = PathBuf::from(lines.next().unwrap_or_default());
        let bare = lines.next() == Some("true");
        Ok(Self { git_dir, bare })
    }

    fn git(&self) -> Command {
        let mut cmd = isolated_git(&self.git_dir);
        cmd.args(["-c", "core.hooksPath=/dev/null"]);
        cmd
    }

    async fn text(&self, args: &[&str], operation: &'static str) -> Result<String> {
        let out = run(self.git().args(args), operation).await?;
        Ok(String::from_utf8_lossy(&out).trim().to_owned())
    }

    /// The commit `git_ref` names.
    pub async fn resolve(&self, git_ref: &str) -> Result<String> {
        if git_ref.starts_with('-') {
            return Err(Error::NotFound(git_ref.to_owned()));
        }
        self.text(&["rev-parse", "--verify", "--quiet", &format!("{git_ref}^{{commit}}")], "rev-parse")
            .await
            .map_err(|_| Error::NotFound(format!("ref {git_ref}")))
    }

    /// The branch HEAD points at.
    pub async fn default_branch(&self) -> Result<String> {
        self.text(&["symbolic-ref", "--short", "HEAD"], "symbolic-ref").await
    }

    /// The branch a work tree has checked out (moving it would leave the
    /// work tree behind); None for a bare repository.
    pub async fn checked_out_branch(&self) -> Result<Option<String>> {
        if self.bare { Ok(None) } else { self.default_branch().await.map(Some) }
    }

    /// A commit of `edits` on top of `parent`, built in a private index.
    pub async fn commit_edits(
        &self,
        parent: &str,
        edits: &[TreeEdit],
        message: &str,
        author: &Signature,
    ) -> Result<String> {
        let scratch = tempfile::Builder::new().prefix("devops-mcp-index").tempdir()?;
        let index = scratch.path().join("index");
        let indexed = |cmd: &mut Command| {
            cmd.env("GIT_INDEX_FILE", &index);
        };
        let mut read = self.git();
        indexed(&mut read);
        run(read.args(["read-tree", parent]), "read-tree").await?;
        let mut info = String::new();
        for edit in edits {
            check_tree_path(&edit.path)?;
            match &edit.content {
                Some(content) => {
                    let oid = self.write_blob(content).await?;
                    info.push_str(&format!("100644 {oid}\t{}\0", edit.path));
                }
                // Mode 0 removes the entry.
                None => info.push_str(&format!("0 0000000000000000000000000000000000000000\t{}\0", edit.path)),
            }
        }
        let mut update = self.git();
        indexed(&mut update);
        self.feed(update.args(["update-index", "-z", "--index-info"]), info.as_bytes(), "update-index").await?;
        let mut write = self.git();
        indexed(&mut write);
        let tree = String::from_utf8_lossy(&run(write.arg("write-tree"), "write-tree").await?).trim().to_owned();
        self.commit_tree(&tree, &[parent], message, author).await
    }

    async fn write_blob(&self, content: &[u8]) -> Result<String> {
        let out = self.feed(self.git().args(["hash-object", "-w", "--stdin"]), content, "hash-object").await?;
        Ok(String::from_utf8_lossy(&out).trim().to_owned())
    }

    /// Runs `cmd` with `input` on its stdin.
    async fn feed(&self, cmd: &mut Command, input: &[u8], operation: &'static str) -> Result<Vec<u8>> {
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
        let mut stdin = child.stdin.take().ok_or_else(|| Error::Git { operation, message: "no stdin".into() })?;
        let input = input.to_vec();
        let writer = tokio::spawn(async move {
            let written = stdin.write_all(&input).await;
            drop(stdin);
            written
        });
        let out = child.wait_with_output().await?;
        writer.await.map_err(|err| Error::Git { operation, message: err.to_string() })??;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(Error::Git { operation, message: String::from_utf8_lossy(&out.stderr).trim().to_owned() })
        }
    }

    pub async fn commit_tree(&self, tree: &str, parents: &[&str], message: &str, author: &Signature) -> Result<String> {
        let mut cmd = self.git();
        cmd.env("GIT_AUTHOR_NAME", &author.name)
            .env("GIT_AUTHOR_EMAIL", &author.email)
            .env("GIT_COMMITTER_NAME", &author.name)
            .env("GIT_COMMITTER_EMAIL", &author.email)
            .args(["commit-tree", tree]);
        for parent in parents {
            cmd.args(["-p", parent]);
        }
        let message = if message.trim().is_empty() { "Change" } else { message };
        let out = self.feed(&mut cmd, message.as_bytes(), "commit-tree").await?;
        Ok(String::from_utf8_lossy(&out).trim().to_owned())
    }

    /// Creates `branch` at `commit`; fails if it exists.
    pub async fn create_branch(&self, branch: &str, commit: &str) -> Result<()> {
        check_branch(branch)?;
        let zero = "0000000000000000000000000000000000000000";
        run(self.git().args(["update-ref", &format!("refs/heads/{branch}"), commit, zero]), "update-ref")
            .await
            .map(|_| ())
    }

    /// Moves `branch` from `expected` to `commit`, or fails if it moved meanwhile.
    pub async fn move_branch(&self, branch: &str, commit: &str, expected: &str) -> Result<()> {
        check_branch(branch)?;
        run(self.git().args(["update-ref", &format!("refs/heads/{branch}"), commit, expected]), "update-ref")
            .await
            .map(|_| ())
    }

    /// The unified diff from the merge base of `base` and `head` to `head`:
    /// what the pull request changes.
    pub async fn diff(&self, base: &str, head: &str) -> Result<String> {
        let range = format!("{base}...{head}");
        let out = run(
            self.git().args([
                "diff",
                "--no-color",
                "--no-ext-diff",
                "--no-textconv",
                "-M",
                "--unified=3",
                &range,
                "--",
            ]),
            "diff",
        )
        .await?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    pub async fn merge_base(&self, a: &str, b: &str) -> Result<String> {
        self.text(&["merge-base", a, b], "merge-base").await
    }

    /// Merges `theirs` into `ours` in memory (optionally from an explicit base).
    pub async fn merge_tree(&self, ours: &str, theirs: &str, base: Option<&str>) -> Result<MergeTree> {
        let mut cmd = self.git();
        cmd.args(["merge-tree", "--write-tree", "--name-only", "--no-messages", "-z"]);
        if let Some(base) = base {
            cmd.arg(format!("--merge-base={base}"));
        }
        let out = cmd.args([ours, theirs]).stdin(Stdio::null()).output().await?;
        let fields: Vec<String> = out
            .stdout
            .split(|b| *b == 0)
            .filter(|f| !f.is_empty())
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect();
        match out.status.code() {
            Some(0) => Ok(MergeTree::Clean { tree: fields.first().cloned().unwrap_or_default() }),
            Some(1) => {
                let mut paths: Vec<String> = fields.into_iter().skip(1).collect();
                paths.dedup();
                Ok(MergeTree::Conflicts { paths })
            }
            _ => Err(Error::Git {
                operation: "merge-tree",
                message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            }),
        }
    }

    /// Commits reachable from `head` but not `base`, oldest first.
    pub async fn commits_between(&self, base: &str, head: &str) -> Result<Vec<String>> {
        let text =
            self.text(&["rev-list", "--reverse", "--topo-order", &format!("{base}..{head}")], "rev-list").await?;
        Ok(text.lines().map(str::to_owned).collect())
    }

    /// A commit's message and first parent.
    pub async fn commit_message(&self, commit: &str) -> Result<String> {
        self.text(&["log", "-1", "--format=%B", commit], "log").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .current_dir(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"])
            .args(args)
            .output()
            .expect("git");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn signature() -> Signature {
        Signature { name: "DevOps MCP".into(), email: "bot@example.com".into() }
    }

    #[tokio::test]
    async fn commits_without_a_work_tree_and_merges_in_memory() {
        let dir = tempfile::tempdir().expect("tempdir");
        git(dir.path(), &["init", "-q"]);
        std::fs::write(dir.path().join("a.txt"), "one\ntwo\n").expect("write");
        std::fs::write(dir.path().join("gone.txt"), "x\n").expect("write");
        git(dir.path(), &["add", "."]);
        git(dir.path(), &["commit", "-qm", "base"]);
        let repo = LocalRepository::open(dir.path()).await.expect("open");
        assert_eq!(repo.checked_out_branch().await.expect("branch"), Some("main".into()));
        let base = repo.resolve("main").await.expect("main");

        let edits = [
            TreeEdit { path: "a.txt".into(), content: Some(b"one\nTWO\n".to_vec()) },
            TreeEdit { path: "src/new.rs".into(), content: Some(b"fn main() {}\n".to_vec()) },
            TreeEdit { path: "gone.txt".into(), content: None },
        ];
        let commit = repo.commit_edits(&base, &edits, "Change things", &signature()).await.expect("commit");
        repo.create_branch("feature/x", &commit).await.expect("branch");
        assert!(repo.create_branch("feature/x", &commit).await.is_err(), "never overwrites");
        assert_eq!(git(dir.path(), &["show", "feature/x:src/new.rs"]), "fn main() {}");
        assert!(
            std::fs::read_to_string(dir.path().join("a.txt")).expect("read").contains("two"),
            "work tree untouched"
        );
        let diff = repo.diff("main", "feature/x").await.expect("diff");
        assert!(
            diff.contains("+TWO") && diff.contains("deleted file mode") && diff.contains("+++ b/src/new.rs"),
            "{diff}"
        );

        let MergeTree::Clean { tree } = repo.merge_tree("main", "feature/x", None).await.expect("merge") else {
            panic!("clean merge expected")
        };
        let merged = repo.commit_tree(&tree, &[&base, &commit], "Merge", &signature()).await.expect("commit");
        assert!(repo.move_branch("main", &merged, &commit).await.is_err(), "compare-and-swap");
        repo.move_branch("main", &merged, &base).await.expect("move");

        let conflicting = [TreeEdit { path: "a.txt".into(), content: Some(b"uno\ndos\n".to_vec()) }];
        let other = repo.commit_edits(&base, &conflicting, "Conflict", &signature()).await.expect("commit");
        let outcome = repo.merge_tree(&merged, &other, None).await.expect("merge");
        assert_eq!(outcome, MergeTree::Conflicts { paths: vec!["a.txt".into()] });
    }

    #[test]
    fn paths_and_branches_that_could_escape_are_refused() {
        for bad in ["", "/etc/passwd", "../x", "a/../b", ".git/config", "a/.GIT/hooks/x", "a//b", "a\nb"] {
            assert!(check_tree_path(bad).is_err(), "{bad:?}");
        }
        assert!(check_tree_path("src/lib.rs").is_ok());
        for bad in ["-x", "a..b", "a.lock", "x@{1}", "a b", "/a"] {
            assert!(check_branch(bad).is_err(), "{bad:?}");
        }
        assert!(check_branch("devops-mcp/pr-1-fix").is_ok());
    }
}
