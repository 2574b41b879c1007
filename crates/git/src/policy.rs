//! Which repository URLs may be fetched: the SSRF guard.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use url::Url;

use crate::{Error, Result};

/// The operator's allow-lists. Empty lists allow only public https/ssh hosts.
#[derive(Debug, Clone, Default)]
pub struct UrlPolicy {
    /// Host names (exact, case-insensitive) that may resolve to private or
    /// loopback addresses, e.g. a self-hosted GitLab on the VPC.
    pub allowed_hosts: Vec<String>,
    /// Directories under which `file://` URLs and plain paths are allowed.
    pub allowed_local_paths: Vec<PathBuf>,
}

/// Where a checked repository lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoLocation {
    /// https or ssh, with the addresses the policy approved.
    Remote { scheme: String, host: String, port: u16, addrs: Vec<IpAddr> },
    /// A repository on this machine (an allow-listed directory).
    Local { path: PathBuf },
}

/// A URL that passed the policy, in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedUrl {
    /// The URL git fetches; also the repository's identity (no credentials).
    pub url: String,
    pub location: RepoLocation,
}

impl CheckedUrl {
    /// `owner/name`-like display name: the last two path segments, no `.git`.
    pub fn display_name(&self) -> String {
        let trimmed = self.url.trim_end_matches('/').trim_end_matches(".git");
        let parts: Vec<&str> = trimmed.rsplit(['/', ':']).take(2).collect();
        parts.into_iter().rev().collect::<Vec<_>>().join("/")
    }
}

impl UrlPolicy {
    /// Parses `raw` (an https/ssh URL, scp-style `git@host:owner/repo`,
    /// `file://` URL or absolute path), checks it, and resolves remote hosts.
    pub async fn check(&self, raw: &str) -> Result<CheckedUrl> {
        let url = self.canonical(raw)?;
        match url.scheme() {
            "file" => {
                let path = url.to_file_path().map_err(|()| Error::InvalidUrl(format!("{raw}: not a local path")))?;
                let path = self.local_path(&path)?;
                let url = Url::from_file_path(&path).map_err(|()| Error::InvalidUrl(raw.to_owned()))?;
                Ok(CheckedUrl { url: url.to_string(), location: RepoLocation::Local { path } })
            }
            scheme @ ("https" | "ssh") => {
                let host = url.host_str().ok_or_else(|| Error::InvalidUrl(format!("{raw}: no host")))?;
                let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
                let port = url.port_or_known_default().unwrap_or(22);
                let addrs = self.resolve(&host, port).await?;
                Ok(CheckedUrl {
                    url: strip_credentials(url.clone()).to_string(),
                    location: RepoLocation::Remote { scheme: scheme.to_owned(), host, port, addrs },
                })
            }
            other => Err(Error::Forbidden(format!("scheme {other:?} is not allowed; use https or ssh"))),
        }
    }

    /// The canonical URL `raw` would be registered under, without checking
    /// or resolving anything: for looking a repository up by what a user typed.
    pub fn identity(&self, raw: &str) -> Option<String> {
        let url = self.canonical(raw).ok()?;
        if url.scheme() == "file" {
            let path = url.to_file_path().ok()?;
            let path = std::fs::canonicalize(&path).unwrap_or(path);
            return Url::from_file_path(path).ok().map(|u| u.to_string());
        }
        Some(strip_credentials(url).to_string())
    }

    fn canonical(&self, raw: &str) -> Result<Url> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(Error::InvalidUrl("empty URL".into()));
        }
        if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(Error::InvalidUrl("URL contains whitespace or control characters".into()));
        }
        // Arguments starting with '-' would reach git as options.
        if raw.starts_with('-') {
            return Err(Error::InvalidUrl(format!("{raw}: must not start with '-'")));
        }
        if raw.starts_with('/') {
            return Url::from_file_path(raw).map_err(|()| Error::InvalidUrl(format!("{raw}: not an absolute path")));
        }
        if let Ok(url) = Url::parse(raw) {
            return Ok(url);
        }
        // scp-style: user@host:path
        if let Some((user_host, path)) = raw.split_once(':')
            && let Some((user, host)) = user_host.split_once('@')
            && !host.is_empty()
            && !path.starts_with('/')
        {
            return Url::parse(&format!("ssh://{user}@{host}/{path}"))
                .map_err(|err| Error::InvalidUrl(format!("{raw}: {err}")));
        }
        Err(Error::InvalidUrl(format!("{raw}: not a URL, scp-style address or absolute path")))
    }

    fn local_path(&self, path: &Path) -> Result<PathBuf> {
        if self.allowed_local_paths.is_empty() {
            return Err(Error::Forbidden("local repositories are not enabled on this server".into()));
        }
        let resolved = std::fs::canonicalize(path)
            .map_err(|err| Error::NotFound(format!("repository {}: {err}", path.display())))?;
        let allowed = self
            .allowed_local_paths
            .iter()
            .filter_map(|root| std::fs::canonicalize(root).ok())
            .any(|root| resolved.starts_with(root));
        if allowed {
            Ok(resolved)
        } else {
            Err(Error::Forbidden(format!("{} is outside the allowed local paths", path.display())))
        }
    }

    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<IpAddr>> {
        let allow_private = self.allowed_hosts.iter().any(|allowed| allowed.eq_ignore_ascii_case(host));
        let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => tokio::net::lookup_host((host, port))
                .await
                .map_err(|err| Error::Resolve { host: host.to_owned(), reason: err.to_string() })?
                .map(|addr: SocketAddr| addr.ip())
                .collect(),
        };
        if addrs.is_empty() {
            return Err(Error::Resolve { host: host.to_owned(), reason: "no addresses".into() });
        }
        if !allow_private && let Some(ip) = addrs.iter().find(|ip| !is_public(**ip)) {
            return Err(Error::Forbidden(format!(
                "{host} resolves to {ip}, a private, loopback or link-local address; an operator can allow-list the host"
            )));
        }
        Ok(addrs)
    }
}

