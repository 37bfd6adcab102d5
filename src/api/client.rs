//! The interceptor: every API call goes through [`ApiClient::request`], which
//! 1. waits for the session (restore) and, when the token is expired or about to be, for the
//!    single refresh instead of sending a doomed request;
//! 2. attaches the token with the configured header;
//! 3. on a 401: if a newer token generation exists the request is replayed with it (no refresh);
//!    otherwise it joins or starts the one refresh and retries ONCE;
//! 4. a retried request getting 401 again ends the session once — never a loop (backend for
//!    frontend: the server did the refresh and the retry; a 401 is handled by
//!    `Engine::bff_refused`);
//! 5. maps the status to a typed [`ClientError`].

use std::cell::Cell;
use std::rc::Rc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::session::error::{error_code, error_message, map_status};
use crate::session::ports::{HttpRequest, HttpResponse, Method};
use crate::session::{ClientError, Engine};

/// Counters of what the interceptor sent (the figure of the concurrency test reads them).
#[derive(Debug, Default)]
pub struct RequestStats {
    /// Requests sent (first attempts and retries).
    pub sent: Cell<u32>,
    /// 401 answers received.
    pub unauthorized: Cell<u32>,
    /// Retries after a 401.
    pub retries: Cell<u32>,
}

/// A refused call: the typed error, and the server's machine-readable reason (`code`, one of
/// `api_types::codes`) when it gave one — what lets a form put a refusal next to its field.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The status, as for any call.
    pub error: ClientError,
    /// The body's `code`.
    pub code: Option<String>,
}

impl From<ClientError> for Refusal {
    fn from(error: ClientError) -> Self {
        Refusal { error, code: None }
    }
}

/// The API client of one tab.
#[derive(Clone)]
pub struct ApiClient {
    engine: Engine,
    stats: Rc<RequestStats>,
}

impl PartialEq for ApiClient {
    fn eq(&self, other: &Self) -> bool {
        self.engine == other.engine && Rc::ptr_eq(&self.stats, &other.stats)
    }
}

impl ApiClient {
    /// A client over `engine`.
    pub fn new(engine: Engine) -> Self {
        Self {
            engine,
            stats: Rc::new(RequestStats::default()),
        }
    }

    /// The engine behind this client.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Counters.
    pub fn stats(&self) -> &RequestStats {
        &self.stats
    }

    /// Sends `method path` through the interceptor and returns the 2xx response.
    pub async fn request(&self, method: Method, path: &str) -> Result<HttpResponse, ClientError> {
        finish(self.exchange(method, path, None).await?)
    }

    /// `method path` with an optional JSON `body`, through the interceptor: the final answer,
    /// whatever its status (after the one refresh-and-retry of a 401).
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> Result<HttpResponse, ClientError> {
        let build = |token: Option<&str>| {
            let mut req = HttpRequest::new(method, self.engine.config().url(path));
            if let Some(body) = body {
                req.headers
                    .push(("content-type".into(), "application/json".into()));
                req.body = Some(body.to_owned());
            }
            match token {
                Some(t) => self.engine.authorize(req, t),
                None => req,
            }
        };
        let auth = self.engine.access_for_request().await?;
        let resp = self
            .send(build(auth.as_ref().map(|(t, _)| t.as_str())))
            .await?;
        if resp.status != 401 {
            return Ok(resp);
        }
        let Some((_, sent_gen)) = auth else {
            // No session: nothing to refresh.
            return Err(ClientError::Unauthorized);
        };
        if self.engine.config().bff() {
            // The server refreshed and retried already: no retry here (see `bff_refused`).
            let code = Engine::answer_code(&resp.body);
            self.engine.bff_refused(code, sent_gen).await;
            return Err(ClientError::Unauthorized);
        }
        let (token, gen) = self.engine.token_after_401(sent_gen).await?;
        self.stats.retries.set(self.stats.retries.get() + 1);
        let retried = self.send(build(Some(&token))).await?;
        if retried.status == 401 {
            self.engine.retried_401(gen);
            return Err(ClientError::Unauthorized);
        }
        Ok(retried)
    }

    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, ClientError> {
        self.stats.sent.set(self.stats.sent.get() + 1);
        let resp = self.engine.send(req).await?;
        if resp.status == 401 {
            self.stats
                .unauthorized
                .set(self.stats.unauthorized.get() + 1);
        }
        Ok(resp)
    }

    /// `GET path` as text.
    pub async fn get_text(&self, path: &str) -> Result<String, ClientError> {
        Ok(self.request(Method::Get, path).await?.body)
    }

    /// `GET path` as JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let body = self.get_text(path).await?;
        serde_json::from_str(&body).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Result<(), ClientError> {
        self.request(Method::Delete, path).await.map(|_| ())
    }

    /// `method path` with `body` as JSON, for the account's calls: the answer's `message` on
    /// success; a refusal keeps the server's `code`.
    pub async fn send_json<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<String, Refusal> {
        let body = serde_json::to_string(body).map_err(|e| ClientError::Decode(e.to_string()))?;
        self.refusable(method, path, Some(&body)).await
    }

    /// `POST path` without a body (sign-out of the other devices, or everywhere), answered like
    /// [`ApiClient::send_json`].
    pub async fn post_empty(&self, path: &str) -> Result<String, Refusal> {
        self.refusable(Method::Post, path, None).await
    }

    async fn refusable(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> Result<String, Refusal> {
        let resp = self.exchange(method, path, body).await?;
        if !(200..300).contains(&resp.status) {
            return Err(Refusal {
                error: map_status(&resp),
                code: error_code(&resp.body),
            });
        }
        // The `message` of the answer (`error_message` reads it from any JSON body).
        Ok(error_message(&resp.body))
    }
}

fn finish(resp: HttpResponse) -> Result<HttpResponse, ClientError> {
    if (200..300).contains(&resp.status) {
        Ok(resp)
    } else {
        Err(map_status(&resp))
    }
}
