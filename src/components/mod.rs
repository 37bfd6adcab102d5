//! Building blocks shared by pages; the session provider lives here.

pub mod buttons;
pub mod guard;
pub mod icons;
pub mod inspector;
pub mod nav;
pub mod numbers;
pub mod offline_banner;
pub mod session_end;
pub mod session_provider;
pub mod toasts;
pub mod words;