/// Credentials never become part of a repository's identity (an ssh user
/// name is not a credential).
fn strip_credentials(mut url: Url) -> Url {
    let _ = url.set_password(None);
    if url.scheme() == "https" {
        let _ = url.set_username("");
    }
    url.set_fragment(None);
    url.set_query(None);
    url
}

/// Whether an address is reachable on the public internet. Everything else
/// (loopback, RFC 1918, CGNAT, link-local incl. cloud metadata, ULA,
/// multicast, documentation, and v4 addresses hidden in v6) is refused.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let segments = v6.segments();
            // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) embed a v4 address.
            if segments[0] == 0x64 && segments[1] == 0xff9b && segments[2..6] == [0, 0, 0, 0] {
                return is_public_v4(embedded_v4(&v6, 6));
            }
            if segments[0] == 0x2002 {
                return is_public_v4(Ipv4Addr::new(
                    (segments[1] >> 8) as u8,
                    segments[1] as u8,
                    (segments[2] >> 8) as u8,
                    segments[2] as u8,
                ));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (segments[0] & 0xfe00) == 0xfc00 // unique local
                || (segments[0] & 0xffc0) == 0xfe80 // link-local
                || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || segments[0] == 0x2001 && segments[1] == 0x0db8 // documentation
                || segments[..6] == [0, 0, 0, 0, 0, 0]) // v4-compatible
        }
    }
}

fn embedded_v4(v6: &Ipv6Addr, from_segment: usize) -> Ipv4Addr {
    let s = v6.segments();
    Ipv4Addr::new(
        (s[from_segment] >> 8) as u8,
        s[from_segment] as u8,
        (s[from_segment + 1] >> 8) as u8,
        s[from_segment + 1] as u8,
    )
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, _, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // CGNAT
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> UrlPolicy {
        UrlPolicy::default()
    }

    #[tokio::test]
    async fn refuses_private_loopback_and_metadata_addresses() {
        for url in [
            "https://127.0.0.1/x.git",
            "https://10.1.2.3/x.git",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/x.git",
            "https://[::ffff:10.0.0.1]/x.git",
            "https://[fd00::1]/x.git",
            "ssh://git@192.168.1.10/x.git",
            "git@100.64.0.1:o/r.git",
            "https://localhost/x.git",
        ] {
            let err = policy().check(url).await.expect_err(url);
            assert!(matches!(err, Error::Forbidden(_)), "{url}: {err}");
        }
    }

    #[tokio::test]
    async fn refuses_other_schemes_and_option_injection() {
        for url in ["http://example.com/x.git", "git://example.com/x.git", "ext::sh -c touch% /tmp/pwned"] {
            assert!(policy().check(url).await.is_err(), "{url}");
        }
        assert!(matches!(policy().check("--upload-pack=touch /tmp/x").await, Err(Error::InvalidUrl(_))));
        assert!(matches!(policy().check("https://exa mple.com/x").await, Err(Error::InvalidUrl(_))));
    }

    #[tokio::test]
    async fn public_literal_addresses_pass_and_lose_credentials() {
        let checked = policy().check("https://user:secret@93.184.215.14/o/r.git#frag").await.expect("public");
        assert_eq!(checked.url, "https://93.184.215.14/o/r.git");
        assert_eq!(checked.display_name(), "o/r");
        let scp = policy().check("git@93.184.215.14:team/app.git").await.expect("scp");
        assert_eq!(scp.url, "ssh://git@93.184.215.14/team/app.git");
        assert_eq!(scp.display_name(), "team/app");
    }

    #[tokio::test]
    async fn allow_listed_hosts_may_be_private() {
        let policy = UrlPolicy { allowed_hosts: vec!["LOCALHOST".into()], ..Default::default() };
        let checked = policy.check("https://localhost:8443/o/r.git").await.expect("allowed");
        assert!(matches!(checked.location, RepoLocation::Remote { port: 8443, .. }));
    }

    #[tokio::test]
    async fn local_paths_only_under_allowed_roots() {
        let root = tempfile::tempdir().expect("tempdir");
        let repo = root.path().join("repo");
        std::fs::create_dir(&repo).expect("mkdir");
        let path = repo.to_string_lossy().to_string();
        assert!(matches!(policy().check(&path).await, Err(Error::Forbidden(_))));
        let allowed = UrlPolicy { allowed_local_paths: vec![root.path().to_path_buf()], ..Default::default() };
        let checked = allowed.check(&format!("file://{path}")).await.expect("allowed");
        assert!(matches!(checked.location, RepoLocation::Local { .. }));
        let outside = UrlPolicy { allowed_local_paths: vec![repo.join("nested")], ..Default::default() };
        assert!(outside.check(&path).await.is_err());
        let escape = format!("{path}/../../../etc");
        assert!(allowed.check(&escape).await.is_err());
    }

    #[test]
    fn public_addresses() {
        assert!(is_public("8.8.8.8".parse().expect("ip")));
        assert!(is_public("2606:4700::1111".parse().expect("ip")));
        assert!(!is_public("64:ff9b::a00:1".parse().expect("ip")));
        assert!(!is_public("2002:7f00:1::".parse().expect("ip")));
    }
}
