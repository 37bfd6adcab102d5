//! Checks THE tutorial fake (the `tutorial-fake` crate, which the e2e tests serve too, reached
//! here through `tutorial.rs`) against the record of the real Node backend,
//! ../shared/TUTORIAL-BACKEND.md, line by line: every row of the record's table must have a
//! probe here (the request and case the row names), and the fake's answers must have the row's
//! status and body shape, read from the record itself. The headers every response carries and
//! the access token's payload, stated below the table, are checked too. A row added to, removed
//! from or changed in the record fails the check until the fake (and its probe) follow.

use std::collections::{BTreeSet, HashSet};

use api_types::paths;
use yew_session::session::ports::{HttpRequest, HttpResponse, Method};

use super::{Flavor, World, PASSWORD};

/// Where the record is: beside the repository, as laid out for the team and for CI.
pub const RECORD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/TUTORIAL-BACKEND.md");

/// One row of the record's table (an empty request cell repeats the one above).
#[derive(Debug, Clone)]
pub struct Row {
    pub request: String,
    pub case: String,
    pub status: String,
    pub body: String,
}

/// The rows of the first table whose header is `| request | case | status | body |`.
pub fn table_rows(record: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut in_table = false;
    let mut request = String::new();
    for line in record.lines() {
        let line = line.trim();
        if !line.starts_with('|') {
            if in_table {
                break;
            }
            continue;
        }
        let cells: Vec<String> = line
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_owned())
            .collect();
        if !in_table {
            in_table = cells == ["request", "case", "status", "body"];
            continue;
        }
        if cells
            .iter()
            .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
        {
            continue;
        }
        assert_eq!(cells.len(), 4, "a table row of four cells: {line}");
        if !cells[0].is_empty() {
            request = cells[0].clone();
        }
        rows.push(Row {
            request: request.clone(),
            case: cells[1].clone(),
            status: cells[2].clone(),
            body: cells[3].clone(),
        });
    }
    rows
}

/// The `code spans` of a Markdown cell or paragraph (line breaks inside one become spaces).
fn code_spans(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// What a row says its body is.
#[derive(Debug, Clone)]
enum Body {
    /// No answer at all.
    Never,
    /// An HTML page (containing this text, when given).
    Html(Option<String>),
    /// This exact text with this content type.
    Text(String, String),
    /// A JSON object of exactly these keys; values given are checked (see `check_value`).
    Json(Vec<(String, Option<serde_json::Value>)>),
    /// The JSON `message` contains this word (the record abbreviates: `...Email...`).
    MessageContains(String),
}

/// Splits `a,b,"c,d",[e,f]` at the top-level commas.
fn top_level_items(s: &str) -> Vec<String> {
    let (mut items, mut cur, mut depth, mut quoted) = (Vec::new(), String::new(), 0, false);
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            '[' | '{' if !quoted => depth += 1,
            ']' | '}' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                items.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        items.push(cur);
    }
    items
}

/// A JSON shape as the record writes it: `{"id":1,"username","email",...}`, where a key without
/// a value may hold anything and a value `"<...>"` names a kind of token.
fn json_shape(span: &str) -> Vec<(String, Option<serde_json::Value>)> {
    let inner = span
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or_else(|| panic!("not a JSON object shape: {span}"));
    top_level_items(inner)
        .iter()
        .map(|item| {
            let (k, v) = match item.split_once("\":") {
                Some((k, v)) => (format!("{k}\""), Some(v.trim())),
                None => (item.trim().to_owned(), None),
            };
            let key: String =
                serde_json::from_str(k.trim()).unwrap_or_else(|e| panic!("key {k} in {span}: {e}"));
            let value = v.map(|v| {
                serde_json::from_str(v).unwrap_or_else(|e| panic!("value {v} in {span}: {e}"))
            });
            (key, value)
        })
        .collect()
}

fn body_shapes(cell: &str) -> Vec<Body> {
    if cell.contains("never answers") {
        return vec![Body::Never];
    }
    if cell.starts_with("HTML page") {
        return vec![Body::Html(None)];
    }
    let spans = code_spans(cell);
    if cell.starts_with("HTML `") {
        return vec![Body::Html(Some(spans[0].clone()))];
    }
    if let Some(ct) = ["text/html", "text/plain"]
        .iter()
        .find(|ct| cell.contains(&format!("` as {ct}")))
    {
        return vec![Body::Text(spans[0].clone(), ct.to_string())];
    }
    spans
        .iter()
        .map(
            |s| match s.strip_prefix("...").and_then(|s| s.strip_suffix("...")) {
                Some(word) => Body::MessageContains(word.to_owned()),
                None => Body::Json(json_shape(s)),
            },
        )
        .collect()
}

