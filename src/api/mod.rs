//! The HTTP side: one interceptor client over the engine's transport. Pages name the contract's
//! paths (`api_types::paths`) themselves: `get_text`, `get_json` and `delete` are the one-liners;
//! `send_json` and `post_empty` keep a refusal's `code` for the account's forms.

pub mod client;

pub use crate::session::error::ClientError;
pub use client::{ApiClient, Refusal, RequestStats};
