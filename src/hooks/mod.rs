//! Hooks: each returns a handle with domain verbs.

pub mod use_api;
pub mod use_content;
pub mod use_session;
pub mod use_submission;