/// Keys the record says are absent: "— no expiresIn, no tokenType".
fn absent_keys(cell: &str) -> Vec<String> {
    cell.split(['—', ','])
        .filter_map(|p| p.trim().strip_prefix("no "))
        .filter(|k| k.chars().all(|c| c.is_ascii_alphanumeric()))
        .map(String::from)
        .collect()
}

/// What a probe knows to check placeholders with.
#[derive(Debug, Default)]
struct Ctx {
    /// The refresh token the probe presented.
    presented: Option<String>,
    /// The access token the probe had before (a "new" one must differ).
    previous_access: Option<String>,
}

fn b64url_json(part: &str) -> Option<serde_json::Value> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn is_uuid_v4(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && s.chars()
            .all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        && groups[2].starts_with('4')
        && groups[3].starts_with(['8', '9', 'a', 'b'])
}

fn check_value(what: &str, expected: &serde_json::Value, got: &serde_json::Value, ctx: &Ctx) {
    let placeholder = expected
        .as_str()
        .and_then(|s| s.strip_prefix('<'))
        .and_then(|s| s.strip_suffix('>'));
    match placeholder {
        None => assert_eq!(got, expected, "{what}"),
        Some(kind) => {
            let s = got
                .as_str()
                .unwrap_or_else(|| panic!("{what}: {got} is not a string"));
            match kind {
                "uuid v4" => assert!(is_uuid_v4(s), "{what}: {s} is not a uuid v4"),
                "the SAME uuid" => assert_eq!(Some(s), ctx.presented.as_deref(), "{what}"),
                jwt if jwt.ends_with("JWT") => {
                    let parts: Vec<&str> = s.split('.').collect();
                    assert_eq!(parts.len(), 3, "{what}: {s} is not a JWT");
                    let header = b64url_json(parts[0]).expect("JWT header");
                    if let Some(alg) = jwt.strip_suffix(" JWT").filter(|a| *a != "new") {
                        assert_eq!(header["alg"], alg, "{what}: {header}");
                    }
                    if jwt.starts_with("new") {
                        assert_ne!(Some(s), ctx.previous_access.as_deref(), "{what}: not new");
                    }
                }
                other => panic!("{what}: the check does not know the placeholder <{other}>"),
            }
        }
    }
}

fn content_type(resp: &HttpResponse) -> &str {
    resp.header("content-type").unwrap_or_default()
}

fn check_body(what: &str, shape: &Body, absent: &[String], resp: &HttpResponse, ctx: &Ctx) {
    match shape {
        Body::Never => panic!("{what}: answered {} {}", resp.status, resp.body),
        Body::Html(text) => {
            assert!(
                content_type(resp).starts_with("text/html"),
                "{what}: {resp:?}"
            );
            assert!(resp.body.contains("<html"), "{what}: {}", resp.body);
            match text {
                Some(t) => assert!(resp.body.contains(t.as_str()), "{what}: {}", resp.body),
                // "a stack trace": an error and the frames it went through (Express writes
                // them one per line, indented with &nbsp;).
                None => assert!(
                    resp.body.contains("Error: ") && resp.body.contains("&nbsp;at "),
                    "{what}: {}",
                    resp.body
                ),
            }
        }
        Body::Text(text, ct) => {
            assert!(
                content_type(resp).starts_with(ct.as_str()),
                "{what}: {resp:?}"
            );
            assert_eq!(&resp.body, text, "{what}");
        }
        Body::Json(keys) => {
            assert!(
                content_type(resp).starts_with("application/json"),
                "{what}: {resp:?}"
            );
            let v: serde_json::Value = serde_json::from_str(&resp.body)
                .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", resp.body));
            let got: BTreeSet<&str> = v
                .as_object()
                .unwrap_or_else(|| panic!("{what}: not an object: {v}"))
                .keys()
                .map(String::as_str)
                .collect();
            let want: BTreeSet<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(got, want, "{what}: the keys of {v}");
            for (k, expected) in keys {
                if let Some(e) = expected {
                    check_value(&format!("{what}: {k}"), e, &v[k.as_str()], ctx);
                }
            }
            for k in absent {
                assert!(v.get(k).is_none(), "{what}: {k} present in {v}");
            }
        }
        Body::MessageContains(word) => {
            let v: serde_json::Value = serde_json::from_str(&resp.body)
                .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", resp.body));
            let m = v["message"].as_str().unwrap_or_default();
            assert!(m.contains(word.as_str()), "{what}: {m}");
        }
    }
}

