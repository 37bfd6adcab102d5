//! Building blocks shared by pages; the session provider lives here.

pub mod nav;
pub mod session_provider;
