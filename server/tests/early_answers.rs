//! Early answers on a real socket (127.0.0.1): the server answers before it has read the request
//! body (413, 401/403, 404, 405, 415, 408) while the client is still sending it. The client must
//! always be able to send its whole request and read the complete answer, which says
//! `Connection: close`; then the server ends the connection with a FIN, not a reset.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Backend, TestApp, APP_ORIGIN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The body every client tries to send: 1 MiB, far above the 16 KiB limit.
const BODY: usize = 1024 * 1024;
/// Exchanges per case.
const TRIES: usize = 50;
/// Bound of one exchange (connect, send, read the answer).
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the client waits for the end of the connection after an answer that says
/// `Connection: close` (the server's FIN comes right after the answer).
const END_TIMEOUT: Duration = Duration::from_secs(1);
/// Bound of each test, failing or not: exchanges not started by then count as failed.
const TEST_BUDGET: Duration = Duration::from_secs(15);

#[derive(Clone, Copy, Debug)]
enum Framing {
    /// `Content-Length: BODY`.
    Length,
    /// `Transfer-Encoding: chunked`, 16 KiB chunks.
    Chunked,
}

/// How the client paces its body.
#[derive(Clone, Copy, Debug)]
enum Pace {
    /// As fast as the socket takes it (on loopback most of 1 MiB fits in the socket buffers).
    Burst,
    /// 64 KiB per millisecond, like a fast network link: the body is still coming when the
    /// server answers.
    Link,
    /// `first` bytes, a pause, then the rest in 64 KiB pieces a few ms apart (straddling a
    /// short request timeout).
    Stall { first: usize, pause: Duration },
}

#[derive(Clone, Debug)]
struct Case {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    framing: Framing,
    /// Body bytes (before chunked framing).
    len: usize,
    pace: Pace,
    expect: u16,
}

impl Case {
    fn new(name: &'static str, method: &'static str, path: &'static str, expect: u16) -> Self {
        Self {
            name,
            method,
            path,
            headers: vec![("content-type", "application/json")],
            framing: Framing::Length,
            len: BODY,
            pace: Pace::Burst,
            expect,
        }
    }
    fn len(mut self, len: usize) -> Self {
        self.len = len;
        self
    }
    fn header(mut self, k: &'static str, v: &'static str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(k));
        self.headers.push((k, v));
        self
    }
    fn chunked(mut self) -> Self {
        self.framing = Framing::Chunked;
        self
    }
    fn paced(mut self, pace: Pace) -> Self {
        self.pace = pace;
        self
    }
}

/// A complete answer as the client read it.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses `buf` as one response with a Content-Length; `None` while it is incomplete.
fn parse_answer(buf: &[u8]) -> Option<Answer> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())?;
    let body = buf.get(end + 4..end + 4 + len)?.to_vec();
    Some(Answer {
        status,
        headers,
        body,
    })
}

/// The request head and the framed body (the body bytes are all `b'x'`: never valid JSON).
fn request_bytes(case: &Case, addr: SocketAddr) -> (Vec<u8>, Vec<u8>) {
    let mut head = format!("{} {} HTTP/1.1\r\nhost: {addr}\r\n", case.method, case.path);
    for (k, v) in &case.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = match case.framing {
        Framing::Length => {
            head.push_str(&format!("content-length: {}\r\n", case.len));
            vec![b'x'; case.len]
        }
        Framing::Chunked => {
            head.push_str("transfer-encoding: chunked\r\n");
            let mut b = Vec::with_capacity(case.len + case.len / 1000 + 16);
            for chunk in vec![b'x'; case.len].chunks(16 * 1024) {
                b.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                b.extend_from_slice(chunk);
                b.extend_from_slice(b"\r\n");
            }
            b.extend_from_slice(b"0\r\n\r\n");
            b
        }
    };
    head.push_str("\r\n");
    (head.into_bytes(), body)
}

/// What the client saw.
#[derive(Debug)]
struct Outcome {
    /// The error that stopped the sending of the request (a reset or a broken pipe).
    send_error: Option<std::io::ErrorKind>,
    /// The error that stopped the reading of the answer.
    read_error: Option<std::io::ErrorKind>,
    /// The complete answer, if it could be read.
    answer: Option<Answer>,
    /// After an answer with `Connection: close`: `None` for an end of stream (the server's
    /// FIN), else what came.
    after: Option<String>,
}

