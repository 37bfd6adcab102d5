//! The test OpenID Provider is the real thing and behaves as ../shared/OIDC.md records: the
//! authorization-code flow with PKCE through real Chromium and the provider's development login
//! form, the ID token's claims, refresh-token rotation with no grace, revocation, CORS for the
//! app's origin only, the resource server's answers, and the test controls (`/__fail`,
//! `/__stats`). The app is not involved: a bare page stands in for its origin.

use std::time::Duration;

use e2e::oidc::{self, AuthRequest, Provider, ProviderOptions, CLIENT_ID};
use e2e::{wait_for, Browser, Page};
use serde_json::{json, Value};

/// A bare page on its own 127.0.0.1 origin, standing in for the app: the provider redirects to
/// its `/callback`, and scripts run there are scripts of that origin.
struct Origin {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Origin {
    async fn start() -> Origin {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an origin");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let app = axum::Router::new().fallback(|| async {
            axum::response::Html("<!doctype html><title>app</title><p>stand-in app page</p>")
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Origin { url, task }
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the token endpoint answered to the code exchange.
struct Tokens {
    access: String,
    refresh: String,
    id_token: String,
    body: Value,
    request: AuthRequest,
    code: String,
    /// Whether the provider showed its login form (no session of its own in this browser yet).
    typed_login: bool,
}

/// The value of query parameter `name` of `url`.
fn query(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The code flow as the app does it: to the authorization endpoint, the login form typed like a
/// person (only when the provider has no session for this browser yet), back on the redirect
/// URI with `code` and `state`, then the code exchanged with the PKCE verifier.
async fn sign_in(page: &Page, provider: &Provider, login: &str) -> Tokens {
    sign_in_with(page, provider, login, AuthRequest::new(provider)).await
}

/// [`sign_in`] with a request of the caller's (e.g. `prompt=login` to sign in as someone else).
async fn sign_in_with(
    page: &Page,
    provider: &Provider,
    login: &str,
    request: AuthRequest,
) -> Tokens {
    page.focus().await;
    page.client
        .goto(&request.url)
        .await
        .expect("load the authorization URL");
    let redirect = request.redirect_uri.clone();
    let login_form = wait_for(
        "the provider's login form or the redirect back",
        Duration::from_secs(15),
        || async {
            if oidc::href(page).await.starts_with(&redirect) {
                return Some(false);
            }
            page.exists("input[name=login]").await.then_some(true)
        },
    )
    .await;
    let landed = if login_form {
        oidc::sign_in_at_provider(page, provider, login, "any password").await
    } else {
        oidc::href(page).await
    };
    assert!(
        landed.starts_with(&format!("{}?", request.redirect_uri)),
        "landed on {landed}, not the redirect URI {}",
        request.redirect_uri
    );
    assert_eq!(query(&landed, "error"), None, "provider error: {landed}");
    assert_eq!(
        query(&landed, "state").as_deref(),
        Some(request.state.as_str()),
        "{landed}"
    );
    // RFC 9207: the provider names itself in the authorization response.
    assert_eq!(query(&landed, "iss"), Some(provider.issuer()), "{landed}");
    let code = query(&landed, "code").unwrap_or_else(|| panic!("no code in {landed}"));
    let (status, body) = provider
        .exchange_code(&code, &request.code_verifier, &request.redirect_uri)
        .await;
    assert_eq!(status, 200, "code exchange: {body}");
    let s = |k: &str| {
        body[k]
            .as_str()
            .unwrap_or_else(|| panic!("no {k} in {body}"))
            .to_string()
    };
    Tokens {
        access: s("access_token"),
        refresh: s("refresh_token"),
        id_token: s("id_token"),
        request,
        body,
        code,
        typed_login: login_form,
    }
}

async fn start(access_ttl_s: u64) -> (Origin, Provider) {
    let origin = Origin::start().await;
    let provider = Provider::start(ProviderOptions {
        app_origin: origin.url.clone(),
        access_ttl_s,
        ..ProviderOptions::default()
    })
    .await;
    (origin, provider)
}

#[tokio::test]
async fn code_flow_with_pkce_through_the_login_form_gives_the_profile_claims_and_a_refresh_token() {
    let (origin, provider) = start(5).await;
    let browser = Browser::start().await;
    let page = browser.session(&origin.url).await;

    let t = sign_in(&page, &provider, "admin-ann").await;
    assert_eq!(t.body["token_type"], "Bearer", "{}", t.body);
    assert_eq!(t.body["expires_in"], 5, "{}", t.body);
    // The provider drops offline_access without prompt=consent (OpenID Connect Core 11) and
    // still issues the refresh token this client is configured for: the app must not require
    // offline_access in the answer's scope.
    assert_eq!(t.body["scope"], "openid profile", "{}", t.body);
    // Opaque access token (not a JWT): the app must schedule from expires_in.
    assert_eq!(t.access.split('.').count(), 1, "{}", t.access);

    let c = oidc::jwt_claims(&t.id_token);
    assert_eq!(c["iss"], provider.issuer(), "{c}");
    assert_eq!(c["aud"], CLIENT_ID, "{c}");
    assert_eq!(c["nonce"], t.request.nonce.as_str(), "{c}");
    assert_eq!(c["sub"], "admin-ann", "{c}");
    assert_eq!(c["preferred_username"], "admin-ann", "{c}");
    assert_eq!(c["email"], "admin-ann@example.test", "{c}");
    assert_eq!(
        c["realm_access"]["roles"],
        json!(["ROLE_USER", "ROLE_ADMIN"]),
        "{c}"
    );
    assert!(c["exp"].as_u64() > c["iat"].as_u64(), "{c}");

    // The code is single-use.
    let code_again = provider
        .exchange_code(&t.code, &t.request.code_verifier, &t.request.redirect_uri)
        .await;
    assert_eq!(code_again.0, 400, "{:?}", code_again);
    assert_eq!(code_again.1["error"], "invalid_grant", "{:?}", code_again);

    // A second sign-in in the same browser: the provider's session is remembered, no form.
    assert!(t.typed_login);
    let again = sign_in(&page, &provider, "ignored").await;
    assert!(!again.typed_login, "the provider asked to log in again");
    assert_eq!(oidc::jwt_claims(&again.id_token)["sub"], "admin-ann");

    // CORS, from a script of the app's origin: discovery, userinfo, token and revocation all
    // answer readable responses; the Date header is not exposed to the page.
    let out = page
        .js(
            CORS_SCRIPT,
            vec![
                json!(provider.issuer()),
                json!(again.refresh),
                json!(again.access),
                json!(provider.api_url()),
            ],
        )
        .await;
    assert_eq!(out["discovery"], 200, "{out}");
    assert_eq!(out["userinfo"], 200, "{out}");
    assert_eq!(
        out["userinfo_body"]["email"], "admin-ann@example.test",
        "{out}"
    );
    assert_eq!(out["api"], 200, "{out}");
    assert_eq!(out["api_body"], "Admin Content.", "{out}");
    assert_eq!(out["token"], 200, "{out}");
    assert!(out["token_body"]["refresh_token"].is_string(), "{out}");
    assert_eq!(out["token_date_header"], Value::Null, "{out}");
    assert_eq!(out["revocation"], 200, "{out}");
    // What the page revoked is dead at the provider.
    let rt = out["token_body"]["refresh_token"].as_str().expect("rt");
    let (status, body) = provider.refresh_grant(rt).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );

    // A page of another origin may read discovery but not call the token or userinfo endpoint
    // (with live tokens: the revocation above ended the grant the two sign-ins shared).
    let t = sign_in(&page, &provider, "ignored").await;
    let stranger = Origin::start().await;
    page.focus().await;
    page.client
        .goto(&stranger.url)
        .await
        .expect("load the other origin");
    let out = page
        .js(
            CORS_SCRIPT,
            vec![
                json!(provider.issuer()),
                json!(t.refresh),
                json!(t.access),
                json!(provider.api_url()),
            ],
        )
        .await;
    assert_eq!(out["discovery"], 200, "{out}");
    assert_eq!(out["token"], "blocked", "{out}");
    assert_eq!(out["userinfo"], "blocked", "{out}");
    assert_eq!(out["api"], "blocked", "{out}");
    // The refused cross-origin token request never reached the grant: the token still works.
    assert_eq!(provider.refresh_grant(&t.refresh).await.0, 200);
}

/// Calls the provider and the resource server from the page: (issuer, refresh token, access
/// token, resource server) -> statuses, or
/// "blocked" where the browser refused to show the answer (CORS).
const CORS_SCRIPT: &str = r#"
const [issuer, rt, at, api] = arguments;
const out = {};
const call = async (name, url, init) => {
  try {
    const r = await fetch(url, init);
    out[name] = r.status;
    const text = await r.text();
    try { out[name + '_body'] = JSON.parse(text); } catch { out[name + '_body'] = text; }
    return r;
  } catch (e) {
    out[name] = 'blocked';
    return null;
  }
};
const form = (o) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(o) });
await call('discovery', issuer + '/.well-known/openid-configuration');
const doc = out.discovery_body || {};
await call('userinfo', doc.userinfo_endpoint || issuer + '/me', { headers: { authorization: 'Bearer ' + at } });
await call('api', api + '/api/test/admin', { headers: { authorization: 'Bearer ' + at } });
const t = await call('token', doc.token_endpoint || issuer + '/token', form({ grant_type: 'refresh_token', refresh_token: rt, client_id: 'yew-session' }));
out.token_date_header = t ? t.headers.get('date') : null;
const next = (out.token_body && out.token_body.refresh_token) || rt;
await call('revocation', doc.revocation_endpoint || issuer + '/token/revocation', form({ token: next, token_type_hint: 'refresh_token', client_id: 'yew-session' }));
return out;
"#;

#[tokio::test]
async fn refresh_tokens_rotate_with_no_grace_and_revoked_ones_are_refused() {
    let (origin, provider) = start(5).await;
    let browser = Browser::start().await;
    let page = browser.session(&origin.url).await;

    // (b) five concurrent uses of one refresh token: one wins, the rest are refused, and the
    // reuse revokes the whole grant, so the winner's new token is refused too.
    let t = sign_in(&page, &provider, "user-uma").await;
    provider.reset().await;
    let rt = t.refresh.as_str();
    let (a, b, c, d, e) = tokio::join!(
        provider.refresh_grant(rt),
        provider.refresh_grant(rt),
        provider.refresh_grant(rt),
        provider.refresh_grant(rt),
        provider.refresh_grant(rt),
    );
    let all = [a, b, c, d, e];
    let winners: Vec<&(u16, Value)> = all.iter().filter(|(s, _)| *s == 200).collect();
    assert_eq!(winners.len(), 1, "{all:?}");
    for (status, body) in all.iter().filter(|(s, _)| *s != 200) {
        assert_eq!(*status, 400, "{body}");
        assert_eq!(body["error"], "invalid_grant", "{body}");
    }
    let new_rt = winners[0].1["refresh_token"]
        .as_str()
        .expect("rotated token");
    assert_ne!(new_rt, rt, "the refresh token was not rotated");
    let (status, body) = provider.refresh_grant(new_rt).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    // And the access token of the winner died with the grant.
    let winner_at = winners[0].1["access_token"].as_str().expect("access token");
    assert_eq!(
        provider.api_get("/api/test/user", Some(winner_at)).await.0,
        401
    );

    let s = provider.stats().await;
    assert_eq!(s.refreshes_ok(), 1, "{s:?}");
    assert_eq!(s.token("refresh_token", "invalid_grant"), 5, "{s:?}");
    assert_eq!(s.invalid_grant, 5, "{s:?}");
    assert!(s.grants_revoked >= 1, "{s:?}");
    assert!(
        s.errors
            .iter()
            .any(|e| e["detail"] == "refresh token already used"),
        "{s:?}"
    );

    // A sequential chain works: each rotated token once.
    let t = sign_in(&page, &provider, "user-uma").await;
    let mut rt = t.refresh.clone();
    for _ in 0..3 {
        let (status, body) = provider.refresh_grant(&rt).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["expires_in"], 5, "{body}");
        // Every refresh brings a new ID token with the same claims, and the nonce of the
        // sign-in (not a new one: the app must not expect a nonce of its own there).
        let c = oidc::jwt_claims(body["id_token"].as_str().expect("refreshed id_token"));
        assert_eq!(c["sub"], "user-uma", "{c}");
        assert_eq!(c["aud"], CLIENT_ID, "{c}");
        assert_eq!(c["realm_access"]["roles"], json!(["ROLE_USER"]), "{c}");
        assert_eq!(c["nonce"], t.request.nonce.as_str(), "{c}");
        let next = body["refresh_token"].as_str().expect("rotated").to_string();
        assert_ne!(next, rt);
        rt = next;
    }

