//! DNS-rebinding and cross-origin protection: the Host and Origin checks of
//! `/ws` and of the `/mcp` requests answered without rmcp, which checks the
//! rest itself from the same `mcp.allowed_hosts` and `mcp.allowed_origins`.

use axum::http::{HeaderMap, Uri, header};

/// Whether the Host header names an allowed host (DNS-rebinding
/// protection); an entry without a port allows any port.
pub fn host_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else { return false };
    let (name, port) = match host.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((name, "")) => (name, None),
            Some((name, port)) => match port.strip_prefix(':') {
                Some(port) => (name, Some(port)),
                None => return false,
            },
            None => return false,
        },
        None => match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        },
    };
    if name.is_empty() || name.contains('@') || port.is_some_and(|port| port.parse::<u16>().is_err()) {
        return false;
    }
    allowed.iter().any(|entry| entry == host || entry.trim_start_matches('[').trim_end_matches(']') == name)
}

/// Whether the Origin header, if there is one, names an allowed origin.
/// A request without one is not from a browser page and passes.
pub fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else { return true };
    let Some(origin) = origin.to_str().ok().and_then(Origin::parse) else { return false };
    allowed.iter().filter_map(|entry| AllowedOrigin::parse(entry)).any(|entry| entry.admits(&origin))
}

#[derive(Debug, PartialEq)]
enum Origin {
    /// `Origin: null`, sent from sandboxed frames and local files.
    Null,
    Tuple {
        scheme: String,
        host: String,
        port: Option<u16>,
    },
}

impl Origin {
    fn parse(value: &str) -> Option<Origin> {
        let value = value.trim();
        if value.eq_ignore_ascii_case("null") {
            return Some(Origin::Null);
        }
        let uri: Uri = value.parse().ok()?;
        let authority = uri.authority()?;
        if authority.port().is_some() && authority.port_u16().is_none() {
            return None;
        }
        Some(Origin::Tuple {
            scheme: uri.scheme_str()?.to_ascii_lowercase(),
            host: authority.host().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase(),
            port: authority.port_u16(),
        })
    }
}

/// An `mcp.allowed_origins` entry.
struct AllowedOrigin {
    origin: Origin,
    /// `:*`, or no port at all.
    any_port: bool,
}

impl AllowedOrigin {
    fn parse(entry: &str) -> Option<AllowedOrigin> {
        let (base, wildcard) = match entry.trim().strip_suffix(":*") {
            Some(base) => (base, true),
            None => (entry, false),
        };
        let origin = Origin::parse(base)?;
        let any_port = wildcard || matches!(origin, Origin::Tuple { port: None, .. });
        Some(AllowedOrigin { origin, any_port })
    }

    fn admits(&self, origin: &Origin) -> bool {
        match (&self.origin, origin) {
            (Origin::Null, Origin::Null) => true,
            (
                Origin::Tuple { scheme, host, port },
                Origin::Tuple { scheme: their_scheme, host: their_host, port: their_port },
            ) => {
                scheme == their_scheme
                    && host == their_host
                    && (self.any_port || their_port.or_else(|| default_port(their_scheme)) == *port)
            }
            _ => false,
        }
    }
}

/// The port an origin without one means (RFC 6454 §4).
fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, value.parse().expect("header"));
        headers
    }

    #[test]
    fn hosts_are_checked_by_name_and_port() {
        let allowed = ["localhost", "127.0.0.1", "::1", "mcp.example.com:443"].map(String::from);
        for host in ["localhost:8080", "127.0.0.1", "[::1]:80", "mcp.example.com:443"] {
            assert!(host_allowed(&with(header::HOST, host), &allowed), "{host}");
        }
        for host in ["evil.example.com", "mcp.example.com:8443", "localhost.evil.com:80", "localhost:http", "[::1"] {
            assert!(!host_allowed(&with(header::HOST, host), &allowed), "{host}");
        }
        assert!(!host_allowed(&HeaderMap::new(), &allowed), "no Host at all");
    }

    #[test]
    fn origins_are_checked_by_scheme_host_and_port() {
        let allowed =
            ["http://localhost:*", "https://app.example.com", "https://ide.example.com:8443", "null"].map(String::from);
        assert!(origin_allowed(&HeaderMap::new(), &allowed), "no Origin: not a browser");
        for origin in [
            "http://localhost:6274",
            "http://LOCALHOST",
            "https://app.example.com:9000",
            "https://ide.example.com:8443",
            "null",
        ] {
            assert!(origin_allowed(&with(header::ORIGIN, origin), &allowed), "{origin}");
        }
        for origin in [
            "https://localhost:6274",
            "http://evil.example.com",
            "http://app.example.com",
            "https://ide.example.com",
            "http://localhost.evil.com",
            "not an origin",
        ] {
            assert!(!origin_allowed(&with(header::ORIGIN, origin), &allowed), "{origin}");
        }
        assert!(!origin_allowed(&with(header::ORIGIN, "http://localhost:3000"), &[]), "an empty list admits none");
    }
}
