//! The BFF's flags, checked: [`BffConfig::from_config`] turns `--upstream-*` and `--bff-origin`
//! into a [`BffConfig`] or one clear sentence about what is wrong. BFF is off (`Ok(None)`) unless
//! `--upstream-issuer` is given; the other BFF flags without it are an error, not ignored.

use std::path::PathBuf;

use url::Url;

use crate::config::Config;

/// Path prefixes session-api serves itself: never a proxy prefix.
const RESERVED_PREFIXES: &[&str] = &["auth", "test", "bff", "metrics", "health"];

/// One `--upstream-api PREFIX=URL`: `/api/PREFIX/rest` goes to `base` + `/rest`, nowhere else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamApi {
    /// `[a-z0-9][a-z0-9-]*`, not one of session-api's own prefixes.
    pub prefix: String,
    /// Absolute http(s) URL without query, fragment or credentials; no trailing slash.
    pub base: Url,
    /// `--upstream-public PREFIX`: anonymous GET/HEAD requests are forwarded (without a token).
    pub public: bool,
}

/// The BFF's settings, all checked.
#[derive(Debug, Clone)]
pub struct BffConfig {
    /// Who signs users in and issues the tokens the BFF keeps.
    pub kind: UpstreamKind,
    /// Proxy allowlist.
    pub apis: Vec<UpstreamApi>,
}

/// The two kinds of upstream.
#[derive(Debug, Clone)]
pub enum UpstreamKind {
    /// An OpenID Provider (`--upstream-issuer`), spoken to as a confidential client.
    Oidc(OidcClient),
    /// A backend with the tutorial's contract (`--upstream-tutorial URL`): a password sign-in at
    /// `URL/api/auth/signin`, refreshes at `URL/api/auth/refreshtoken`, the access token sent as
    /// `x-access-token` (../shared/TUTORIAL-BACKEND.md).
    Tutorial {
        /// Its base URL (a path other than the root without its trailing slash).
        base: Url,
    },
}

/// This server as a client of an OpenID Provider.
#[derive(Debug, Clone)]
pub struct OidcClient {
    /// The issuer, exactly as configured (compared byte for byte with discovery's).
    pub issuer: String,
    /// Client id.
    pub client_id: String,
    /// Client secret (from the file).
    pub client_secret: String,
    /// Scopes, space-separated (must include `openid`).
    pub scopes: String,
    /// The app's public origin, no trailing slash.
    pub origin: String,
}

impl OidcClient {
    /// `<origin>/api/bff/callback`.
    pub fn redirect_uri(&self) -> String {
        format!("{}/api/bff/callback", self.origin)
    }

    /// `<origin>/`.
    pub fn post_logout_redirect_uri(&self) -> String {
        format!("{}/", self.origin)
    }
}

impl BffConfig {
    /// The OpenID client, when that is the upstream.
    pub fn oidc(&self) -> Option<&OidcClient> {
        match &self.kind {
            UpstreamKind::Oidc(c) => Some(c),
            UpstreamKind::Tutorial { .. } => None,
        }
    }