    // (c) revoked at the revocation endpoint: refused afterwards, and the grant's access token
    // with it.
    provider.reset().await;
    let (status, body) = provider.refresh_grant(&rt).await;
    assert_eq!(status, 200, "{body}");
    let live_rt = body["refresh_token"].as_str().expect("rt").to_string();
    let live_at = body["access_token"].as_str().expect("at").to_string();
    assert_eq!(
        provider.api_get("/api/test/user", Some(&live_at)).await.0,
        200
    );
    assert_eq!(provider.revoke(&live_rt, "refresh_token").await, 200);
    let (status, body) = provider.refresh_grant(&live_rt).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert_eq!(
        provider.api_get("/api/test/user", Some(&live_at)).await.0,
        401
    );
    let s = provider.stats().await;
    assert_eq!(s.revocations_ok, 1, "{s:?}");
    assert_eq!(s.refreshes_ok(), 1, "{s:?}");
    assert_eq!(s.token("refresh_token", "invalid_grant"), 1, "{s:?}");
    assert_eq!(s.grants_revoked, 1, "{s:?}");
}

#[tokio::test]
async fn the_resource_server_takes_the_providers_access_tokens_until_they_expire_and_checks_roles()
{
    let (origin, provider) = start(2).await;
    let browser = Browser::start().await;
    let page = browser.session(&origin.url).await;
    let user = sign_in(&page, &provider, "user-ulf").await;
    // Someone else in the same browser: prompt=login shows the form again.
    let again = || AuthRequest::new(&provider).with_param("prompt", "login");
    let admin = sign_in_with(&page, &provider, "admin-ada", again()).await;
    let moderator = sign_in_with(&page, &provider, "mod-mo", again()).await;
    assert!(admin.typed_login && moderator.typed_login);

    let get = |path: &'static str, token: Option<String>| {
        let provider = &provider;
        async move { provider.api_get(path, token.as_deref()).await }
    };
    // Three sign-ins take longer than the 2 s lifetime: fresh tokens for the checks.
    let mut refreshed = Vec::new();
    for t in [&user, &admin, &moderator] {
        let (status, body) = provider.refresh_grant(&t.refresh).await;
        assert_eq!(status, 200, "{body}");
        refreshed.push(body);
    }
    provider.reset().await;
    let at = |i: usize| refreshed[i]["access_token"].as_str().map(str::to_string);
    let (u, a, m) = (at(0), at(1), at(2));
    let json = |s: &str| serde_json::from_str::<Value>(s).unwrap_or(Value::Null);
    let ok = |s: &str| (200, s.to_string());
    assert_eq!(get("/api/test/all", None).await, ok("Public Content."));
    assert_eq!(get("/api/test/user", u.clone()).await, ok("User Content."));
    assert_eq!(
        get("/api/test/admin", a.clone()).await,
        ok("Admin Content.")
    );
    assert_eq!(
        get("/api/test/mod", m.clone()).await,
        ok("Moderator Content.")
    );
    let (status, body) = get("/api/test/admin", u.clone()).await;
    assert_eq!(
        (status, json(&body)),
        (403, json!({"message": "Require Admin Role!"}))
    );
    let (status, body) = get("/api/test/mod", a.clone()).await;
    assert_eq!(
        (status, json(&body)),
        (403, json!({"message": "Require Moderator Role!"}))
    );
    let (status, body) = get("/api/test/user", None).await;
    assert_eq!(
        (status, json(&body)),
        (401, json!({"message": "No token provided!"}))
    );
    let (status, body) = get("/api/test/user", Some("garbage".into())).await;
    assert_eq!(
        (status, json(&body)),
        (401, json!({"message": "Unauthorized!"}))
    );

    // After the access token's lifetime (2 s; the provider counts whole seconds).
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let (status, body) = get("/api/test/user", u.clone()).await;
    assert_eq!(
        (status, json(&body)),
        (
            401,
            json!({"message": "Unauthorized! Access Token was expired!"})
        )
    );
    // A refresh gives a working one again.
    let user_rt = refreshed[0]["refresh_token"].as_str().expect("rotated");
    let (status, body) = provider.refresh_grant(user_rt).await;
    assert_eq!(status, 200, "{body}");
    let fresh = body["access_token"].as_str().map(str::to_string);
    assert_eq!(get("/api/test/user", fresh).await.0, 200);

    let s = provider.stats().await;
    assert_eq!(
        (s.api.ok, s.api.forbidden, s.api.unauthorized),
        (5, 2, 3),
        "{s:?}"
    );
}

