//! yew-session: a Yew single-page app whose access/refresh-token session layer works correctly.
//! Modules are declared here so that `tests/` can reach everything.

pub mod api;
pub mod browser;
pub mod components;
pub mod config;
pub mod hooks;
pub mod session;
