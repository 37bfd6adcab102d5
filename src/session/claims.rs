//! Reading the access token's claims without verifying it: the client never holds the signing
//! key, it only needs `exp`/`iat` for scheduling and `sub`/`id`/`roles` for display. The server
//! remains the only judge of a token's validity.

use api_types::AccessClaims;
use jwt_compact::UntrustedToken;

/// What the engine uses from an access token. Times are Unix ms on the SERVER's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenFacts {
    /// `exp` in ms, when present.
    pub exp_ms: Option<f64>,
    /// `iat` in ms, when present.
    pub iat_ms: Option<f64>,
    /// The custom claims (all optional: the tutorial's tokens carry only `id`).
    pub custom: AccessClaims,
}

/// Why a token could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable access token: {0}")]
pub struct ClaimsError(pub String);

/// Decodes the claims of a JWT without checking its signature.
pub fn read_claims(token: &str) -> Result<TokenFacts, ClaimsError> {
    let untrusted = UntrustedToken::new(token).map_err(|e| ClaimsError(e.to_string()))?;
    let claims = untrusted
        .deserialize_claims_unchecked::<AccessClaims>()
        .map_err(|e| ClaimsError(e.to_string()))?;
    Ok(TokenFacts {
        exp_ms: claims.expiration.map(|t| t.timestamp_millis() as f64),
        iat_ms: claims.issued_at.map(|t| t.timestamp_millis() as f64),
        custom: claims.custom,
    })
}
