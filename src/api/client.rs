//! The interceptor: every API call goes through [`ApiClient::request`], which
//! 1. waits for the session (restore) and, when the token is expired or about to be, for the
//!    single refresh instead of sending a doomed request;
//! 2. attaches the token with the configured header;
//! 3. on a 401: if a newer token generation exists the request is replayed with it (no refresh);
//!    otherwise it joins or starts the one refresh and retries ONCE;
//! 4. a retried request getting 401 again ends the session once — never a loop;
//! 5. maps the status to a typed [`ClientError`].

use std::cell::Cell;
use std::rc::Rc;

use serde::de::DeserializeOwned;

use crate::session::error::map_status;
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
        let build = |token: Option<&str>| {
            let req = HttpRequest::new(method, self.engine.config().url(path));
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
            return finish(resp);
        }
        let Some((_, sent_gen)) = auth else {
            // No session: nothing to refresh.
            return Err(ClientError::Unauthorized);
        };
        let (token, gen) = self.engine.token_after_401(sent_gen).await?;
        self.stats.retries.set(self.stats.retries.get() + 1);
        let retried = self.send(build(Some(&token))).await?;
        if retried.status == 401 {
            self.engine.retried_401(gen);
            return Err(ClientError::Unauthorized);
        }
        finish(retried)
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
}

fn finish(resp: HttpResponse) -> Result<HttpResponse, ClientError> {
    if (200..300).contains(&resp.status) {
        Ok(resp)
    } else {
        Err(map_status(&resp))
    }
}