fn post(path: &str, body: Option<serde_json::Value>) -> HttpRequest {
    let mut r = HttpRequest::new(Method::Post, path);
    r.headers
        .push(("content-type".into(), "application/json".into()));
    r.body = body.map(|b| b.to_string());
    r
}

fn get(path: &str, header: Option<(&str, &str)>) -> HttpRequest {
    let mut r = HttpRequest::new(Method::Get, path);
    if let Some((k, v)) = header {
        r.headers.push((k.into(), v.into()));
    }
    r
}

fn ask(w: &World, req: &HttpRequest) -> Option<HttpResponse> {
    w.tutorial().handle(req)
}

fn json_of(resp: &Option<HttpResponse>) -> serde_json::Value {
    let r = resp.as_ref().expect("an answer");
    serde_json::from_str(&r.body).expect("JSON")
}

/// Signs `alice` (the fake's first user) in: the sign-in answer.
fn signin(w: &World) -> serde_json::Value {
    w.ensure_user("alice");
    json_of(&ask(
        w,
        &post(
            paths::SIGNIN,
            Some(serde_json::json!({"username": "alice", "password": PASSWORD})),
        ),
    ))
}

fn signup(username: &str, email: &str, extra: serde_json::Value) -> HttpRequest {
    let mut body = serde_json::json!({"username": username, "email": email, "password": "secret1"});
    for (k, v) in extra.as_object().expect("object") {
        if v.is_null() {
            body.as_object_mut().unwrap().remove(k);
        } else {
            body[k] = v.clone();
        }
    }
    post(paths::SIGNUP, Some(body))
}

