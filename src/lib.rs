//! yew-session
