//! Cross-cutting HTTP concerns: security headers (strict CSP on the app), the `Date` header,
//! JSON bodies for every error, CORS, body limit, timeout, `Connection: close` on answers that
//! leave the request body unread, tracing; the static SPA is [`crate::static_files`].

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, UNIX_EPOCH};

use api_types::MessageResponse;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::{HeaderMap, Method, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use base64::Engine;
use hyper::body::{Frame, SizeHint};
use sha2::{Digest, Sha256};
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::state::AppState;

/// CSP of API responses: they are data, never documents.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// The app's Content-Security-Policy. Inline scripts of index.html (trunk's loader) are allowed
/// by their SHA-256 only; `'wasm-unsafe-eval'` lets the page compile its WebAssembly.
pub fn app_csp(index_html: &str) -> String {
    app_csp_connecting(index_html, &[])
}

/// [`app_csp`], with the page also allowed to call `connect` (origins: `scheme://host[:port]`,
/// see [`config_origins`]).
pub fn app_csp_connecting(index_html: &str, connect: &[String]) -> String {
    let connect: String = connect.iter().map(|o| format!(" {o}")).collect();
    let hashes: String = inline_scripts(index_html)
        .iter()
        .map(|s| {
            let digest = Sha256::digest(s.as_bytes());
            format!(
                " 'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(digest)
            )
        })
        .collect();
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{hashes}; style-src 'self'; \
         img-src 'self' data:; font-src 'self'; connect-src 'self'{connect}; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// The origins the app's `config.json` sends it to besides its own: the API (`apiBase`) and the
/// OpenID provider (`issuer`). Only a plain `http(s)://host[:port]` counts, so nothing in the
/// file can add another directive to the policy.
pub fn config_origins(config_json: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(config_json) else {
        return Vec::new();
    };
    let mut out: Vec<String> = ["apiBase", "issuer"]
        .iter()
        .filter_map(|k| v.get(*k)?.as_str())
        .filter_map(|url| {
            let (scheme, rest) = url.split_once("://")?;
            let host = rest.split(['/', '?', '#']).next()?;
            let plain = |c: char| c.is_ascii_alphanumeric() || ".-:[]".contains(c);
            (matches!(scheme, "http" | "https") && !host.is_empty() && host.chars().all(plain))
                .then(|| format!("{scheme}://{host}"))
        })
        .collect();
    out.dedup();
    out
}

/// Contents of `<script>` elements without a `src` attribute.
fn inline_scripts(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(start) = lower[pos..].find("<script").map(|i| i + pos) {
        let Some(tag_end) = lower[start..].find('>').map(|i| i + start) else {
            break;
        };
        let Some(close) = lower[tag_end..].find("</script").map(|i| i + tag_end) else {
            break;
        };
        let tag = &lower[start..tag_end];
        if !tag.contains(" src=") && !tag.contains(" src =") {
            out.push(html[tag_end + 1..close].to_owned());
        }
        pos = close + 1;
    }
    out
}

async fn api_not_found() -> ApiError {
    ApiError::NotFound("Not found!".into())
}

/// Marks an answer relayed as another server gave it (the BFF's proxy): [`json_errors`] leaves
/// its body alone, so the app sees the upstream API's own error (the tutorial's `text/html`
/// 403 page, say), status, type and body, as it would without the proxy.
#[derive(Debug, Clone, Copy)]
pub struct Relayed;

/// Every 4xx/5xx without a JSON body (router 404/405, body limit, timeout...) gets one, except
/// a [`Relayed`] answer.
fn json_errors(res: Response) -> Response {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error())
        || res.extensions().get::<Relayed>().is_some()
    {
        return res;
    }
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        let (mut parts, _) = res.into_parts();
        let msg = status.canonical_reason().unwrap_or("Error");
        let body = serde_json::to_vec(&MessageResponse::new(msg)).unwrap_or_default();
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::from(body));
    }
    res
}

/// A request body that records when it has been read to its end.
struct WatchedBody {
    inner: Body,
    ended: Arc<AtomicBool>,
}

impl HttpBody for WatchedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let res = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(res, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.ended.store(true, Ordering::Release);
        }
        res
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The `Date` value of the second `now_ms` falls in (the app clock's, so a test clock shows).
/// The last one is kept: formatting it anew on every response was a tenth of a token check.
fn http_date(now_ms: i64) -> Option<HeaderValue> {
    static LAST: std::sync::Mutex<Option<(u64, HeaderValue)>> = std::sync::Mutex::new(None);
    let secs = now_ms.max(0) as u64 / 1000;
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((s, v)) = &*last {
        if *s == secs {
            return Some(v.clone());
        }
    }
    let text = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs));
    let v = HeaderValue::from_str(&text).ok()?;
    *last = Some((secs, v.clone()));
    Some(v)
}

/// Security headers and `Date` on every response (the client estimates its clock offset from it).
fn common_headers(st: &AppState, h: &mut HeaderMap) {
    // Room for the seven below at once rather than growing the map as they come.
    h.reserve(7);
    if let Some(v) = http_date(st.now_ms()) {
        h.insert(header::DATE, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    );
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(API_CSP),
        );
    }
}

/// Our part of every exchange, in one service (outermost first): an answer given before the
/// request body was read to its end (413, 401/403, 404, 405, 415, 408...) says `Connection:
/// close` — the connection cannot carry another request (hyper closes it), and the client must
/// not try; the rest of the body is drained by the lingering close ([`crate::linger`]), so the
/// client can finish sending and read the answer — then every response is counted by status
/// with its latency ([`crate::metrics`]), gets the security headers and `Date`
/// ([`common_headers`]), and a 4xx/5xx without a JSON body gets one ([`json_errors`]).
///
/// One hand-written service rather than four `middleware::from_fn` layers: each of those
/// clones and boxes the service below it and boxes its own future on every request.
#[derive(Clone)]
struct Exchange<S> {
    inner: S,
    state: AppState,
}

