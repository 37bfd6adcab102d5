//! Sign-up field validation, done before any hashing.
//!
//! The field rules themselves live in `api_types::validate`, shared with the app's inline
//! validation so both always say the same; this module turns them into the server's errors.

use api_types::roles;
use api_types::validate as rules;

/// Longest accepted password (characters).
pub const MAX_PASSWORD: usize = rules::PASSWORD_MAX;

/// 3-20 characters of `[A-Za-z0-9_.-]`.
pub fn username(u: &str) -> Result<(), String> {
    rules::username(u).map_err(|e| e.message)
}

/// A plausible address: `local@domain.tld`, no spaces, at most 254 characters.
pub fn email(e: &str) -> Result<(), String> {
    rules::email(e).map_err(|e| e.message)
}

/// 8-128 characters.
pub fn password(p: &str) -> Result<(), String> {
    rules::password(p).map_err(|e| e.message)
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
