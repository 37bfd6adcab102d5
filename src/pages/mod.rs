//! What the routes render.

pub mod board;
pub mod callback;
pub mod home;
pub mod login;
pub mod not_found;
pub mod profile;
pub mod register;
