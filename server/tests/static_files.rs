//! The static app as served (`--static-dir`): precompressed `.br` / `.gz` copies chosen by
//! `Accept-Encoding`, the index.html fallback of SPA routes (compressed too), `Cache-Control`
//! (immutable for trunk's hashed names, `no-cache` for the rest), `Vary`, validators and 304s,
//! and the security headers — on a temp dir of fake trunk output whose compressed copies are
//! made here, and whose answers are decompressed here.

mod common;

use std::io::{Read, Write};
use std::path::Path;

use common::{Backend, Resp, TestApp};
use session_api::static_files::{IMMUTABLE, REVALIDATE};

const INDEX: &str = "<!doctype html><html><head><script type=\"module\">\
import init from '/app-2ef8122e5991e5c6.js'; await init('/app-2ef8122e5991e5c6_bg.wasm');\
</script><link rel=\"stylesheet\" href=\"/style-4b360094edb179b3.css\"></head>\
<body><noscript>needs JavaScript</noscript></body></html>\n";
const WASM: &str = "/app-2ef8122e5991e5c6_bg.wasm";
const JS: &str = "/app-2ef8122e5991e5c6.js";
const CSS: &str = "/style-4b360094edb179b3.css";
/// A hashed file with only a gzip copy.
const GZ_ONLY: &str = "/gzonly-864218dab54bfb7f.js";
/// A hashed file with no compressed copy at all.
const PLAIN_ONLY: &str = "/plain-864218dab54bfb7f.svg";
const CONFIG: &str = "{\"apiBase\":\"\",\"storageMode\":\"cookie\"}";

/// Compressible but not trivial content of `n` bytes.
fn content(seed: &str, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n);
    let mut x: u32 = 2463534242;
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out.extend_from_slice(format!("{seed}{} ", x % 97).as_bytes());
    }
    out.truncate(n);
    out
}

fn brotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = brotli::CompressorWriter::new(&mut out, 4096, 11, 22);
    w.write_all(data).unwrap();
    drop(w);
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn unbrotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(data, 4096)
        .read_to_end(&mut out)
        .expect("a brotli stream");
    out
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("a gzip stream");
    out
}

/// Writes `name` and, for each of `variants` ("br", "gz"), its compressed copy.
fn put(dir: &Path, name: &str, data: &[u8], variants: &[&str]) {
    let file = dir.join(name.trim_start_matches('/'));
    std::fs::write(&file, data).unwrap();
    for v in variants {
        let packed = match *v {
            "br" => brotli(data),
            "gz" => gzip(data),
            _ => unreachable!(),
        };
        assert!(packed.len() < data.len(), "{name}.{v} compresses");
        std::fs::write(format!("{}.{v}", file.display()), packed).unwrap();
    }
}

/// The fake dist/ and an app serving it; the files' plain contents by path.
async fn served() -> (TestApp, tempfile::TempDir, Vec<(&'static str, Vec<u8>)>) {
    let www = tempfile::tempdir().unwrap();
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("/index.html", INDEX.as_bytes().to_vec()),
        (WASM, content("wasm", 40_000)),
        (JS, content("export function f", 9_000)),
        (CSS, content("body{margin:", 3_000)),
        (GZ_ONLY, content("gz", 2_000)),
        (PLAIN_ONLY, content("<svg>", 1_000)),
    ];
    for (name, data) in &files {
        let variants: &[&str] = match *name {
            GZ_ONLY => &["gz"],
            PLAIN_ONLY => &[],
            _ => &["br", "gz"],
        };
        put(www.path(), name, data, variants);
    }
    // As scripts/build-release leaves it: config.json without compressed copies.
    std::fs::write(www.path().join("config.json"), CONFIG).unwrap();
    let dir = www.path().to_owned();
    let app = TestApp::with(&Backend::Sqlite, move |s| s.static_dir = Some(dir)).await;
    (app, www, files)
}

fn encoding(r: &Resp) -> Option<String> {
    r.header("content-encoding")
}

/// The body as the browser sees it: decoded as `Content-Encoding` says.
fn decoded(r: &Resp) -> Vec<u8> {
    match encoding(r).as_deref() {
        None => r.body.clone(),
        Some("br") => unbrotli(&r.body),
        Some("gzip") => gunzip(&r.body),
        Some(other) => panic!("unexpected Content-Encoding {other}"),
    }
}

fn varies_on_accept_encoding(r: &Resp) -> bool {
    r.headers
        .get_all("vary")
        .iter()
        .flat_map(|v| v.to_str().unwrap().split(','))
        .any(|v| v.trim().eq_ignore_ascii_case("accept-encoding"))
}