    /// Reads and checks the flags; `Ok(None)`: BFF is off.
    pub fn from_config(c: &Config) -> Result<Option<BffConfig>, String> {
        let oidc_flags = [
            ("--upstream-client-id", c.upstream_client_id.is_some()),
            (
                "--upstream-client-secret-file",
                c.upstream_client_secret_file.is_some(),
            ),
            ("--bff-origin", c.bff_origin.is_some()),
        ];
        let kind = match (c.upstream_issuer.as_deref(), c.upstream_tutorial.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(
                    "--upstream-issuer and --upstream-tutorial are two kinds of upstream: give one"
                        .into(),
                )
            }
            (None, None) => {
                let api_flag = [
                    ("--upstream-api", !c.upstream_api.is_empty()),
                    ("--upstream-public", !c.upstream_public.is_empty()),
                ];
                if let Some((flag, _)) = oidc_flags.iter().chain(&api_flag).find(|(_, set)| *set) {
                    return Err(format!(
                        "{flag} is a backend-for-frontend flag: it needs --upstream-issuer (or --upstream-tutorial)"
                    ));
                }
                return Ok(None);
            }
            (None, Some(base)) => {
                if let Some((flag, _)) = oidc_flags.iter().find(|(_, set)| *set) {
                    return Err(format!(
                        "{flag} is for an OpenID upstream (--upstream-issuer): --upstream-tutorial has no use for it"
                    ));
                }
                let mut base = check_http_url("--upstream-tutorial", base.trim())?;
                if base.query().is_some() || base.cannot_be_a_base() {
                    return Err(format!(
                        "--upstream-tutorial '{base}' must be a base URL without a query, like http://127.0.0.1:8080"
                    ));
                }
                let path = base.path().trim_end_matches('/').to_owned();
                base.set_path(&path);
                UpstreamKind::Tutorial { base }
            }
            (Some(issuer), None) => UpstreamKind::Oidc(Self::oidc_client(c, issuer.trim())?),
        };
        let mut apis: Vec<UpstreamApi> = Vec::new();
        for spec in &c.upstream_api {
            let api = parse_upstream_api(spec)?;
            if apis.iter().any(|a| a.prefix == api.prefix) {
                return Err(format!(
                    "--upstream-api: prefix '{}' is given twice",
                    api.prefix
                ));
            }
            apis.push(api);
        }
        for prefix in &c.upstream_public {
            let prefix = prefix.trim();
            match apis.iter_mut().find(|a| a.prefix == prefix) {
                Some(api) => api.public = true,
                None => {
                    return Err(format!(
                        "--upstream-public '{prefix}' names no --upstream-api prefix"
                    ))
                }
            }
        }
        Ok(Some(BffConfig { kind, apis }))
    }

    fn oidc_client(c: &Config, issuer: &str) -> Result<OidcClient, String> {
        check_http_url("--upstream-issuer", issuer)?;
        let client_id = c
            .upstream_client_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or("--upstream-issuer needs --upstream-client-id")?
            .to_owned();
        let secret_file: &PathBuf = c
            .upstream_client_secret_file
            .as_ref()
            .ok_or("--upstream-issuer needs --upstream-client-secret-file (this server is a confidential client)")?;
        let client_secret = std::fs::read_to_string(secret_file)
            .map_err(|e| {
                format!(
                    "--upstream-client-secret-file {}: {e}",
                    secret_file.display()
                )
            })?
            .trim()
            .to_owned();
        if client_secret.is_empty() {
            return Err(format!(
                "--upstream-client-secret-file {} is empty",
                secret_file.display()
            ));
        }
        let scopes = c.upstream_scopes.split_whitespace().collect::<Vec<_>>();
        if !scopes.contains(&"openid") {
            return Err(format!(
                "--upstream-scopes '{}' must include openid",
                c.upstream_scopes
            ));
        }
        let origin = c
            .bff_origin
            .as_deref()
            .ok_or("--upstream-issuer needs --bff-origin (the app's public origin, e.g. https://app.example)")?;
        Ok(OidcClient {
            issuer: issuer.to_owned(),
            client_id,
            client_secret,
            scopes: scopes.join(" "),
            origin: parse_origin(origin)?,
        })
    }
}

/// Whether `host` is this machine (http is allowed there, for tests and local development).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// An absolute URL that is https, or http on a loopback host; no credentials, no fragment.
pub fn check_http_url(flag: &str, s: &str) -> Result<Url, String> {
    let u = Url::parse(s).map_err(|e| format!("{flag} '{s}' is not a URL: {e}"))?;
    match u.scheme() {
        "https" => {}
        "http" if is_loopback(&u) => {}
        "http" => {
            return Err(format!(
                "{flag} '{s}' must be https (plain http only on 127.0.0.1, ::1 or localhost)"
            ))
        }
        other => return Err(format!("{flag} '{s}': scheme '{other}' is not http(s)")),
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(format!("{flag} '{s}' must not carry credentials"));
    }
    if u.fragment().is_some() {
        return Err(format!("{flag} '{s}' must not have a fragment"));
    }
    Ok(u)
}

