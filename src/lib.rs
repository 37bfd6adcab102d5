//! yew-session: a Yew single-page app whose access-token / refresh-token session works correctly.
//! Modules are declared here so that `tests/` can reach everything.
//!
//! - `session`: the framework-free engine (no yew, no browser calls): state machine, claims,
//!   scheduling, policies, error taxonomy, event bus, cross-tab protocol.
//! - `browser`: the thin adapters that give the engine a real clock, storage, fetch, tabs, lock,
//!   and the fetch of `config.json`.
//! - `config`: the runtime configuration's types and pure parsing.
//! - `api`: the one HTTP client (the interceptor).
//! - `hooks`, `components`, `pages`, `route`, `app`: the Yew app on top.

pub mod api;
pub mod app;
pub mod browser;
pub mod components;
pub mod config;
pub mod hooks;
pub mod pages;
pub mod route;
pub mod session;
