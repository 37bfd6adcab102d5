//! The engine's decisions, tested directly: each transition gets a state, an input and a time,
//! and is judged by the state it leaves and the effects it asks for. (The engine as a whole,
//! with its shell, timers, lock and the real session-api, is tested in `tests/session_*.rs`.)

mod bff;
mod install;
mod restore_schedule;
mod tabs;

pub(super) use super::super::error::{ClientError, FailureKind};
pub(super) use super::super::events::SessionEvent;
pub(super) use super::super::policy::{self, TokenTiming};
pub(super) use super::super::ports::Area;
pub(super) use super::super::tabs::TabMessage;
pub(super) use super::super::types::{LogoutReason, SessionStatus, UserInfo};
pub(super) use super::logout::{self, Tell};
pub(super) use super::refresh::{answered, verdict, Answer, Fresh, Verdict};
pub(super) use super::requests::{before_send, BeforeSend};
pub(super) use super::restore::{plan, Found, Plan};
pub(super) use super::schedule::{self, Tick};
pub(super) use super::state::{Effect, Got, Obtained, Phase, Save, State, Tab, Token, Trouble};
pub(super) use super::sync::{adopt, received, News, Received};

pub(super) const T0: f64 = 1_000_000.0;
pub(super) const TAB: &str = "tab-a";
/// A fresh state of tab `TAB`; `compat`: compatibility mode, else cookie mode.
pub(super) fn fresh(compat: bool) -> State {
    State::new(Tab {
        id: TAB.into(),
        compat,
        margin_cap: None,
        bff: false,
    })
}

pub(super) const BOTH: Tell = Tell {
    server: true,
    tabs: true,
};

pub(super) fn user() -> UserInfo {
    UserInfo {
        id: "1".into(),
        username: "ann".into(),
        email: "ann@example.com".into(),
        roles: vec!["ROLE_USER".into()],
    }
}

/// A 60 s token received at `at`.
pub(super) fn timing(at: f64) -> TokenTiming {
    TokenTiming {
        sent_at_ms: at - 10.0,
        received_at_ms: at,
        date_header_ms: None,
        iat_ms: None,
        exp_ms: None,
        expires_in_s: Some(60),
        refresh_expires_in_s: Some(3_600),
    }
}

pub(super) fn obtained(got: Got, area: Option<Area>) -> Obtained {
    Obtained {
        access: "access-1".into(),
        refresh: area.map(|_| "refresh-1".into()),
        id_token: None,
        user: user(),
        timing: timing(T0),
        area,
        remember: true,
        got,
        bff: None,
    }
}

/// Signed in (cookie mode) at generation 1, token received at `T0`.
pub(super) fn signed_in() -> State {
    let mut st = fresh(false);
    st.epoch += 1;
    st.install(obtained(Got::SignIn, None), 0);
    st
}

pub(super) fn token(st: &State) -> &Token {
    st.token().expect("signed in")
}

pub(super) fn events(effects: &[Effect]) -> Vec<&SessionEvent> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Emit(ev) => Some(ev),
            _ => None,
        })
        .collect()
}

pub(super) fn broadcasts(effects: &[Effect]) -> Vec<&TabMessage> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Broadcast(m) => Some(m),
            _ => None,
        })
        .collect()
}

pub(super) fn news(generation: u64, login: bool) -> News {
    News {
        generation,
        access: format!("access-{generation}"),
        timeline: None,
        user: user(),
        login,
        refresh_token: None,
        session_only: false,
        id_token: None,
        bff: None,
    }
}

pub(super) fn answer(result: Result<(Fresh, TokenTiming), FailureKind>) -> Answer {
    Answer {
        result,
        profile: Some(user()),
        remembered: true,
        stored_generation: 0,
        jitter: 0.5,
    }
}

pub(super) fn refreshed(access: &str, at: f64) -> Result<(Fresh, TokenTiming), FailureKind> {
    let resp: api_types::RefreshResponse =
        serde_json::from_value(serde_json::json!({ "accessToken": access, "expiresIn": 60 }))
            .expect("refresh response");
    Ok((resp.into(), timing(at)))
}

/// A refresh answer for the current epoch.
pub(super) fn reply(
    st: &mut State,
    a: Answer,
    now: f64,
) -> (Result<u64, FailureKind>, Vec<Effect>) {
    let epoch = st.epoch;
    answered(st, a, epoch, now)
}
