//! The refresh-token family as a state machine, checked against a simple model: random
//! interleavings of presenting any token the family ever had (the newest, a rotated one whose
//! answer was lost, one a frozen tab kept, the sign-in token of a client that never stores
//! rotated ones), signing out, and time passing, over HTTP on the real server.
//!
//! The rule (server/README.md, "Rotation rule"): the newest token rotates; a rotated token whose
//! successor was never presented gets that successor again; a rotated token whose successor was
//! presented gets the family's newest token if it comes within the grace window of its own
//! rotation, and revokes the family otherwise (reuse).

mod common;

use common::{Backend, TestApp};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;
use session_api::db::{NewFamily, Transport};
use session_api::keys::{hash_refresh_token, new_refresh_token, random_id};

#[derive(Debug, Clone)]
enum Op {
    /// Present the token at this index of the family's chain (taken modulo its length).
    Present(usize),
    /// Present a token the server never issued.
    Forged,
    /// Sign out with the token at this index.
    Signout(usize),
    /// Let this many seconds pass.
    Wait(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..12).prop_map(Op::Present),
        1 => Just(Op::Forged),
        1 => (0usize..12).prop_map(Op::Signout),
        3 => prop::sample::select(vec![0i64, 1, 2, 4, 5, 6, 30]).prop_map(Op::Wait),
    ]
}

/// What the model says about one family.
#[derive(Debug, Default)]
struct Model {
    /// Index of the newest (active) token; tokens 0..=newest exist.
    newest: usize,
    /// When each rotated token was rotated (ms), by index.
    rotated_at: Vec<i64>,
    /// Why the family ended, if it did.
    ended: Option<&'static str>,
}

const GRACE_MS: i64 = 5_000;
const MAX_WALK: usize = 8;

/// The expected answer to presenting token `i` at `now`: (status, code, token index).
fn present(m: &mut Model, i: usize, now: i64) -> (u16, Option<&'static str>, Option<usize>) {
    if let Some(why) = m.ended {
        return (403, Some(why), None);
    }
    if i == m.newest {
        m.rotated_at.push(now);
        m.newest += 1;
        return (200, None, Some(m.newest));
    }
    if i + 1 == m.newest || now - m.rotated_at[i] <= GRACE_MS {
        // Never-presented successor, or a racing tab walking on to the newest token.
        let walk = m.newest - 1 - i;
        if walk > MAX_WALK {
            return (503, None, None);
        }
        return (200, None, Some(m.newest));
    }
    m.ended = Some("refresh_token_reused");
    (403, Some("refresh_token_reused"), None)
}

async fn check(app: &TestApp, user_id: i64, ops: &[Op]) {
    let first = new_refresh_token();
    let now = app.state.now_ms();
    app.state
        .db()
        .create_family(NewFamily {
            id: random_id(16),
            user_id,
            transport: Transport::Body,
            device: "model".into(),
            now,
            expires_at: now + 7 * 86_400_000,
            token_hash: hash_refresh_token(&first),
        })
        .await
        .unwrap();
    // The chain is deterministic: token k+1 is the server's successor of token k.
    let mut chain = vec![first];
    let mut m = Model::default();
    for (step, op) in ops.iter().enumerate() {
        let ctx = format!("step {step} of {ops:?}");
        match op {
            Op::Wait(s) => app.advance_secs(*s),
            Op::Forged => {
                let r = app.refresh(&new_refresh_token()).await;
                assert_eq!(r.status, 403, "{ctx}");
                assert_eq!(r.json()["code"], "refresh_token_unknown", "{ctx}");
            }
            Op::Signout(i) => {
                let i = i % chain.len();
                let r = app
                    .post("/api/auth/signout", json!({"refreshToken": chain[i]}))
                    .await;
                assert_eq!(r.status, 200, "{ctx}");
                m.ended.get_or_insert("session_ended");
            }
            Op::Present(i) => {
                let i = i % chain.len();
                let (status, code, token) = present(&mut m, i, app.state.now_ms());
                while chain.len() <= m.newest {
                    let next = app.state.keys().successor_of(chain.last().unwrap());
                    chain.push(next);
                }
                let r = app.refresh(&chain[i]).await;
                assert_eq!(r.status.as_u16(), status, "{ctx}: {}", r.text());
                if let Some(code) = code {
                    assert_eq!(r.json()["code"], code, "{ctx}");
                }
                if let Some(k) = token {
                    assert_eq!(
                        r.json()["refreshToken"].as_str(),
                        Some(chain[k].as_str()),
                        "{ctx}: expected token {k}"
                    );
                }
            }
        }
        app.assert_one_active_token_per_family(&ctx).await;
    }
}

fn run_model(b: Option<Backend>, cases: u32) {
    let Some(b) = b else { return };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = rt.block_on(TestApp::new(&b));
    assert_eq!(rt.block_on(app.signup("model")).status, 200);
    let user_id = rt
        .block_on(app.state.db().user_by_username("model"))
        .unwrap()
        .unwrap()
        .id;
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&prop::collection::vec(op(), 1..40), |ops| {
            rt.block_on(check(&app, user_id, &ops));
            Ok(())
        })
        .unwrap();
}

#[test]
fn sqlite_family_follows_the_rotation_model() {
    run_model(Some(Backend::Sqlite), 96);
}

#[test]
fn postgres_family_follows_the_rotation_model() {
    run_model(Backend::postgres(), 96);
}
