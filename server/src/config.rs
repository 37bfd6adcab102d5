//! Command-line flags (each also an environment variable `SESSION_API_*`).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use ipnet::IpNet;

use crate::duration::parse_duration;

/// session-api: the yew-session auth server.
#[derive(Debug, Clone, Parser)]
#[command(version, about)]
pub struct Config {
    /// Address to listen on. Without it, `PORT` (if set) selects 127.0.0.1:PORT.
    #[arg(long, env = "SESSION_API_BIND")]
    pub bind: Option<String>,
    /// `sqlite://path` (created if missing) or `postgres://...`.
    #[arg(
        long,
        env = "SESSION_API_DATABASE_URL",
        default_value = "sqlite://data/session.db"
    )]
    pub database_url: String,
    /// Base64url signing secret (>= 32 bytes); generated with mode 0600 when absent.
    #[arg(
        long,
        env = "SESSION_API_SECRET_FILE",
        default_value = "data/secret.key"
    )]
    pub secret_file: PathBuf,
    /// Access-token lifetime.
    #[arg(long, env = "SESSION_API_ACCESS_TTL", default_value = "15m", value_parser = parse_duration)]
    pub access_ttl: Duration,
    /// Absolute lifetime of a refresh-token family (a sign-in).
    #[arg(long, env = "SESSION_API_REFRESH_TTL", default_value = "7d", value_parser = parse_duration)]
    pub refresh_ttl: Duration,
    /// A family not refreshed for this long expires.
    #[arg(long, env = "SESSION_API_REFRESH_IDLE_TTL", default_value = "1d", value_parser = parse_duration)]
    pub refresh_idle_ttl: Duration,
    /// Window after a token's rotation in which presenting it again although its successor was
    /// already presented (tabs racing) answers the family's active token instead of counting as reuse.
    #[arg(long, env = "SESSION_API_REFRESH_GRACE", default_value = "5s", value_parser = parse_duration)]
    pub refresh_grace: Duration,
    /// Origin allowed for CORS and for sign-in, refresh and sign-out (repeatable; the server's own
    /// origin is always allowed).
    #[arg(long, env = "SESSION_API_ALLOWED_ORIGIN", value_delimiter = ',')]
    pub allowed_origin: Vec<String>,
    /// Folder of the built app (index.html is the SPA fallback).
    #[arg(long, env = "SESSION_API_STATIC_DIR")]
    pub static_dir: Option<PathBuf>,
    /// Create the demo accounts user, mod and admin (if missing) and print their password.
    #[arg(long, env = "SESSION_API_SEED_DEMO", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub seed_demo: bool,
    /// Password of the demo accounts created by --seed-demo (demo only; never used otherwise).
    #[arg(
        long,
        env = "SESSION_API_DEMO_PASSWORD",
        default_value = "demo-password"
    )]
    pub demo_password: String,
    /// Honour the roles requested at sign-up (the tutorial's behaviour; a self-assigned admin is a hole).
    #[arg(long, env = "SESSION_API_OPEN_ROLE_SIGNUP", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub open_role_signup: bool,
    /// Failed sign-ins for one account from one client IP within --login-window before that
    /// IP's attempts for that account wait 1 s, 2 s, 4 s ... (the owner elsewhere is not slowed).
    #[arg(long, env = "SESSION_API_LOGIN_FREE_FAILURES", default_value_t = 5)]
    pub login_free_failures: u32,
    /// Failed sign-ins per account from all IPs within --login-window before 429 for everyone
    /// (a ceiling against guessing spread over many addresses).
    #[arg(
        long,
        env = "SESSION_API_LOGIN_MAX_FAILURES_ACCOUNT",
        default_value_t = 100
    )]
    pub login_max_failures_account: u32,
    /// Failed sign-ins per client IP within --login-window before 429.
    #[arg(long, env = "SESSION_API_LOGIN_MAX_FAILURES_IP", default_value_t = 100)]
    pub login_max_failures_ip: u32,
    /// Window of the failed-login throttle.
    #[arg(long, env = "SESSION_API_LOGIN_WINDOW", default_value = "15m", value_parser = parse_duration)]
    pub login_window: Duration,
    /// Concurrent argon2id computations (each uses 19 MiB); default: number of CPUs.
    #[arg(long, env = "SESSION_API_HASH_CONCURRENCY")]
    pub hash_concurrency: Option<usize>,
    /// Maximum request body size in bytes.
    #[arg(long, env = "SESSION_API_MAX_BODY", default_value_t = 16 * 1024)]
    pub max_body: usize,
    /// Per-request timeout.
    #[arg(long, env = "SESSION_API_REQUEST_TIMEOUT", default_value = "15s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Address or CIDR of a proxy (load balancer) in front of this server (repeatable, or
    /// comma-separated). Only when the peer is one of them is X-Forwarded-For read: the client
    /// is its right-most entry that is not itself a trusted proxy. Default: none, the client is
    /// the peer address.
    #[arg(long, env = "SESSION_API_TRUSTED_PROXY", value_delimiter = ',', value_parser = parse_proxy)]
    pub trusted_proxy: Vec<IpNet>,
    /// Turn off the per-instance cache of access-token checks: every check reads the database
    /// (for comparison; the cache is invalidated on every instance, see server/README.md).
    #[arg(long, env = "SESSION_API_NO_ACCESS_CACHE", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub no_access_cache: bool,
    /// Maximum database connections in the pool.
    #[arg(long, env = "SESSION_API_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,
    /// Backend-for-frontend mode (issue 15; src/bff/): the issuer URL of the upstream OpenID
    /// Provider, compared exactly with its discovery document's `issuer`. BFF is off without it.
    #[arg(long, env = "SESSION_API_UPSTREAM_ISSUER")]
    pub upstream_issuer: Option<String>,
    /// Backend-for-frontend mode in front of a backend with the tutorial's contract (its base
    /// URL): users sign in with a password through `POST /api/bff/signin`, and this server keeps
    /// the backend's tokens. One of this and `--upstream-issuer`.
    #[arg(long, env = "SESSION_API_UPSTREAM_TUTORIAL")]
    pub upstream_tutorial: Option<String>,
    /// BFF: this server's client id at the upstream provider (a confidential client).
    #[arg(long, env = "SESSION_API_UPSTREAM_CLIENT_ID")]
    pub upstream_client_id: Option<String>,
    /// BFF: file holding the client secret (client_secret_basic); surrounding whitespace ignored.
    #[arg(long, env = "SESSION_API_UPSTREAM_CLIENT_SECRET_FILE")]
    pub upstream_client_secret_file: Option<PathBuf>,
    /// BFF: scopes asked for at the upstream provider.
    #[arg(
        long,
        env = "SESSION_API_UPSTREAM_SCOPES",
        default_value = "openid profile offline_access"
    )]
    pub upstream_scopes: String,
    /// BFF: `PREFIX=URL` (repeatable, or comma-separated): `/api/PREFIX/rest` is proxied to
    /// `URL/rest` with the session's upstream access token; nothing else is ever a destination.
    #[arg(long, env = "SESSION_API_UPSTREAM_API", value_delimiter = ',')]
    pub upstream_api: Vec<String>,
    /// BFF: an `--upstream-api` PREFIX whose GET and HEAD requests without any session cookie
    /// are forwarded without a token (public content); repeatable, or comma-separated. Off by
    /// default: an API reached only through the BFF stays reachable only by signed-in users.
    #[arg(long, env = "SESSION_API_UPSTREAM_PUBLIC", value_delimiter = ',')]
    pub upstream_public: Vec<String>,
    /// BFF: the app's public origin (`https://app.example`): the redirect URI is
    /// `<origin>/api/bff/callback`, the post-logout redirect URI `<origin>/`.
    #[arg(long, env = "SESSION_API_BFF_ORIGIN")]
    pub bff_origin: Option<String>,
}

