//! The static app (`--static-dir`, trunk's `dist/`): tower-http's `ServeDir` with the
//! precompressed `.br` / `.gz` copies `scripts/build-release` writes beside the files, the
//! index.html fallback of SPA routes (precompressed too), the app's CSP, and caching:
//!
//! - trunk's content-hashed files (`name-<hash>.ext`, `name-<hash>_bg.wasm`): `Cache-Control:
//!   public, max-age=31536000, immutable` — a new build has new names;
//! - everything else (index.html, every route answered with it, config.json): `no-cache`, so the
//!   browser revalidates each time and a new build is picked up at the next load;
//! - every answer from a file: `Vary: Accept-Encoding`, `Last-Modified` (ServeDir; a matching
//!   `If-Modified-Since` gets a 304) and a weak `ETag` from the plain file's length and mtime (a
//!   matching `If-None-Match` gets a 304; it then overrides `If-Modified-Since`, RFC 9110
//!   13.1.3, so a rollback to an older build, whose files are older, is not answered 304).
//!
//! The ETag is weak because it names the file, not the bytes of one encoding: the brotli, gzip
//! and plain answers are the same content.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tower::util::MapResponse;
use tower_http::services::fs::ServeFileSystemResponseBody;
use tower_http::services::{ServeDir, ServeFile};

use crate::state::AppState;
use crate::web::{app_csp_connecting, config_origins, API_CSP};

/// `Cache-Control` of trunk's content-hashed files.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of the files whose name stays across builds (index.html, config.json) and of
/// every SPA route: revalidate before each use.
pub const REVALIDATE: &str = "no-cache";

/// Marks an answer of the index.html fallback (an SPA route, or a file that does not exist).
#[derive(Debug, Clone, Copy)]
struct SpaFallback;

fn mark_fallback<B>(mut res: Response<B>) -> Response<B> {
    res.extensions_mut().insert(SpaFallback);
    res
}

/// The router serving `dir` for every path the API does not claim.
pub fn router(dir: &Path) -> Router<AppState> {
    let index = dir.join("index.html");
    // The CSP hashes the inline scripts of the plain index.html (never of a compressed copy).
    let html = std::fs::read_to_string(&index).unwrap_or_else(|e| {
        tracing::warn!(path = %index.display(), error = %e, "static dir has no readable index.html");
        String::new()
    });
    let fallback = MapResponse::new(
        ServeFile::new(&index)
            .precompressed_br()
            .precompressed_gzip(),
        mark_fallback::<ServeFileSystemResponseBody>,
    );
    let serve = ServeDir::new(dir)
        .precompressed_br()
        .precompressed_gzip()
        .fallback(fallback);
    let csp = Arc::new(Csp {
        html,
        config: dir.join("config.json"),
    });
    Router::new().fallback_service(
        tower::ServiceBuilder::new()
            .layer(middleware::from_fn_with_state(csp, content_security_policy))
            .layer(middleware::from_fn_with_state(
                Arc::<Path>::from(dir),
                caching,
            ))
            .service(serve),
    )
}

/// What the app's CSP is made of: the inline scripts of index.html (read at start) and the
/// origins config.json names (read per answer: config.json can change without a restart, and
/// an app told to call another origin must be allowed to).
struct Csp {
    html: String,
    config: std::path::PathBuf,
}

async fn content_security_policy(
    State(csp): State<Arc<Csp>>,
    req: Request,
    next: Next,
) -> Response {
    let mut res = next.run(req).await;
    let config = tokio::fs::read_to_string(&csp.config)
        .await
        .unwrap_or_default();
    let value = HeaderValue::from_str(&app_csp_connecting(&csp.html, &config_origins(&config)))
        .unwrap_or_else(|_| HeaderValue::from_static(API_CSP));
    res.headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, value);
    res
}

