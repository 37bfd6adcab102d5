//! What the BFF e2e tests (e2e/tests/bff*.rs) read of a page: everything a script could learn
//! about the session, and the shapes of tokens to look for in it.

/// Everything of the page a script can read about the session: localStorage, sessionStorage,
/// `document.cookie`, and the bodies and readable headers of the app's endpoints fetched from
/// the page as the app fetches them (same origin, the CSRF header).
pub const SCRIPT_VIEW: &str = r#"
return (async () => {
  const dump = (s) => Object.keys(s).map((k) => k + '=' + s.getItem(k)).join('\n');
  const out = { localStorage: dump(localStorage), sessionStorage: dump(sessionStorage),
                cookie: document.cookie };
  for (const path of ['/api/bff/session', '/api/rs/api/test/user', '/api/rs/api/test/all',
                      '/config.json']) {
    const r = await fetch(path, { credentials: 'same-origin', headers: { 'x-csrf': '1' } });
    out[path] = r.status + '\n' + [...r.headers].map((h) => h.join(': ')).join('\n') + '\n\n'
      + await r.text();
  }
  return out;
})();
"#;

/// A JWT's shape (header `eyJ`…, three base64url parts): the provider's ID tokens are JWTs.
pub fn jwt_shaped(text: &str) -> Option<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .find(|w| w.starts_with("eyJ") && w.split('.').count() == 3 && w.len() > 40)
}

/// A UUID's shape (8-4-4-4-12 hex digits): the tutorial's refresh tokens are `uuidv4()`.
pub fn uuid_shaped(text: &str) -> Option<&str> {
    let groups = [8, 4, 4, 4, 12];
    text.split(|c: char| !(c.is_ascii_hexdigit() || c == '-'))
        .find(|w| {
            let parts: Vec<&str> = w.split('-').collect();
            parts.len() == 5 && parts.iter().zip(groups).all(|(p, n)| p.len() == n)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shapes_are_found_and_plain_text_is_not() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJpZCI6MSwiaWF0IjoxfQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ";
        assert_eq!(jwt_shaped(&format!("user={{\"t\":\"{jwt}\"}}")), Some(jwt));
        assert_eq!(jwt_shaped("User Content."), None);
        let uuid = "0b6c2a1e-9f3d-4c55-8e1a-3f2b7d9c4a10";
        assert_eq!(uuid_shaped(&format!("refresh={uuid};")), Some(uuid));
        assert_eq!(uuid_shaped("2026-12-02 and deadbeef"), None);
    }
}