/// A `--trusted-proxy` value: a CIDR (`10.0.0.0/8`, `fd00::/8`) or one address (`192.0.2.7`).
pub fn parse_proxy(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map(|n| n.trunc())
        .map_err(|_| {
            format!("'{s}' is not an IP address or CIDR (e.g. 10.0.0.0/8, 192.0.2.7, fd00::/8)")
        })
}

impl Config {
    /// The address to bind: --bind, else 127.0.0.1:$PORT, else 127.0.0.1:8080.
    pub fn bind_addr(&self) -> String {
        if let Some(b) = &self.bind {
            return b.clone();
        }
        match std::env::var("PORT") {
            Ok(p) if !p.trim().is_empty() => format!("127.0.0.1:{}", p.trim()),
            _ => "127.0.0.1:8080".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documentation() {
        let c = Config::try_parse_from(["session-api"]).unwrap();
        assert_eq!(c.database_url, "sqlite://data/session.db");
        assert_eq!(c.access_ttl, Duration::from_secs(15 * 60));
        assert_eq!(c.refresh_ttl, Duration::from_secs(7 * 86400));
        assert_eq!(c.refresh_idle_ttl, Duration::from_secs(86400));
        assert_eq!(c.refresh_grace, Duration::from_secs(5));
        assert!(!c.open_role_signup && !c.seed_demo);
    }

    #[test]
    fn origins_repeat_and_durations_parse() {
        let c = Config::try_parse_from([
            "session-api",
            "--allowed-origin",
            "http://a.test",
            "--allowed-origin",
            "http://b.test",
            "--refresh-grace",
            "3s",
        ])
        .unwrap();
        assert_eq!(c.allowed_origin, vec!["http://a.test", "http://b.test"]);
        assert_eq!(c.refresh_grace, Duration::from_secs(3));
        assert!(Config::try_parse_from(["session-api", "--access-ttl", "soon"]).is_err());
    }

    #[test]
    fn trusted_proxies_are_cidrs_or_addresses_and_anything_else_is_named() {
        assert!(Config::try_parse_from(["session-api"])
            .unwrap()
            .trusted_proxy
            .is_empty());
        let c = Config::try_parse_from([
            "session-api",
            "--trusted-proxy",
            "10.0.0.0/8, 192.0.2.7",
            "--trusted-proxy",
            "fd00::/8",
        ])
        .unwrap();
        let shown: Vec<String> = c.trusted_proxy.iter().map(|n| n.to_string()).collect();
        assert_eq!(shown, ["10.0.0.0/8", "192.0.2.7/32", "fd00::/8"]);
        for bad in ["10.0.0.0/33", "10.0.0", "proxy.internal", ""] {
            let e = Config::try_parse_from(["session-api", "--trusted-proxy", bad])
                .unwrap_err()
                .to_string();
            assert!(e.contains("--trusted-proxy"), "{bad}: {e}");
            assert!(e.contains("is not an IP address or CIDR"), "{bad}: {e}");
        }
    }
}
