use super::*;
use serde_json::json;

fn jwt(claims: &Value) -> String {
    format!(
        "{}.{}.sig",
        b64url(br#"{"alg":"RS256"}"#),
        b64url(claims.to_string().as_bytes())
    )
}

const ISS: &str = "http://127.0.0.1:9000";
const NOW: f64 = 1_700_000_000_000.0;

fn good() -> Value {
    json!({"iss": ISS, "aud": "app", "sub": "ann", "nonce": "n1",
           "iat": NOW / 1000.0, "exp": NOW / 1000.0 + 300.0,
           "preferred_username": "ann", "email": "ann@example.test",
           "realm_access": {"roles": ["ROLE_USER", "ROLE_ADMIN"]}})
}

fn check(claims: Value, nonce: Option<&str>, sub: Option<&str>) -> Result<(), String> {
    let t = read_id_token(&jwt(&claims)).unwrap();
    let e = Expect {
        issuer: ISS,
        client_id: "app",
        nonce,
        sign_in_nonce: None,
        sub,
    };
    check_id_token(&t, &e, NOW).map_err(|r| r.to_string())
}

#[test]
fn a_good_id_token_passes_and_each_broken_claim_is_refused_with_its_reason() {
    assert_eq!(check(good(), Some("n1"), None), Ok(()));
    // On refresh the nonce is not required, the subject must stay.
    let mut no_nonce = good();
    no_nonce.as_object_mut().unwrap().remove("nonce");
    assert_eq!(check(no_nonce, None, Some("ann")), Ok(()));
    type Case<'a> = (&'a str, Value, Option<&'a str>, Option<&'a str>, &'a str);
    let cases: Vec<Case> = vec![
        ("iss", json!("http://evil"), Some("n1"), None, "issued by"),
        ("aud", json!("other"), Some("n1"), None, "aud"),
        ("aud", json!(["app", "other"]), Some("n1"), None, "no azp"),
        ("azp", json!("other"), Some("n1"), None, "azp"),
        ("nonce", json!("n2"), Some("n1"), None, "nonce"),
        ("sub", json!("bob"), None, Some("ann"), "another user"),
        (
            "exp",
            json!(NOW / 1000.0 - 120.0),
            Some("n1"),
            None,
            "expired",
        ),
        (
            "iat",
            json!(NOW / 1000.0 + 600.0),
            Some("n1"),
            None,
            "future",
        ),
    ];
    for (claim, value, nonce, sub, why) in cases {
        let mut c = good();
        c[claim] = value.clone();
        let e = check(c, nonce, sub).unwrap_err();
        assert!(e.contains(why), "{claim}={value}: {e}");
    }
    // Several audiences with the right azp are fine.
    let mut c = good();
    c["aud"] = json!(["app", "api"]);
    c["azp"] = json!("app");
    assert_eq!(check(c, Some("n1"), None), Ok(()));
    for missing in ["sub", "exp", "iat"] {
        let mut c = good();
        c.as_object_mut().unwrap().remove(missing);
        assert!(check(c, Some("n1"), None).is_err(), "{missing}");
    }
    for bad in [
        "a.b",
        "a.b.c.d",
        "x.!!!.y",
        &format!("x.{}.y", b64url(b"[1]")),
    ] {
        assert!(read_id_token(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_refreshed_id_token_that_carries_a_nonce_must_carry_the_sign_ins() {
    let refreshed = |claims: Value, sign_in_nonce: Option<&str>| {
        let t = read_id_token(&jwt(&claims)).unwrap();
        let e = Expect {
            issuer: ISS,
            client_id: "app",
            nonce: None,
            sign_in_nonce,
            sub: Some("ann"),
        };
        check_id_token(&t, &e, NOW).map_err(|r| r.to_string())
    };
    // The sign-in's nonce repeated (oidc-provider, Keycloak), or none at all: fine.
    assert_eq!(refreshed(good(), Some("n1")), Ok(()));
    let mut no_nonce = good();
    no_nonce.as_object_mut().unwrap().remove("nonce");
    assert_eq!(refreshed(no_nonce, Some("n1")), Ok(()));
    // Another nonce: refused (Core 12.2).
    let mut other = good();
    other["nonce"] = json!("n2");
    let e = refreshed(other.clone(), Some("n1")).unwrap_err();
    assert!(e.contains("nonce is not the sign-in's"), "{e}");
    // Nothing to compare with (the session's ID token had none): not refused for it.
    assert_eq!(refreshed(other, None), Ok(()));
}

#[test]
fn the_user_comes_from_the_id_token_with_roles_at_a_name_or_a_dotted_path() {
    let t = read_id_token(&jwt(&good())).unwrap();
    let u = user_of(&t, Some("realm_access.roles"));
    assert_eq!(
        (u.id.as_str(), u.username.as_str(), u.email.as_str()),
        ("ann", "ann", "ann@example.test")
    );
    assert_eq!(u.roles, ["ROLE_USER", "ROLE_ADMIN"]);
    let mut c = good();
    c["https://example.com/roles"] = json!("ROLE_MODERATOR ROLE_USER");
    let t = read_id_token(&jwt(&c)).unwrap();
    assert_eq!(
        user_of(&t, Some("https://example.com/roles")).roles,
        ["ROLE_MODERATOR", "ROLE_USER"]
    );
    // No roles claim configured (or none there): a signed-in user.
    assert_eq!(user_of(&t, None).roles, ["ROLE_USER"]);
    assert_eq!(user_of(&t, Some("groups")).roles, ["ROLE_USER"]);
    let t = read_id_token(&jwt(&json!({"sub": "s-1", "email": "e@x"}))).unwrap();
    assert_eq!(user_of(&t, None).username, "e@x");
}

#[test]
fn discovery_takes_the_endpoints_and_refuses_another_issuer_or_no_s256() {
    let doc = json!({"issuer": ISS, "authorization_endpoint": "http://a/auth",
        "token_endpoint": "http://a/token", "revocation_endpoint": "http://a/revoke",
        "code_challenge_methods_supported": ["S256"], "jwks_uri": "http://a/jwks"});
    let e = parse_discovery(&doc.to_string(), ISS).unwrap();
    assert_eq!(e.token, "http://a/token");
    assert_eq!(e.revocation.as_deref(), Some("http://a/revoke"));
    assert_eq!(e.end_session, None);
    let slash = parse_discovery(&doc.to_string(), &format!("{ISS}/")).unwrap_err();
    assert!(slash.contains("trailing slash"), "{slash}");
    let mut plain = doc.clone();
    plain["code_challenge_methods_supported"] = json!(["plain"]);
    assert!(parse_discovery(&plain.to_string(), ISS)
        .unwrap_err()
        .contains("S256"));
    assert!(parse_discovery("<html>", ISS)
        .unwrap_err()
        .contains("not a usable"));
    assert_eq!(
        discovery_url("https://x.example/realms/r/"),
        "https://x.example/realms/r/.well-known/openid-configuration"
    );
}

#[test]
fn the_authorization_request_carries_pkce_state_nonce_and_encodes_every_value() {
    let s = Secrets {
        verifier: "v".into(),
        challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        state: "st".into(),
        nonce: "no".into(),
    };
    let r = Request {
        client_id: "my app",
        redirect_uri: "http://127.0.0.1:8080/callback",
        scopes: "openid profile offline_access",
        audience: Some("https://api"),
        resource: None,
        prompt: None,
    };
    let url = authorize_url("http://p/auth?tenant=1", &r, &s);
    assert_eq!(
        url,
        "http://p/auth?tenant=1&response_type=code&client_id=my%20app\
         &redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fcallback\
         &scope=openid%20profile%20offline_access&state=st&nonce=no\
         &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM\
         &code_challenge_method=S256&audience=https%3A%2F%2Fapi"
    );
    for (k, v) in [("client_id", "my app"), ("redirect_uri", r.redirect_uri)] {
        assert_eq!(
            query_value(url.split_once('?').unwrap().1, k).as_deref(),
            Some(v)
        );
    }
}

#[test]
fn the_callback_query_is_a_code_an_error_or_nothing() {
    assert_eq!(
        parse_callback("?code=a%2Bb&state=s+1&iss=http%3A%2F%2Fp"),
        Some(Callback::Code {
            code: "a+b".into(),
            state: "s 1".into(),
            iss: Some("http://p".into())
        })
    );
    assert_eq!(
        parse_callback("error=access_denied&error_description=End-User%20aborted&state=s"),
        Some(Callback::Error {
            error: "access_denied".into(),
            description: Some("End-User aborted".into()),
            state: Some("s".into())
        })
    );
    assert_eq!(parse_callback("?code=x"), None);
    assert_eq!(parse_callback(""), None);
    // A broken escape is kept as text, not a panic.
    assert_eq!(query_value("a=%zz%4", "a").as_deref(), Some("%zz%4"));
}

#[test]
fn token_answers_keep_what_the_engine_needs() {
    let a = parse_token_answer(
        r#"{"access_token":"opaque","token_type":"Bearer","expires_in":5,"refresh_token":"r2","id_token":"x.y.z","scope":"openid"}"#,
    )
    .unwrap();
    assert_eq!(a.expires_in, Some(5));
    assert_eq!(a.refresh_token.as_deref(), Some("r2"));
    let a = parse_token_answer(r#"{"access_token":"t","expires_in":"3600"}"#).unwrap();
    assert_eq!((a.expires_in, a.refresh_token), (Some(3600), None));
    assert!(parse_token_answer(r#"{"access_token":""}"#).is_err());
    assert!(parse_token_answer(r#"{"error":"invalid_grant"}"#).is_err());
    assert_eq!(
        refresh_body("a/b+c", "app"),
        "grant_type=refresh_token&refresh_token=a%2Fb%2Bc&client_id=app"
    );
    assert_eq!(
        end_session_url("http://p/end", Some("t"), "http://a/", "app"),
        "http://p/end?id_token_hint=t&post_logout_redirect_uri=http%3A%2F%2Fa%2F&client_id=app"
    );
}

#[test]
fn the_round_trips_record_reads_back_and_nothing_else_does() {
    let p = Pending {
        state: "s".into(),
        verifier: "v".into(),
        nonce: "n".into(),
        redirect_uri: "http://127.0.0.1:8080/callback".into(),
        return_to: "/admin".into(),
        remember: true,
        started_at: 1_700_000_000_123.0,
    };
    assert_eq!(Pending::from_text(&p.to_text()), Some(p.clone()));
    let text = p.to_text();
    for broken in [
        "".to_string(),
        "a\nb".to_string(),
        format!("{text}\nextra"),
        text.replace("\n1\n", "\n\n"),
        text.replace("1700000000123", "soon"),
    ] {
        assert_eq!(Pending::from_text(&broken), None, "{broken:?}");
    }
}
