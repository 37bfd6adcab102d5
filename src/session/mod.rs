//! The framework-free session core: no yew, no web-sys. Browser effects arrive through the
//! traits in [`ports`]; the real implementations are in `crate::browser`, the fakes in `tests/common`.

pub mod claims;
pub mod engine;
pub mod error;
pub mod events;
pub mod persist;
pub mod policy;
pub mod ports;
pub mod tabs;
pub mod time;
pub mod types;

pub use engine::{Engine, EngineStats, Ports, WakeReason, WeakEngine};
pub use error::{ClientError, FailureKind};
pub use events::{EventBus, SessionEvent, Subscription};
pub use tabs::TabMessage;
pub use types::{LogoutReason, SessionStatus, Timeline, UserInfo};