#[tokio::test]
async fn injected_token_endpoint_failures_answer_503_429_or_drop_and_then_recover() {
    let (origin, provider) = start(5).await;
    let browser = Browser::start().await;
    let t = sign_in(&browser.session(&origin.url).await, &provider, "user-ute").await;
    provider.reset().await;

    provider.fail_token_endpoint(Some("503")).await;
    let (status, body) = provider.refresh_grant(&t.refresh).await;
    assert_eq!(status, 503, "{body}");
    provider.fail_token_endpoint(Some("429")).await;
    let r = provider
        .http()
        .post(provider.token_endpoint())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &t.refresh),
            ("client_id", CLIENT_ID),
        ])
        .send()
        .await
        .expect("token endpoint");
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    provider.fail_token_endpoint(Some("drop")).await;
    let dropped = provider
        .http()
        .post(provider.token_endpoint())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &t.refresh),
            ("client_id", CLIENT_ID),
        ])
        .send()
        .await;
    assert!(
        dropped.is_err(),
        "expected a dropped connection: {dropped:?}"
    );

    // The failures never reached the provider: the token is still good, once.
    provider.fail_token_endpoint(None).await;
    let (status, body) = provider.refresh_grant(&t.refresh).await;
    assert_eq!(status, 200, "{body}");

    let s = provider.stats().await;
    assert_eq!(s.injected_failures, 3, "{s:?}");
    assert_eq!(s.token_requests, 1, "{s:?}");
    assert_eq!(s.refreshes_ok(), 1, "{s:?}");
    assert_eq!(s.invalid_grant, 0, "{s:?}");
    assert_eq!(s.fail, None, "{s:?}");
}