/// One exchange as most HTTP/1.1 clients do it: send the whole request, then read the answer.
/// A failed send does not stop this client: it still tries to read an answer.
async fn exchange(addr: SocketAddr, case: &Case) -> std::io::Result<Outcome> {
    let mut stream = TcpStream::connect(addr).await?;
    let (head, body) = request_bytes(case, addr);
    let sent = async {
        stream.write_all(&head).await?;
        match case.pace {
            Pace::Burst => stream.write_all(&body).await?,
            Pace::Link => {
                for piece in body.chunks(64 * 1024) {
                    stream.write_all(piece).await?;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            Pace::Stall { first, pause } => {
                stream.write_all(&body[..first]).await?;
                tokio::time::sleep(pause).await;
                for piece in body[first..].chunks(64 * 1024) {
                    stream.write_all(piece).await?;
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
            }
        }
        stream.flush().await
    }
    .await;
    let mut buf = Vec::with_capacity(4096);
    let mut tmp = [0u8; 4096];
    let mut read_error = None;
    let answer = loop {
        if let Some(a) = parse_answer(&buf) {
            break Some(a);
        }
        match stream.read(&mut tmp).await {
            Ok(0) => break None,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
            Err(e) => {
                read_error = Some(e.kind());
                break None;
            }
        }
    };
    let after = match &answer {
        Some(a) if a.header("connection") == Some("close") => {
            match tokio::time::timeout(END_TIMEOUT, stream.read(&mut tmp)).await {
                Ok(Ok(0)) => None,
                Ok(Ok(n)) => Some(format!("{n} more bytes")),
                Ok(Err(e)) => Some(format!("{:?}", e.kind())),
                Err(_) => Some("the connection stayed open".to_owned()),
            }
        }
        _ => None,
    };
    Ok(Outcome {
        send_error: sent.err().map(|e| e.kind()),
        read_error,
        answer,
        after,
    })
}

/// Runs `case` `tries` times one after the other. `Err` lists the exchanges in which the
/// client could not send its request and read the complete answer (with a count); each answer
/// must have the expected status, a JSON `{"message": ...}` and `Connection: close` (the server
/// leaves the body unread, so it ends the connection).
async fn every_answer_is_readable(
    addr: SocketAddr,
    case: &Case,
    tries: usize,
    deadline: Instant,
) -> Result<Vec<Answer>, String> {
    let mut lost = Vec::new();
    let mut not_run = 0;
    let mut answers = Vec::new();
    for i in 0..tries {
        if Instant::now() >= deadline {
            not_run = tries - i;
            lost.push(format!(
                "  tries {i}..{tries}: not run, the test's budget was spent"
            ));
            break;
        }
        match tokio::time::timeout(EXCHANGE_TIMEOUT, exchange(addr, case)).await {
            Ok(Ok(Outcome {
                send_error: None,
                answer: Some(a),
                after: None,
                ..
            })) => answers.push(a),
            Ok(Ok(o)) => lost.push(format!(
                "  try {i}: send failed: {:?}, read failed: {:?}, answer {}, after it: {}",
                o.send_error,
                o.read_error,
                match (&o.answer, o.send_error) {
                    (Some(a), Some(_)) =>
                        format!("{} still readable after the failed send", a.status),
                    (Some(a), None) => format!("{}", a.status),
                    (None, _) => "lost".to_owned(),
                },
                o.after.as_deref().unwrap_or("end of stream"),
            )),
            Ok(Err(e)) => lost.push(format!("  try {i}: connect: {e}")),
            Err(_) => lost.push(format!("  try {i}: no answer within {EXCHANGE_TIMEOUT:?}")),
        }
    }
    let mut wrong = Vec::new();
    for a in &answers {
        let json: Option<serde_json::Value> = serde_json::from_slice(&a.body).ok();
        let message = json.as_ref().and_then(|v| v["message"].as_str());
        if a.status != case.expect
            || a.header("content-type") != Some("application/json")
            || message.is_none()
        {
            wrong.push(format!("  not a JSON {} answer: {a:?}", case.expect));
        } else if a.header("connection") != Some("close") {
            wrong.push(format!(
                "  the body was left unread, yet the answer does not say `Connection: close`: \
                 {:?}",
                a.headers
            ));
        }
    }
    if !lost.is_empty() || !wrong.is_empty() {
        let wrong_count = wrong.len();
        wrong.dedup();
        return Err(format!(
            "{} ({:?}, {:?}): {} of {tries} exchanges failed, {wrong_count} wrong answers:\n{}",
            case.name,
            case.framing,
            case.pace,
            lost.len() - usize::from(not_run > 0) + not_run,
            lost.iter()
                .chain(&wrong)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        ));
    }
    Ok(answers)
}

/// Runs every case (all of them, so that a failure report has every count) and fails with the
/// report of those that lost answers.
async fn all_answers_are_readable(addr: SocketAddr, cases: &[(Case, usize)]) -> Vec<Vec<Answer>> {
    let deadline = Instant::now() + TEST_BUDGET;
    let mut failures = Vec::new();
    let mut answers = Vec::new();
    for (case, tries) in cases {
        match every_answer_is_readable(addr, case, *tries, deadline).await {
            Ok(a) => answers.push(a),
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_answers_to_a_1_mib_body_are_always_readable() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let addr = app.serve().await;
    let signin = "/api/auth/signin";
    let mut runs = vec![
        (
            Case::new("413 Content-Length", "POST", signin, 413).header("origin", APP_ORIGIN),
            TRIES,
        ),
        (
            Case::new("413 chunked", "POST", signin, 413).chunked(),
            TRIES,
        ),
        // On a link (not loopback) the body is still coming when the answer is sent.
        (
            Case::new("413 Content-Length", "POST", signin, 413).paced(Pace::Link),
            20,
        ),
        (
            Case::new("413 chunked", "POST", signin, 413)
                .chunked()
                .paced(Pace::Link),
            20,
        ),
    ];
    // Answers given without reading the body. A Content-Length above the limit would get the
    // 413 first: these bodies are chunked (1 MiB) or exactly at the limit (16 KiB).
    let unread = [
        Case::new("403 cross-site sign-in", "POST", signin, 403)
            .header("origin", "http://evil.test"),
        Case::new("401 bad token", "DELETE", "/api/auth/sessions/x", 401)
            .header("x-access-token", "not-a-token"),
        Case::new("404 unknown API path", "POST", "/api/nope", 404),
        Case::new("404 unknown path", "POST", "/nope", 404),
        Case::new("405 POST to a GET route", "POST", "/api/test/all", 405),
        Case::new("415 wrong content type", "POST", "/api/auth/signup", 415)
            .header("content-type", "text/plain"),
    ];
    let max_body = app.state.settings().max_body;
    for case in unread {
        runs.push((case.clone().chunked(), 30));
        runs.push((case.clone().chunked().paced(Pace::Link), 10));
        runs.push((case.len(max_body), 30));
    }
    let answers = all_answers_are_readable(addr, &runs).await;
    // The 413 keeps its CORS headers.
    for a in &answers[0] {
        assert_eq!(
            a.header("access-control-allow-origin"),
            Some(APP_ORIGIN),
            "{a:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_408_to_a_client_still_sending_is_always_readable() {
    // A body limit above the body, so that the timeout (not the limit) ends the request.
    let app = TestApp::with(&Backend::Sqlite, |s| {
        s.request_timeout_ms = 150;
        s.max_body = 4 * BODY;
    })
    .await;
    let addr = app.serve().await;
    // The client stalls just under the timeout, then sends the rest while the 408 is written.
    let case =
        Case::new("408 request timeout", "POST", "/api/auth/signup", 408).paced(Pace::Stall {
            first: 8 * 1024,
            pause: Duration::from_millis(140),
        });
    all_answers_are_readable(addr, &[(case, 12)]).await;
}

/// Reads one answer (with a Content-Length) from a kept-alive connection.
async fn read_answer(stream: &mut TcpStream) -> Answer {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        if let Some(a) = parse_answer(&buf) {
            return a;
        }
        let n = tokio::time::timeout(EXCHANGE_TIMEOUT, stream.read(&mut tmp))
            .await
            .expect("an answer in time")
            .expect("read");
        assert!(
            n > 0,
            "the connection ended: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&tmp[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_that_read_the_body_keep_the_connection_alive() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let addr = app.serve().await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // A wrong password is answered (401) after the body was read.
    let body = r#"{"username":"nobody","password":"wrong-password"}"#;
    let req = format!(
        "POST /api/auth/signin HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let a = read_answer(&mut stream).await;
    assert_eq!(a.status, 401, "{a:?}");
    assert_eq!(a.header("connection"), None, "{a:?}");
    // The same connection carries the next request.
    let req = format!("GET /api/test/all HTTP/1.1\r\nhost: {addr}\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let a = read_answer(&mut stream).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("connection"), None, "{a:?}");
}
