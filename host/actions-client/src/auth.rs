//! Credentials: a personal access token or a GitHub App.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{Error, Result};

/// How the client authenticates to the GitHub API. `Debug` never shows secrets.
#[derive(Clone)]
pub enum Credentials {
    /// A personal access token (or any token usable as `Bearer`).
    Token(String),
    /// A GitHub App installation.
    App {
        /// The app id or client id (the JWT `iss`).
        app_id: String,
        /// Installation id.
        installation_id: i64,
        /// PEM private key (PKCS#1 or PKCS#8).
        private_key_pem: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Token(_) => f.write_str("Token(<redacted>)"),
            Credentials::App { app_id, installation_id, .. } => f
                .debug_struct("App")
                .field("app_id", app_id)
                .field("installation_id", installation_id)
                .field("private_key_pem", &"<redacted>")
                .finish(),
        }
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iat: i64,
    exp: i64,
    iss: &'a str,
}

impl Credentials {
    /// Checks the credentials are usable (non-empty token, parseable key) without any request.
    ///
    /// # Errors
    /// [`Error::InvalidCredentials`].
    pub fn validate(&self) -> Result<()> {
        match self {
            Credentials::Token(token) if token.trim().is_empty() => {
                Err(Error::InvalidCredentials("the token is empty".into()))
            }
            Credentials::Token(_) => Ok(()),
            Credentials::App { app_id, private_key_pem, .. } => {
                if app_id.trim().is_empty() {
                    return Err(Error::InvalidCredentials("the GitHub App id is empty".into()));
                }
                jsonwebtoken::EncodingKey::from_rsa_pem(private_key_pem.as_bytes()).map(|_| ()).map_err(|e| {
                    Error::InvalidCredentials(format!("the GitHub App private key is not an RSA PEM: {e}"))
                })
            }
        }
    }

    /// The app JWT: RS256, `iat` = now − 60 s (clock skew), `exp` = `iat` + 9 min, `iss` = app id.
    ///
    /// # Errors
    /// [`Error::InvalidCredentials`] for a token credential or a bad key.
    pub fn app_jwt(&self, now: DateTime<Utc>) -> Result<String> {
        let Credentials::App { app_id, private_key_pem, .. } = self else {
            return Err(Error::InvalidCredentials("not a GitHub App".into()));
        };
        let iat = now.timestamp() - 60;
        let claims = Claims { iat, exp: iat + 9 * 60, iss: app_id };
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(private_key_pem.as_bytes())
            .map_err(|e| Error::InvalidCredentials(format!("the GitHub App private key is not an RSA PEM: {e}")))?;
        jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256), &claims, &key)
            .map_err(|e| Error::InvalidCredentials(format!("cannot sign the app JWT: {e}")))
    }
}

/// Reads the `exp` claim of a JWT without verifying it (the admin token is only ever sent back to its issuer).
pub(crate) fn jwt_expiry(token: &str) -> Option<DateTime<Utc>> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    DateTime::from_timestamp(claims.get("exp")?.as_i64()?, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_secrets() {
        let token = Credentials::Token("ghp_secret".into());
        assert!(!format!("{token:?}").contains("secret"));
        let app = Credentials::App { app_id: "1".into(), installation_id: 2, private_key_pem: "KEY".into() };
        assert!(!format!("{app:?}").contains("KEY"));
    }

    #[test]
    fn bad_credentials_are_caught_before_any_request() {
        assert!(Credentials::Token(" ".into()).validate().is_err());
        let app = Credentials::App { app_id: "1".into(), installation_id: 2, private_key_pem: "nope".into() };
        assert!(app.validate().unwrap_err().to_string().contains("RSA PEM"));
    }

    #[test]
    fn jwt_expiry_reads_the_claim_and_rejects_garbage() {
        use base64::Engine;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"exp": 1800000000}"#);
        assert_eq!(jwt_expiry(&format!("h.{payload}.s")).unwrap().timestamp(), 1_800_000_000);
        assert!(jwt_expiry("not-a-jwt").is_none());
        assert!(jwt_expiry("a.!!!.c").is_none());
    }
}