#[tokio::test]
async fn rp_initiated_logout_asks_to_confirm_and_leaves_the_refresh_token_to_revocation() {
    let (origin, provider) = start(5).await;
    let browser = Browser::start().await;
    let page = browser.session(&origin.url).await;
    let t = sign_in(&page, &provider, "user-una").await;
    provider.reset().await;

    let end_session = provider.discovery().await["end_session_endpoint"]
        .as_str()
        .expect("end_session_endpoint")
        .to_string();
    let mut url = url::Url::parse(&end_session).expect("end_session url");
    url.query_pairs_mut()
        .append_pair("id_token_hint", &t.id_token)
        .append_pair("post_logout_redirect_uri", &format!("{}/login", origin.url))
        .append_pair("state", "bye");
    page.focus().await;
    page.client
        .goto(url.as_str())
        .await
        .expect("load end_session");
    // The provider's own session is alive: it asks before signing out.
    oidc::confirm_sign_out_at_provider(&page, &provider).await;
    assert_eq!(
        oidc::href(&page).await,
        format!("{}/login?state=bye", origin.url)
    );
    let s = provider.stats().await;
    assert_eq!(s.end_session_ok, 1, "{s:?}");

    // The tokens outlive the provider's login session (offline behaviour): only the revocation
    // endpoint ends them, so an app that skips revocation leaves a live refresh token behind.
    let (status, body) = provider.refresh_grant(&t.refresh).await;
    assert_eq!(status, 200, "{body}");
    // And the next sign-in needs the login form again.
    let again = sign_in(&page, &provider, "user-una").await;
    assert!(again.typed_login, "still signed in at the provider");
    assert_eq!(provider.stats().await.token("authorization_code", "ok"), 1);
    assert_eq!(oidc::jwt_claims(&again.id_token)["sub"], "user-una");
}

