//! The HTTP side: one interceptor client over the engine's transport, and one-line functions
//! per resource of the contract.

pub mod client;
pub mod resources;

pub use crate::session::error::ClientError;
pub use client::{ApiClient, RequestStats};
