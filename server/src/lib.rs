//! session-api: the reference auth server for yew-session.
