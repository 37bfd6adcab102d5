//! How Express answers: the headers on every response, JSON with its charset, HTML pages.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// The one origin the tutorial's CORS setup names, whatever the request's Origin.
pub const CORS_ORIGIN: &str = "http://localhost:8081";
/// The headers its /api routes allow.
pub const CORS_ALLOW_HEADERS: &str = "x-access-token, Origin, Content-Type, Accept";

/// Every response of the tutorial's Express server carries these; its /api routes also name
/// the headers they allow.
pub async fn express_headers(req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert("x-powered-by", HeaderValue::from_static("Express"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static(CORS_ORIGIN),
    );
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    if api {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(CORS_ALLOW_HEADERS),
        );
    }
    res
}

pub fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

pub fn message(status: StatusCode, text: &str) -> Response {
    json_response(status, json!({ "message": text }))
}

pub fn html(status: StatusCode, text: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        text.to_owned(),
    )
        .into_response()
}

/// Express's error page around `pre`.
pub fn error_page(status: StatusCode, pre: &str) -> Response {
    html(
        status,
        &format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n</head>\n<body>\n<pre>{pre}</pre>\n</body>\n</html>\n"
        ),
    )
}
