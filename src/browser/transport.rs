//! `fetch` through gloo-net, with a deadline (a dropped connection that never answers must turn
//! into `Timeout`, not hang the refresh forever) and same-origin credentials (the refresh cookie).

use futures::future::{select, Either, LocalBoxFuture};
use futures::FutureExt;
use gloo_net::http::{Method as GlooMethod, RequestBuilder};

use crate::session::ports::{HttpRequest, HttpResponse, Method, Transport, TransportError};

/// Response headers the engine reads.
const READ_HEADERS: [&str; 3] = ["date", "retry-after", "content-type"];

/// The real transport.
pub struct FetchTransport {
    /// Deadline of one request in ms.
    pub timeout_ms: u32,
}

impl Default for FetchTransport {
    fn default() -> Self {
        Self { timeout_ms: 10_000 }
    }
}

impl Transport for FetchTransport {
    fn send(
        &self,
        req: HttpRequest,
    ) -> LocalBoxFuture<'static, Result<HttpResponse, TransportError>> {
        let timeout_ms = self.timeout_ms;
        async move {
            let abort = web_sys::AbortController::new().ok();
            let method = match req.method {
                Method::Get => GlooMethod::GET,
                Method::Post => GlooMethod::POST,
                Method::Delete => GlooMethod::DELETE,
            };
            let mut builder = RequestBuilder::new(&req.url)
                .method(method)
                .credentials(if req.with_credentials {
                    web_sys::RequestCredentials::SameOrigin
                } else {
                    web_sys::RequestCredentials::Omit
                })
                .abort_signal(abort.as_ref().map(|a| a.signal()).as_ref());
            for (k, v) in &req.headers {
                builder = builder.header(k, v);
            }
            let request = match req.body {
                Some(b) => builder.body(b),
                None => builder.build(),
            }
            .map_err(|e| TransportError::Network(e.to_string()))?;
            let fetch = async move {
                let resp = request
                    .send()
                    .await
                    .map_err(|e| TransportError::Network(e.to_string()))?;
                let headers = READ_HEADERS
                    .iter()
                    .filter_map(|h| resp.headers().get(h).map(|v| (h.to_string(), v)))
                    .collect();
                // A connection closed mid-body (the tutorial's backend does that) reads as "".
                let body = resp.text().await.unwrap_or_default();
                Ok(HttpResponse {
                    status: resp.status(),
                    headers,
                    body,
                })
            }
            .boxed_local();
            let timer = gloo_timers::future::TimeoutFuture::new(timeout_ms);
            match select(fetch, timer).await {
                Either::Left((r, _)) => r,
                Either::Right(_) => {
                    if let Some(a) = abort {
                        a.abort();
                    }
                    Err(TransportError::Timeout)
                }
            }
        }
        .boxed_local()
    }
}