#[tokio::test]
async fn the_refresh_token_lifetime_is_absolute_from_sign_in_however_often_it_rotates() {
    let origin = Origin::start().await;
    let provider = Provider::start(ProviderOptions {
        app_origin: origin.url.clone(),
        access_ttl_s: 1,
        refresh_ttl_s: 5,
        ..ProviderOptions::default()
    })
    .await;
    let browser = Browser::start().await;
    let t = sign_in(&browser.session(&origin.url).await, &provider, "user-uwe").await;
    let signed_in = std::time::Instant::now();
    provider.reset().await;

    // Rotations well inside the 5 s (the provider counts whole seconds: the end is 4-5 s after
    // the code exchange).
    let mut rt = t.refresh.clone();
    for at_s in [1.5, 3.0] {
        tokio::time::sleep_until((signed_in + Duration::from_secs_f64(at_s)).into()).await;
        let (status, body) = provider.refresh_grant(&rt).await;
        assert_eq!(status, 200, "at {at_s} s: {body}");
        rt = body["refresh_token"].as_str().expect("rotated").to_string();
    }
    // Past 5 s from sign-in the latest token is expired, although it is 2.5 s old.
    tokio::time::sleep_until((signed_in + Duration::from_millis(5500)).into()).await;
    let (status, body) = provider.refresh_grant(&rt).await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "invalid_grant", "error_description": "grant request is invalid"})
        )
    );
    let s = provider.stats().await;
    assert_eq!(s.refreshes_ok(), 2, "{s:?}");
    assert_eq!(s.invalid_grant, 1, "{s:?}");
    assert_eq!(
        s.errors.last().map(|e| e["detail"].clone()),
        Some(json!("refresh token is expired")),
        "{s:?}"
    );
}