fn assert_security_headers(r: &Resp, what: &str) {
    assert_eq!(
        r.header("x-content-type-options").as_deref(),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        r.header("x-frame-options").as_deref(),
        Some("DENY"),
        "{what}"
    );
    assert_eq!(
        r.header("referrer-policy").as_deref(),
        Some("no-referrer"),
        "{what}"
    );
    assert!(r.header("cross-origin-opener-policy").is_some(), "{what}");
    assert!(r.header("permissions-policy").is_some(), "{what}");
    assert!(r.header("date").is_some(), "{what}");
    let csp = r.header("content-security-policy").unwrap_or_default();
    assert_eq!(
        csp,
        session_api::web::app_csp(INDEX),
        "{what}: the app's CSP"
    );
}

#[tokio::test]
async fn brotli_is_preferred_then_gzip_then_the_plain_file_as_accept_encoding_allows() {
    let (app, _www, files) = served().await;
    // (Accept-Encoding, encoding of a file with both copies, of a file with only a .gz)
    type Case = (
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
    );
    let cases: [Case; 9] = [
        (Some("gzip, deflate, br, zstd"), Some("br"), Some("gzip")), // Chromium
        (Some("br"), Some("br"), None),
        (Some("gzip"), Some("gzip"), Some("gzip")),
        (Some("br;q=0, gzip"), Some("gzip"), Some("gzip")),
        (Some("gzip;q=1, br;q=0.5"), Some("gzip"), Some("gzip")),
        (Some("gzip;q=0.5, br"), Some("br"), Some("gzip")),
        (Some("br;q=0, gzip;q=0"), None, None),
        (Some("identity"), None, None),
        (None, None, None),
    ];
    for (name, data) in &files {
        if *name == "/index.html" {
            continue;
        }
        for (accept, both, gz_only) in cases {
            let headers: Vec<(&str, &str)> =
                accept.map(|a| ("accept-encoding", a)).into_iter().collect();
            let r = app.get(name, &headers).await;
            let what = format!("{name} with Accept-Encoding {accept:?}");
            assert_eq!(r.status, 200, "{what}");
            let want = match *name {
                PLAIN_ONLY => None,
                GZ_ONLY => gz_only,
                _ => both,
            };
            assert_eq!(encoding(&r).as_deref(), want, "{what}");
            if want.is_some() {
                assert!(
                    r.body.len() < data.len(),
                    "{what}: the compressed copy was sent"
                );
            }
            assert_eq!(&decoded(&r), data, "{what}: decodes to the file");
            assert_eq!(
                r.header("content-length")
                    .map(|l| l.parse::<usize>().unwrap()),
                Some(r.body.len()),
                "{what}"
            );
            assert!(varies_on_accept_encoding(&r), "{what}: Vary");
            assert_eq!(
                r.header("cache-control").as_deref(),
                Some(IMMUTABLE),
                "{what}"
            );
            assert!(
                r.header("etag").is_some_and(|e| e.starts_with("W/\"")),
                "{what}"
            );
            assert!(r.header("last-modified").is_some(), "{what}");
            assert_security_headers(&r, &what);
        }
    }
    let r = app.get(WASM, &[("accept-encoding", "br")]).await;
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/wasm")
    );
    let r = app.get(JS, &[("accept-encoding", "gzip")]).await;
    assert_eq!(r.header("content-type").as_deref(), Some("text/javascript"));
}

#[tokio::test]
async fn spa_routes_get_the_compressed_index_html_with_no_cache() {
    let (app, _www, _) = served().await;
    // A hashed-looking name that does not exist is an SPA route too: never immutable.
    for path in [
        "/",
        "/index.html",
        "/profile",
        "/boards/42",
        "/gone-2ef8122e5991e5c6.js",
    ] {
        for (accept, want) in [
            ("gzip, deflate, br", Some("br")),
            ("gzip", Some("gzip")),
            ("identity", None),
        ] {
            let r = app.get(path, &[("accept-encoding", accept)]).await;
            let what = format!("{path} with {accept}");
            assert_eq!(r.status, 200, "{what}");
            assert_eq!(encoding(&r).as_deref(), want, "{what}");
            assert_eq!(decoded(&r), INDEX.as_bytes(), "{what}");
            assert_eq!(
                r.header("content-type").as_deref(),
                Some("text/html"),
                "{what}"
            );
            assert_eq!(
                r.header("cache-control").as_deref(),
                Some(REVALIDATE),
                "{what}"
            );
            assert!(varies_on_accept_encoding(&r), "{what}: Vary");
            assert!(r.header("etag").is_some(), "{what}: ETag");
            assert!(r.header("last-modified").is_some(), "{what}: Last-Modified");
            // The CSP hashes the inline loader of the plain index.html.
            assert_security_headers(&r, &what);
            assert!(r
                .header("content-security-policy")
                .unwrap()
                .contains("'sha256-"));
        }
    }
}

