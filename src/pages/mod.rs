//! What the routes render.

pub mod board;
pub mod home;
pub mod login;
pub mod not_found;
pub mod password;
pub mod profile;
pub mod register;