#[tokio::test]
async fn the_provider_requires_pkce_s256_and_never_redirects_to_an_unregistered_uri() {
    let (_origin, provider) = start(5).await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");
    let authorize = |request: &AuthRequest| {
        let http = http.clone();
        let url = request.url.clone();
        async move {
            let r = http.get(&url).send().await.expect("GET /auth");
            let location = r
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            (r.status().as_u16(), location)
        }
    };
    // Without parameters the request builder adds: the query rebuilt without them.
    let without = |names: &[&str]| {
        let request = AuthRequest::new(&provider);
        let mut url = url::Url::parse(&request.url).expect("url");
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| !names.contains(&k.as_ref()))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.query_pairs_mut().clear().extend_pairs(kept);
        AuthRequest {
            url: url.into(),
            ..request
        }
    };

    // No PKCE at all: back to the app with the error, its state and the issuer.
    let request = without(&["code_challenge", "code_challenge_method"]);
    let (status, location) = authorize(&request).await;
    let location = location.unwrap_or_default();
    assert_eq!(status, 303, "{location}");
    assert!(location.starts_with(&request.redirect_uri), "{location}");
    assert_eq!(
        query(&location, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(
        query(&location, "state").as_deref(),
        Some(request.state.as_str())
    );
    assert_eq!(query(&location, "iss"), Some(provider.issuer()));
    // plain is refused too.
    let request = without(&["code_challenge_method"]).with_param("code_challenge_method", "plain");
    let (_, location) = authorize(&request).await;
    assert_eq!(
        query(&location.unwrap_or_default(), "error").as_deref(),
        Some("invalid_request")
    );
    // A redirect_uri that is not registered: an error page at the provider, no redirect.
    let request =
        without(&["redirect_uri"]).with_param("redirect_uri", "http://127.0.0.1:1/callback");
    assert_eq!(authorize(&request).await, (400, None));
}