impl<S> tower::Service<Request> for Exchange<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Readiness is the inner service's, awaited in `call` on the clone it uses.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let state = self.state.clone();
        Box::pin(async move {
            let http1 = req.version() <= Version::HTTP_11;
            let (parts, body) = req.into_parts();
            let ended = Arc::new(AtomicBool::new(body.is_end_stream()));
            let body = Body::new(WatchedBody {
                inner: body,
                ended: ended.clone(),
            });
            let req = Request::from_parts(parts, body);
            let start = Instant::now();
            let res = match tower::ServiceExt::ready(&mut inner).await {
                Ok(ready) => ready.call(req).await,
                Err(e) => Err(e),
            };
            let mut res = match res {
                Ok(res) => json_errors(res),
                Err(never) => match never {},
            };
            common_headers(&state, res.headers_mut());
            state
                .metrics()
                .response(res.status().as_u16(), start.elapsed().as_secs_f64());
            if http1 && !ended.load(Ordering::Acquire) {
                res.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(res)
        })
    }
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    let list: Vec<HeaderValue> = origins
        .iter()
        .filter(|o| o.as_str() != "*")
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if list.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(list))
            .allow_credentials(true)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                HeaderName::from_static(api_types::headers::ACCESS_TOKEN),
                HeaderName::from_static(api_types::headers::REFRESH_TRANSPORT),
                HeaderName::from_static(api_types::headers::REFRESH_PERSIST),
            ])
            .expose_headers([header::DATE, header::RETRY_AFTER])
            .max_age(Duration::from_secs(600)),
    )
}

/// Adds the static app (or a JSON 404) and all middleware to the API routes.
///
/// The middleware wraps the routed app once, as one service (`ServiceBuilder`), not each route:
/// tracing, then [`Exchange`] (connection close, metrics, security headers, JSON errors), CORS,
/// the timeout and the body limits.
/// `Router::layer` would wrap every route's boxed service in every layer, and axum clones a
/// route's whole boxed stack on each request (each `from_fn` layer clones and boxes what is
/// below it again), which cost about a fifth of a token check's instructions.
pub fn wrap(api: Router<AppState>, state: AppState) -> Router {
    let s = state.settings().clone();
    let mut router = api.route("/api/{*rest}", any(api_not_found));
    router = match &s.static_dir {
        Some(dir) => router.merge(crate::static_files::router(dir)),
        None => router.fallback(|| async { ApiError::NotFound("Not found!".into()) }),
    };
    let exchange_state = state.clone();
    // Outermost first.
    let stack = ServiceBuilder::new()
        .layer(TraceLayer::new_for_http())
        .layer_fn(|inner| Exchange {
            inner,
            state: exchange_state.clone(),
        })
        .option_layer(cors(&s.allowed_origins))
        // The timeout's body type back to axum's, which `Exchange` takes.
        .map_response(IntoResponse::into_response)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(s.request_timeout_ms),
        ))
        // The limit's own body type back to axum's (the timeout needs a `Default` body).
        .map_response(IntoResponse::into_response)
        .layer(RequestBodyLimitLayer::new(s.max_body))
        .layer(DefaultBodyLimit::max(s.max_body))
        .service(router.with_state(state));
    Router::new().fallback_service(stack)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kept_date_is_the_formatted_second_of_each_time_asked() {
        // Within a second, across seconds, backwards (a test clock), and before 1970 (clamped).
        let base = 1_700_000_000_000_i64;
        for ms in [
            base,
            base + 1,
            base + 999,
            base + 1000,
            base + 61_500,
            base + 999,
            base - 86_400_000,
            0,
            -5,
            base,
        ] {
            let want =
                httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64));
            assert_eq!(http_date(ms).unwrap().to_str().unwrap(), want, "{ms}");
        }
    }

    #[test]
    fn inline_loader_scripts_are_hashed_and_external_ones_are_not() {
        let html = r#"<html><script type="module">import init from '/app.js';init();</script>
            <script src="/x.js"></script></html>"#;
        let scripts = inline_scripts(html);
        assert_eq!(
            scripts,
            vec!["import init from '/app.js';init();".to_owned()]
        );
        let csp = app_csp(html);
        assert_eq!(csp.matches("'sha256-").count(), 1);
        assert!(!csp.contains("unsafe-inline"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(csp.contains("connect-src 'self';"));
    }

    #[test]
    fn the_configured_api_and_provider_origins_may_be_called_and_nothing_else_gets_in() {
        let cfg = r#"{"apiBase":"http://127.0.0.1:9001/api/","issuer":"https://id.example.com/realms/r"}"#;
        assert_eq!(
            config_origins(cfg),
            ["http://127.0.0.1:9001", "https://id.example.com"]
        );
        let csp = app_csp_connecting("", &config_origins(cfg));
        assert!(csp.contains("connect-src 'self' http://127.0.0.1:9001 https://id.example.com;"));
        for evil in [
            r#"{"issuer":"https://a.example; script-src *"}"#,
            r#"{"issuer":"javascript://x"}"#,
            r#"{"apiBase":""}"#,
            "not json",
        ] {
            assert_eq!(config_origins(evil), Vec::<String>::new(), "{evil}");
        }
    }
}
