//! Sign-up field validation, done before any hashing.

use api_types::roles;

/// Longest accepted password (characters).
pub const MAX_PASSWORD: usize = 128;
/// Shortest accepted password (characters).
pub const MIN_PASSWORD: usize = 8;

/// 3-20 characters of `[A-Za-z0-9_.-]`.
pub fn username(u: &str) -> Result<(), String> {
    let n = u.chars().count();
    if !(3..=20).contains(&n) {
        return Err("Invalid username: it must be 3 to 20 characters long.".into());
    }
    if !u
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err("Invalid username: only letters, digits, '_', '.' and '-' are allowed.".into());
    }
    Ok(())
}

/// A plausible address: `local@domain.tld`, no spaces, at most 254 characters.
pub fn email(e: &str) -> Result<(), String> {
    let bad = || Err("Invalid email: expected an address like name@example.com.".to_owned());
    if e.is_empty() || e.len() > 254 || e.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad();
    }
    let Some((local, domain)) = e.rsplit_once('@') else {
        return bad();
    };
    if local.is_empty() || local.contains('@') || local.len() > 64 {
        return bad();
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2
        || labels
            .iter()
            .any(|l| l.is_empty() || l.starts_with('-') || l.ends_with('-'))
    {
        return bad();
    }
    if !domain
        .chars()
        .all(|c| c.is_alphanumeric() || c == '.' || c == '-')
    {
        return bad();
    }
    Ok(())
}

/// 8-128 characters.
pub fn password(p: &str) -> Result<(), String> {
    let n = p.chars().count();
    if n < MIN_PASSWORD {
        return Err(format!(
            "Invalid password: it must be at least {MIN_PASSWORD} characters long."
        ));
    }
    if n > MAX_PASSWORD {
        return Err(format!(
            "Invalid password: it must be at most {MAX_PASSWORD} characters long."
        ));
    }
    Ok(())
}

/// Roles requested at sign-up (open role sign-up only): `user`, `moderator`/`mod`, `admin`
/// (or their `ROLE_*` spelling). The user role is always included.
pub fn requested_roles(requested: &[String]) -> Result<Vec<String>, String> {
    let mut out = vec![roles::USER.to_owned()];
    for r in requested {
        let role = match r.trim().to_ascii_lowercase().trim_start_matches("role_") {
            "user" => roles::USER,
            "moderator" | "mod" => roles::MODERATOR,
            "admin" => roles::ADMIN,
            _ => {
                return Err(format!(
                    "Failed! Role does not exist = {}",
                    r.chars().take(40).collect::<String>()
                ))
            }
        };
        if !out.iter().any(|x| x == role) {
            out.push(role.to_owned());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(username("abc").is_ok());
        assert!(username("a.b-c_D9").is_ok());
        assert!(username("ab").is_err());
        assert!(username(&"a".repeat(21)).is_err());
        assert!(username("bad name").is_err());
        assert!(username("émile").is_err());
    }

    #[test]
    fn emails() {
        assert!(email("a@b.io").is_ok());
        for bad in [
            "", "a", "a@b", "@b.io", "a@.io", "a b@c.io", "a@b..io", "a@b.io\n",
        ] {
            assert!(email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passwords() {
        assert!(password("12345678").is_ok());
        assert!(password("1234567").unwrap_err().contains("at least 8"));
        assert!(password(&"x".repeat(129))
            .unwrap_err()
            .contains("at most 128"));
    }

    #[test]
    fn roles_are_mapped_and_unknown_ones_refused() {
        assert_eq!(
            requested_roles(&["mod".into(), "admin".into()]).unwrap(),
            vec![roles::USER, roles::MODERATOR, roles::ADMIN]
        );
        assert!(requested_roles(&["superuser".into()])
            .unwrap_err()
            .contains("superuser"));
        assert_eq!(requested_roles(&[]).unwrap(), vec![roles::USER]);
    }
}
