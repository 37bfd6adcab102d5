//! `use_api()`: the interceptor client of the surrounding `SessionProvider`.

use serde::de::DeserializeOwned;
use serde::Serialize;
use yew::prelude::*;

use crate::api::{ApiClient, Refusal};
use crate::components::session_provider::SessionContext;
use crate::session::ports::Method;
use crate::session::ClientError;

/// Handle returned by [`use_api`]; every call goes through the interceptor.
#[derive(Clone, PartialEq)]
pub struct ApiHandle {
    client: ApiClient,
}

impl ApiHandle {
    /// `GET path` as text.
    pub async fn get_text(&self, path: &str) -> Result<String, ClientError> {
        self.client.get_text(path).await
    }
    /// `GET path` as JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.client.get_json(path).await
    }
    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Result<(), ClientError> {
        self.client.delete(path).await
    }
    /// `method path` with a JSON body; a refusal keeps the server's `code`.
    pub async fn send_json<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<String, Refusal> {
        self.client.send_json(method, path, body).await
    }
    /// `POST path` without a body; a refusal keeps the server's `code`.
    pub async fn post_empty(&self, path: &str) -> Result<String, Refusal> {
        self.client.post_empty(path).await
    }
    /// The underlying client (its request counters, for the inspector).
    pub fn client(&self) -> &ApiClient {
        &self.client
    }
}

/// The API client.
///
/// # Panics
/// When used outside a `SessionProvider` (a programming error).
#[hook]
pub fn use_api() -> ApiHandle {
    let ctx = use_context::<SessionContext>().expect("use_api() needs a SessionProvider above");
    ApiHandle { client: ctx.api }
}