#[tokio::test]
async fn config_json_is_plain_revalidated_and_picked_up_when_edited() {
    let (app, www, _) = served().await;
    let r = app
        .get("/config.json", &[("accept-encoding", "gzip, br")])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(encoding(&r), None);
    assert_eq!(r.text(), CONFIG);
    assert_eq!(r.header("cache-control").as_deref(), Some(REVALIDATE));
    assert!(varies_on_accept_encoding(&r));
    let etag = r.header("etag").expect("ETag");
    let r2 = app.get("/config.json", &[("if-none-match", &etag)]).await;
    assert_eq!(r2.status, 304);
    // The operator edits it while the server runs: the old ETag no longer matches.
    let edited = "{\"apiBase\":\"https://api.example\"}";
    std::fs::write(www.path().join("config.json"), edited).unwrap();
    let r3 = app.get("/config.json", &[("if-none-match", &etag)]).await;
    assert_eq!(r3.status, 200);
    assert_eq!(r3.text(), edited);
    assert_ne!(r3.header("etag"), Some(etag));
    // ... and the app's CSP now lets the page call the API it names (no restart).
    let page = app.get("/profile", &[]).await;
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("connect-src 'self' https://api.example;"),
        "{csp}"
    );
}

#[tokio::test]
async fn revalidation_answers_304_for_a_matching_etag_or_date() {
    let (app, www, _) = served().await;
    for path in ["/profile", "/", "/config.json", JS] {
        let first = app.get(path, &[("accept-encoding", "br")]).await;
        let etag = first.header("etag").expect("ETag");
        let date = first.header("last-modified").expect("Last-Modified");
        let cache = first.header("cache-control");
        for conditional in [
            vec![("if-none-match", etag.as_str())],
            vec![
                ("if-none-match", "\"other\", W/\"x\""),
                ("if-none-match", etag.as_str()),
            ],
            vec![("if-none-match", "*")],
            vec![("if-modified-since", date.as_str())],
        ] {
            let mut headers = vec![("accept-encoding", "br")];
            headers.extend(conditional.iter().copied());
            let r = app.get(path, &headers).await;
            let what = format!("{path} with {conditional:?}");
            assert_eq!(r.status, 304, "{what}");
            assert!(r.body.is_empty(), "{what}");
            assert_eq!(r.header("cache-control"), cache, "{what}");
            assert!(varies_on_accept_encoding(&r), "{what}: Vary");
            assert_eq!(r.header("etag").as_deref(), Some(etag.as_str()), "{what}");
            assert_security_headers(&r, &what);
        }
        // A different ETag is a miss even when the date matches (If-None-Match wins, RFC 9110
        // 13.1.3): a rollback to an older build has older files.
        let r = app
            .get(
                path,
                &[
                    ("accept-encoding", "br"),
                    ("if-none-match", "W/\"an-older-build\""),
                    ("if-modified-since", date.as_str()),
                ],
            )
            .await;
        assert_eq!(
            r.status, 200,
            "{path}: If-None-Match overrides If-Modified-Since"
        );
        assert!(!r.body.is_empty());
        let r = app
            .get(
                path,
                &[("if-modified-since", "Thu, 01 Jan 1998 00:00:00 GMT")],
            )
            .await;
        assert_eq!(r.status, 200, "{path}: modified since 1998");
    }
    // A new index.html (a new build) is a new ETag for every SPA route.
    let first = app.get("/profile", &[]).await;
    std::fs::write(www.path().join("index.html"), format!("{INDEX}<!-- v2 -->")).unwrap();
    let r = app
        .get(
            "/profile",
            &[("if-none-match", &first.header("etag").unwrap())],
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn head_and_api_answers_keep_their_own_headers() {
    let (app, _www, _) = served().await;
    let r = app
        .send("HEAD", WASM, &[("accept-encoding", "br")], None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(encoding(&r).as_deref(), Some("br"));
    assert_eq!(r.header("cache-control").as_deref(), Some(IMMUTABLE));
    assert!(r.body.is_empty());
    // The API is not the static app: no compression, no static caching, the API's CSP.
    let r = app
        .get("/api/test/all", &[("accept-encoding", "gzip, br")])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(encoding(&r), None);
    assert_eq!(r.text(), "Public Content.");
    assert_ne!(r.header("cache-control").as_deref(), Some(IMMUTABLE));
    assert!(r.header("etag").is_none());
    assert_eq!(
        r.header("content-security-policy").as_deref(),
        Some(session_api::web::API_CSP)
    );
    let r = app.get("/api/unknown", &[("accept-encoding", "br")]).await;
    assert_eq!(r.status, 404);
    assert!(r.json()["message"].is_string());
}