/// Runs the row's case(s) against a fresh fake: one answer per sub-case the row names.
fn probe(w: &World, request: &str, case: &str) -> Option<(Vec<Option<HttpResponse>>, Ctx)> {
    let mut ctx = Ctx::default();
    let none = serde_json::json!({});
    let answers = match (request, case) {
        ("POST /api/auth/signup", "ok") => vec![ask(w, &signup("bob", "bob@x.io", none))],
        ("POST /api/auth/signup", "username taken / email taken") => {
            ask(w, &signup("bob", "bob@x.io", none));
            vec![
                ask(w, &signup("bob", "other@x.io", serde_json::json!({}))),
                ask(w, &signup("carol", "bob@x.io", serde_json::json!({}))),
            ]
        }
        ("POST /api/auth/signup", "unknown role") => vec![ask(
            w,
            &signup(
                "bob",
                "bob@x.io",
                serde_json::json!({"roles": ["superuser"]}),
            ),
        )],
        ("POST /api/auth/signup", "password missing") => vec![ask(
            w,
            &signup("bob", "bob@x.io", serde_json::json!({"password": null})),
        )],
        ("POST /api/auth/signup", "username or email missing") => vec![
            ask(
                w,
                &signup("bob", "bob@x.io", serde_json::json!({"username": null})),
            ),
            ask(
                w,
                &signup("bob", "bob@x.io", serde_json::json!({"email": null})),
            ),
        ],
        ("POST /api/auth/signin", "ok") => {
            w.ensure_user("alice");
            vec![ask(
                w,
                &post(
                    paths::SIGNIN,
                    Some(serde_json::json!({"username": "alice", "password": PASSWORD})),
                ),
            )]
        }
        ("POST /api/auth/signin", "wrong password") => {
            w.ensure_user("alice");
            vec![ask(
                w,
                &post(
                    paths::SIGNIN,
                    Some(serde_json::json!({"username": "alice", "password": "nope"})),
                ),
            )]
        }
        ("POST /api/auth/signin", "unknown user") => vec![ask(
            w,
            &post(
                paths::SIGNIN,
                Some(serde_json::json!({"username": "nobody", "password": PASSWORD})),
            ),
        )],
        ("GET /api/test/all", "–") => vec![ask(w, &get(paths::TEST_ALL, None))],
        ("GET /api/test/user", "no token") => vec![ask(w, &get(paths::TEST_USER, None))],
        ("GET /api/test/user", "`x-access-token: <valid>`") => {
            let t = signin(w)["accessToken"].as_str().unwrap().to_owned();
            vec![ask(w, &get(paths::TEST_USER, Some(("x-access-token", &t))))]
        }
        ("GET /api/test/user", "`Authorization: Bearer <valid>`") => {
            let t = signin(w)["accessToken"].as_str().unwrap().to_owned();
            let bearer = format!("Bearer {t}");
            vec![ask(
                w,
                &get(paths::TEST_USER, Some(("authorization", &bearer))),
            )]
        }
        ("GET /api/test/user", "bad signature, garbage, alg none") => {
            let t = signin(w)["accessToken"].as_str().unwrap().to_owned();
            let (unsigned, sig) = t.rsplit_once('.').unwrap();
            let flipped = format!(
                "{unsigned}.{}{}",
                if sig.starts_with('A') { 'B' } else { 'A' },
                &sig[1..]
            );
            let payload = unsigned.split_once('.').unwrap().1;
            let alg_none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
            vec![
                ask(
                    w,
                    &get(paths::TEST_USER, Some(("x-access-token", &flipped))),
                ),
                ask(
                    w,
                    &get(paths::TEST_USER, Some(("x-access-token", "garbage"))),
                ),
                ask(
                    w,
                    &get(paths::TEST_USER, Some(("x-access-token", &alg_none))),
                ),
            ]
        }
        ("GET /api/test/user", "expired") => {
            let t = signin(w)["accessToken"].as_str().unwrap().to_owned();
            w.sleep_jump(w.tutorial().access_ttl_s as f64 * 1000.0 + 1_000.0);
            vec![ask(w, &get(paths::TEST_USER, Some(("x-access-token", &t))))]
        }
        ("GET /api/test/mod, /admin", "wrong role") => {
            let t = signin(w)["accessToken"].as_str().unwrap().to_owned();
            vec![
                ask(w, &get(paths::TEST_MOD, Some(("x-access-token", &t)))),
                ask(w, &get(paths::TEST_ADMIN, Some(("x-access-token", &t)))),
            ]
        }
        ("POST /api/auth/refreshtoken", "ok") => {
            let s = signin(w);
            ctx.presented = s["refreshToken"].as_str().map(String::from);
            ctx.previous_access = s["accessToken"].as_str().map(String::from);
            // A second later, so that the new token's iat differs from the sign-in's.
            w.sleep_jump(1_000.0);
            vec![ask(
                w,
                &post(
                    paths::REFRESH,
                    Some(serde_json::json!({"refreshToken": ctx.presented})),
                ),
            )]
        }
        ("POST /api/auth/refreshtoken", "missing / `{}`") => vec![
            ask(w, &post(paths::REFRESH, None)),
            ask(w, &post(paths::REFRESH, Some(serde_json::json!({})))),
        ],
        ("POST /api/auth/refreshtoken", "unknown") => vec![ask(
            w,
            &post(
                paths::REFRESH,
                Some(serde_json::json!({"refreshToken": "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed"})),
            ),
        )],
        ("POST /api/auth/refreshtoken", "expired (first use; the row is then deleted)") => {
            w.tutorial().family_ttl_s = 1;
            let token = signin(w)["refreshToken"].clone();
            w.sleep_jump(2_000.0);
            let req = post(
                paths::REFRESH,
                Some(serde_json::json!({"refreshToken": token})),
            );
            let first = ask(w, &req);
            // "the row is then deleted": the second use is an unknown token.
            let second = json_of(&ask(w, &req));
            assert_eq!(
                second["message"], "Refresh token is not in database!",
                "the expired row is deleted"
            );
            vec![first]
        }
        ("POST /api/auth/signout", "–") => vec![ask(w, &post(paths::SIGNOUT, Some(none)))],
        _ => return None,
    };
    Some((answers, ctx))
}

/// The headers every response carries, from the paragraph below the table: `(name, value,
/// only under /api)`.
fn common_headers(record: &str) -> Vec<(String, String, bool)> {
    let start = record
        .find("Every response:")
        .expect("the record states the headers of every response");
    let para = record[start..].split("\n\n").next().unwrap();
    let (all, api) = para
        .split_once("routes under /api also")
        .unwrap_or((para, ""));
    let headers = |text: &str, api_only: bool| -> Vec<(String, String, bool)> {
        code_spans(text)
            .into_iter()
            .filter_map(|s| {
                s.split_once(": ")
                    .map(|(k, v)| (k.to_owned(), v.to_owned(), api_only))
            })
            .collect()
    };
    let mut out = headers(all, false);
    out.extend(headers(api, true));
    out
}

