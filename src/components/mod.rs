//! Reusable components; the session provider lives here.

pub mod session_provider;