/// Cache-Control, Vary and ETag on the answers from files, and the 304 for `If-None-Match`.
async fn caching(State(dir): State<Arc<Path>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let conditional = matches!(*req.method(), Method::GET | Method::HEAD);
    let if_none_match: Vec<HeaderValue> = req
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .cloned()
        .collect();
    if !if_none_match.is_empty() {
        req.headers_mut().remove(header::IF_MODIFIED_SINCE);
    }
    let mut res = next.run(req).await;
    let status = res.status();
    if !matches!(
        status,
        StatusCode::OK | StatusCode::PARTIAL_CONTENT | StatusCode::NOT_MODIFIED
    ) {
        return res;
    }
    let fallback = res.extensions().get::<SpaFallback>().is_some();
    let file = if fallback {
        Some(dir.join("index.html"))
    } else {
        file_for(&dir, &path).await
    };
    let etag = match file {
        Some(f) => etag(&f).await,
        None => None,
    };
    let h = res.headers_mut();
    let cache = if !fallback && is_hashed_asset(&path) {
        IMMUTABLE
    } else {
        REVALIDATE
    };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    let Some(etag) = etag else {
        return res;
    };
    h.insert(header::ETAG, etag.clone());
    let matched = if_none_match.iter().any(|inm| none_match_hits(inm, &etag));
    if conditional && matched && status == StatusCode::OK {
        let mut not_modified = Response::new(Body::empty());
        *not_modified.status_mut() = StatusCode::NOT_MODIFIED;
        for name in [
            header::CACHE_CONTROL,
            header::VARY,
            header::ETAG,
            header::LAST_MODIFIED,
        ] {
            for v in res.headers().get_all(&name) {
                not_modified.headers_mut().append(&name, v.clone());
            }
        }
        return not_modified;
    }
    res
}

/// The plain file `ServeDir` answered `path` from (the directory's index.html for a directory);
/// `None` for what it would not map the same way (percent-escapes, dot segments).
async fn file_for(dir: &Path, path: &str) -> Option<PathBuf> {
    if path.contains('%') || path.contains('\\') {
        return None;
    }
    let mut file = dir.to_path_buf();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        if !matches!(
            Path::new(seg).components().next(),
            Some(Component::Normal(_))
        ) {
            return None;
        }
        file.push(seg);
    }
    let meta = tokio::fs::metadata(&file).await.ok()?;
    if meta.is_dir() {
        file.push("index.html");
    }
    Some(file)
}

/// `W/"<length>-<mtime in ns>"` (hex) of the plain file, as nginx does with its strong ETag.
async fn etag(file: &Path) -> Option<HeaderValue> {
    let meta = tokio::fs::metadata(file).await.ok()?;
    let mtime = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    HeaderValue::from_str(&format!("W/\"{:x}-{:x}\"", meta.len(), mtime.as_nanos())).ok()
}

/// Whether `If-None-Match` names `etag` (weak comparison, RFC 9110 8.8.3.2) or is `*`.
fn none_match_hits(if_none_match: &HeaderValue, etag: &HeaderValue) -> bool {
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let ours = opaque(etag.to_str().unwrap_or_default());
    if_none_match
        .to_str()
        .unwrap_or_default()
        .split(',')
        .any(|t| t.trim() == "*" || opaque(t) == ours)
}

/// Whether the last segment of `path` is a trunk output name: `<name>-<hash>.<ext>` or
/// `<name>-<hash>_bg.wasm`, the hash being seahash's u64 in lowercase hex without leading zeros
/// (1-16 digits). 8-16 digits are taken, so a hand-named `a-b.js` is not made immutable; a
/// hash with fewer than 8 digits (odds 2^-32) only costs that file the long caching.
pub fn is_hashed_asset(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or_default();
    let Some((stem, ext)) = name.split_once('.') else {
        return false;
    };
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    let Some((base, hash)) = stem.rsplit_once('-') else {
        return false;
    };
    !base.is_empty()
        && !ext.is_empty()
        && (8..=16).contains(&hash.len())
        && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trunk_names_are_hashed_and_others_are_not() {
        for p in [
            "/yew-session-2ef8122e5991e5c6_bg.wasm",
            "/yew-session-2ef8122e5991e5c6.js",
            "/style-4b360094edb179b3.css",
            "/favicon-864218dab54bfb7f.svg",
            "/x-2ef8122e.js",
        ] {
            assert!(is_hashed_asset(p), "{p}");
        }
        for p in [
            "/",
            "/index.html",
            "/config.json",
            "/profile",
            "/my-file.js",
            "/a-b.js",
            "/-2ef8122e5991e5c6.js",
            "/x-2EF8122E5991E5C6.js",
            "/x-2ef8122e5991e5c6",
            "/x-2ef8122e5991e5c6a.js",
        ] {
            assert!(!is_hashed_asset(p), "{p}");
        }
    }

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists_and_star() {
        let ours = HeaderValue::from_static("W/\"10-abc\"");
        let hit = |v: &'static str| none_match_hits(&HeaderValue::from_static(v), &ours);
        assert!(hit("W/\"10-abc\""));
        assert!(hit("\"10-abc\""));
        assert!(hit("\"x\", W/\"10-abc\""));
        assert!(hit("*"));
        assert!(!hit("W/\"10-abd\""));
        assert!(!hit(""));
    }
}
