//! yew-session: a Yew single-page app whose access-token / refresh-token session works correctly.
//!
//! Modules: `app` (router and providers), `route` (the one `Routable` enum), `pages` (what routes
//! render), `components` (nav and other building blocks).

pub mod app;
pub mod components;
pub mod pages;
pub mod route;
