//! session-api: the reference auth server for yew-session.
//!
//! The tutorial's wire contract (`api_types`) with rotating, hashed refresh tokens grouped in
//! families (reuse detection revokes the family), an optional HttpOnly-cookie transport, argon2id
//! passwords on a bounded pool, login throttling, Prometheus metrics and a static SPA host.
//! [`app`] builds the whole router from an explicit [`AppState`], so tests build their own.

#![warn(missing_docs)]

pub mod account;
pub mod auth;
pub mod bff;
pub mod clock;
pub mod config;
pub mod content;
pub mod db;
pub mod duration;
pub mod error;
pub mod keys;
pub mod linger;
pub mod metrics;
pub mod metrics_http;
pub mod password;
pub mod server;
pub mod sessions;
pub mod state;
pub mod static_files;
pub mod throttle;
pub mod web;

pub use error::ApiError;
pub use state::{AppState, Settings};

use axum::Router;

/// Builds the complete HTTP application: API routes, metrics, static app and middleware.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .merge(auth::router())
        .merge(sessions::router())
        .merge(account::router())
        .merge(content::router())
        .merge(metrics_http::router())
        .merge(bff::router(&state));
    web::wrap(api, state)
}
