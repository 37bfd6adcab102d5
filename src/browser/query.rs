//! The login page's `?redirect=…` query, encoded and decoded by the browser's `URLSearchParams`
//! (the same `application/x-www-form-urlencoded` rules as serde_urlencoded). Hand-written for
//! wasm size: yew-router's serde query support linked serde_urlencoded and form_urlencoded,
//! 2.7 KB gzip (README, size section).

/// The query that sends the user back to `back` after sign-in: `redirect=%2Fadmin`.
pub fn redirect_query(back: &str) -> String {
    match web_sys::UrlSearchParams::new() {
        Ok(params) => {
            params.append("redirect", back);
            params.to_string().into()
        }
        Err(_) => String::new(),
    }
}

/// The decoded `redirect` value of a query string (with or without its leading `?`).
pub fn redirect_of(query: &str) -> Option<String> {
    param_of(query, "redirect")
}

/// The decoded value of `name` in a query string (with or without its leading `?`).
pub fn param_of(query: &str, name: &str) -> Option<String> {
    web_sys::UrlSearchParams::new_with_str(query)
        .ok()?
        .get(name)
}
