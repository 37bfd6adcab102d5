//! `use_api()`: the interceptor client of the surrounding `SessionProvider`.

use serde::de::DeserializeOwned;
use yew::prelude::*;

use crate::api::ApiClient;
use crate::components::session_provider::SessionContext;
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