/// The whole check; panics at the first difference, naming the row.
pub fn check_tutorial_fake_against_record() {
    let record = std::fs::read_to_string(RECORD).unwrap_or_else(|e| {
        panic!("the record of the tutorial's backend is not readable at {RECORD}: {e}")
    });
    let rows = table_rows(&record);
    assert!(rows.len() >= 20, "the record's table: {rows:#?}");
    let headers = common_headers(&record);
    assert!(headers.len() >= 4, "{headers:?}");
    let mut covered = HashSet::new();
    for row in &rows {
        let what = format!("{} | {}", row.request, row.case);
        let w = World::new(Flavor::Tutorial);
        let (answers, ctx) = probe(&w, &row.request, &row.case).unwrap_or_else(|| {
            panic!("the record has a row the fake is not checked against: {what}")
        });
        covered.insert((row.request.clone(), row.case.clone()));
        let shapes = body_shapes(&row.body);
        let absent = absent_keys(&row.body);
        assert!(
            shapes.len() == 1 || shapes.len() == answers.len(),
            "{what}: {} bodies for {} cases",
            shapes.len(),
            answers.len()
        );
        for (i, answer) in answers.iter().enumerate() {
            let what = format!("{what} [{i}]");
            let shape = &shapes[if shapes.len() == 1 { 0 } else { i }];
            let Some(resp) = answer else {
                assert_eq!(row.status, "—", "{what}: the fake never answered");
                assert!(
                    matches!(shape, Body::Never),
                    "{what}: the fake never answered"
                );
                continue;
            };
            let status: u16 = row.status.parse().unwrap_or_else(|_| {
                panic!(
                    "{what}: answered {}, the record says {}",
                    resp.status, row.status
                )
            });
            assert_eq!(resp.status, status, "{what}: {}", resp.body);
            check_body(&what, shape, &absent, resp, &ctx);
            for (name, value, api_only) in &headers {
                if *api_only && !row.request.contains(" /api/") {
                    continue;
                }
                assert_eq!(
                    resp.header(name),
                    Some(value.as_str()),
                    "{what}: header {name}"
                );
            }
            if row.body.contains("the connection is closed") {
                assert_eq!(
                    resp.header("connection"),
                    Some("close"),
                    "{what}: the connection is closed"
                );
            }
        }
        if row.body.contains("admin does not imply moderator") {
            w.tutorial().ensure_user("alice");
            let admin = ask(
                &w,
                &signup("root", "root@x.io", serde_json::json!({"roles": ["admin"]})),
            );
            assert_eq!(admin.map(|r| r.status), Some(200));
            let t = json_of(&ask(
                &w,
                &post(
                    paths::SIGNIN,
                    Some(serde_json::json!({"username": "root", "password": "secret1"})),
                ),
            ))["accessToken"]
                .as_str()
                .unwrap()
                .to_owned();
            let r = ask(&w, &get(paths::TEST_MOD, Some(("x-access-token", &t)))).unwrap();
            assert_eq!(r.status, 403, "{what}: admin does not imply moderator");
            let r = ask(&w, &get(paths::TEST_ADMIN, Some(("x-access-token", &t)))).unwrap();
            assert_eq!(r.status, 200, "{what}: the admin's own content");
        }
    }
    assert_eq!(
        covered.len(),
        rows.len(),
        "two rows with the same request and case"
    );
    // Below the table: the access token's payload, and byte-identical tokens within a second.
    let payload_line = record
        .lines()
        .find(|l| l.starts_with("Access-token payload:"))
        .expect("the record states the access token's payload");
    let keys: BTreeSet<String> = code_spans(payload_line)[0]
        .trim_matches(['{', '}'])
        .split(',')
        .map(|k| k.trim().trim_matches('"').to_owned())
        .collect();
    let w = World::new(Flavor::Tutorial);
    let first = signin(&w)["accessToken"].as_str().unwrap().to_owned();
    let payload = b64url_json(first.split('.').nth(1).unwrap()).unwrap();
    let got: BTreeSet<String> = payload.as_object().unwrap().keys().cloned().collect();
    assert_eq!(got, keys, "access-token payload {payload}");
    if record.contains("same second return byte-identical access tokens") {
        w.sleep_jump(10.0);
        let second = signin(&w)["accessToken"].as_str().unwrap().to_owned();
        assert_eq!(first, second, "two sign-ins in the same second");
    }
}