fn parse_origin(s: &str) -> Result<String, String> {
    let u = check_http_url("--bff-origin", s.trim())?;
    let origin = u.origin().ascii_serialization();
    if origin != s.trim().trim_end_matches('/') {
        return Err(format!(
            "--bff-origin '{s}' must be an origin (scheme://host[:port]), like {origin}"
        ));
    }
    Ok(origin)
}

/// `PREFIX=URL`.
pub fn parse_upstream_api(spec: &str) -> Result<UpstreamApi, String> {
    let (prefix, url) = spec.trim().split_once('=').ok_or_else(|| {
        format!(
            "--upstream-api '{spec}' must be PREFIX=URL, e.g. orders=https://orders.internal/v1"
        )
    })?;
    let prefix = prefix.trim();
    let valid = !prefix.is_empty()
        && prefix.len() <= 64
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !prefix.starts_with('-');
    if !valid {
        return Err(format!(
            "--upstream-api '{spec}': the prefix must be lower-case letters, digits and '-'"
        ));
    }
    if RESERVED_PREFIXES.contains(&prefix) {
        return Err(format!(
            "--upstream-api '{spec}': /api/{prefix}/ is session-api's own (reserved: {})",
            RESERVED_PREFIXES.join(", ")
        ));
    }
    let base = check_http_url("--upstream-api", url.trim())?;
    if base.query().is_some() {
        return Err(format!(
            "--upstream-api '{spec}': the URL must have no query"
        ));
    }
    if base.cannot_be_a_base() {
        return Err(format!("--upstream-api '{spec}': not a base URL"));
    }
    let mut base = base;
    let path = base.path().trim_end_matches('/').to_owned();
    base.set_path(&path);
    Ok(UpstreamApi {
        prefix: prefix.to_owned(),
        base,
        public: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<Option<BffConfig>, String> {
        let mut v = vec!["session-api"];
        v.extend_from_slice(args);
        BffConfig::from_config(&Config::try_parse_from(v).unwrap())
    }

    #[test]
    fn bff_is_off_by_default_and_its_flags_alone_are_errors() {
        assert!(parse(&[]).unwrap().is_none());
        let e = parse(&["--upstream-client-id", "x"]).unwrap_err();
        assert!(e.contains("needs --upstream-issuer"), "{e}");
        let e = parse(&["--upstream-api", "a=https://a.test"]).unwrap_err();
        assert!(e.contains("--upstream-api"), "{e}");
    }

    #[test]
    fn a_tutorial_upstream_takes_a_base_url_and_no_openid_flags() {
        let c = parse(&[
            "--upstream-tutorial",
            "http://127.0.0.1:8080/",
            "--upstream-api",
            "tut=http://127.0.0.1:8080",
        ])
        .unwrap()
        .unwrap();
        match &c.kind {
            // The root path is `/` in a URL; a longer one loses its trailing slash.
            UpstreamKind::Tutorial { base } => assert_eq!(base.as_str(), "http://127.0.0.1:8080/"),
            other => panic!("{other:?}"),
        }
        assert!(c.oidc().is_none());
        assert!(!c.apis[0].public);
        let c = parse(&[
            "--upstream-tutorial",
            "http://127.0.0.1:8080/",
            "--upstream-api",
            "tut=http://127.0.0.1:8080",
            "--upstream-public",
            "tut",
        ])
        .unwrap()
        .unwrap();
        assert!(c.apis[0].public);
        let e = parse(&[
            "--upstream-tutorial",
            "http://127.0.0.1:8080/",
            "--upstream-public",
            "nope",
        ])
        .unwrap_err();
        assert!(e.contains("names no --upstream-api prefix"), "{e}");
        let c = parse(&["--upstream-tutorial", "http://127.0.0.1:8080/base/"])
            .unwrap()
            .unwrap();
        match &c.kind {
            UpstreamKind::Tutorial { base } => {
                assert_eq!(base.as_str(), "http://127.0.0.1:8080/base")
            }
            other => panic!("{other:?}"),
        }
        for (args, needle) in [
            (
                &[
                    "--upstream-tutorial",
                    "http://127.0.0.1:1",
                    "--upstream-issuer",
                    "https://id.example",
                ][..],
                "give one",
            ),
            (
                &[
                    "--upstream-tutorial",
                    "http://127.0.0.1:1",
                    "--upstream-client-id",
                    "x",
                ][..],
                "has no use for it",
            ),
            (
                &[
                    "--upstream-tutorial",
                    "http://127.0.0.1:1",
                    "--bff-origin",
                    "https://a.example",
                ][..],
                "--bff-origin is for an OpenID upstream",
            ),
            (
                &["--upstream-tutorial", "http://tutorial.example"][..],
                "must be https",
            ),
            (
                &["--upstream-tutorial", "http://127.0.0.1:1/?a=1"][..],
                "without a query",
            ),
            (&["--upstream-tutorial", "nonsense"][..], "not a URL"),
        ] {
            let e = parse(args).unwrap_err();
            assert!(e.contains(needle), "{args:?}: {e}");
        }
    }

    #[test]
    fn a_full_configuration_parses_and_missing_parts_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("s");
        std::fs::write(&secret, "  s3cret\n").unwrap();
        let secret = secret.to_str().unwrap();
        let c = parse(&[
            "--upstream-issuer",
            "https://id.example/realms/r",
            "--upstream-client-id",
            "app",
            "--upstream-client-secret-file",
            secret,
            "--upstream-api",
            "orders=https://orders.example/v1/,stock=http://127.0.0.1:9/x",
            "--bff-origin",
            "https://app.example",
        ])
        .unwrap()
        .unwrap();
        let o = c.oidc().unwrap();
        assert_eq!(o.client_secret, "s3cret");
        assert_eq!(o.scopes, "openid profile offline_access");
        assert_eq!(o.redirect_uri(), "https://app.example/api/bff/callback");
        assert_eq!(c.apis[0].base.as_str(), "https://orders.example/v1");
        assert_eq!(c.apis[1].prefix, "stock");
        let base = [
            "--upstream-issuer",
            "https://id.example",
            "--upstream-client-id",
            "app",
            "--upstream-client-secret-file",
            secret,
            "--bff-origin",
            "https://app.example",
        ];
        for (extra, needle) in [
            (&["--upstream-scopes", "profile"][..], "must include openid"),
            (
                &["--upstream-api", "auth=https://a.example"][..],
                "reserved",
            ),
            (
                &["--upstream-api", "../x=https://a.example"][..],
                "prefix must be",
            ),
            (
                &["--upstream-api", "a=http://a.example"][..],
                "must be https",
            ),
            (
                &["--upstream-api", "a=https://u:p@a.example"][..],
                "credentials",
            ),
            (
                &["--upstream-api", "a=https://a.example/?q=1"][..],
                "no query",
            ),
            (&["--upstream-api", "a"][..], "PREFIX=URL"),
            (
                &[
                    "--upstream-api",
                    "a=https://a.example",
                    "--upstream-api",
                    "a=https://b.example",
                ][..],
                "twice",
            ),
        ] {
            let mut args = base.to_vec();
            args.extend_from_slice(extra);
            let e = parse(&args).unwrap_err();
            assert!(e.contains(needle), "{extra:?}: {e}");
        }
        let e = parse_origin("https://app.example/path").unwrap_err();
        assert!(e.contains("must be an origin"), "{e}");
        let e = parse(&[
            "--upstream-issuer",
            "http://id.example",
            "--upstream-client-id",
            "a",
        ])
        .unwrap_err();
        assert!(e.contains("must be https"), "{e}");
        let e = parse(&[
            "--upstream-issuer",
            "https://id.example",
            "--upstream-client-id",
            "a",
        ])
        .unwrap_err();
        assert!(e.contains("--upstream-client-secret-file"), "{e}");
        let e = parse(&[
            "--upstream-issuer",
            "https://id.example",
            "--upstream-client-id",
            "a",
            "--upstream-client-secret-file",
            "/nonexistent/secret",
        ])
        .unwrap_err();
        assert!(e.contains("/nonexistent/secret"), "{e}");
    }
}
