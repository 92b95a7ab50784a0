//! Credentials the fake issues and checks, so auth bugs in the client show: PATs, GitHub App JWTs and installation
//! tokens, registration tokens, admin JWTs (with a real `exp`), all with expiries.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use gha_actions_client::model::TokenResponse;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::state::{Outcome, Refusal};

/// A GitHub App the fake accepts.
#[derive(Debug, Clone)]
pub struct FakeApp {
    /// App id or client id (the JWT `iss`).
    pub app_id: String,
    /// The installation.
    pub installation_id: i64,
    /// The app's public key (PEM) to verify JWTs with.
    pub public_key_pem: String,
}

#[derive(Serialize, Deserialize)]
struct AppClaims {
    iat: i64,
    exp: i64,
    iss: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
struct AdminClaims {
    exp: i64,
    sub: String,
    /// The revocation generation it was issued in; tokens of earlier generations are refused.
    #[serde(default)]
    generation: u64,
}

pub(crate) struct Tokens {
    secret: Vec<u8>,
    pats: Vec<String>,
    app: Option<(FakeApp, DecodingKey)>,
    /// Installation and registration tokens with their expiry.
    issued: HashMap<String, DateTime<Utc>>,
    admin_ttl: Duration,
    /// Bumped by [`Tokens::revoke_admin_tokens`].
    admin_generation: u64,
}

fn bearer(header: Option<&str>, scheme: &str) -> Option<String> {
    header?.strip_prefix(scheme)?.strip_prefix(' ').map(str::to_string)
}

fn random(prefix: &str) -> String {
    use rand::Rng;
    let bytes: [u8; 20] = rand::rng().random();
    format!("{prefix}{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

impl Tokens {
    pub(crate) fn new(pats: Vec<String>, app: Option<FakeApp>, admin_ttl: Duration) -> Result<Self, String> {
        let app = match app {
            Some(app) => {
                let key = DecodingKey::from_rsa_pem(app.public_key_pem.as_bytes()).map_err(|e| e.to_string())?;
                Some((app, key))
            }
            None => None,
        };
        use rand::Rng;
        let secret: [u8; 32] = rand::rng().random();
        Ok(Tokens { secret: secret.to_vec(), pats, app, issued: HashMap::new(), admin_ttl, admin_generation: 0 })
    }

    fn issue(&mut self, prefix: &str, ttl: TimeDelta) -> TokenResponse {
        let token = random(prefix);
        let expires_at = Utc::now() + ttl;
        self.issued.insert(token.clone(), expires_at);
        TokenResponse { token, expires_at }
    }

    fn valid_issued(&self, token: &str, prefix: &str) -> bool {
        token.starts_with(prefix) && self.issued.get(token).is_some_and(|exp| *exp > Utc::now())
    }

    /// `Bearer <PAT | installation token>` for the GitHub API.
    pub(crate) fn check_github(&self, authorization: Option<&str>) -> Outcome<()> {
        match bearer(authorization, "Bearer") {
            Some(t) if self.pats.contains(&t) || self.valid_issued(&t, "ghs_") => Ok(()),
            _ => Err(Refusal::Unauthorized("Bad credentials".into())),
        }
    }

    /// `POST /app/installations/{id}/access_tokens` with an app JWT.
    pub(crate) fn installation_token(
        &mut self,
        authorization: Option<&str>,
        installation: i64,
    ) -> Outcome<TokenResponse> {
        let unauthorized = |why: &str| Refusal::Unauthorized(why.to_string());
        let (app, key) = self.app.as_ref().ok_or_else(|| unauthorized("no GitHub App is configured"))?;
        let jwt = bearer(authorization, "Bearer").ok_or_else(|| unauthorized("missing JWT"))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_required_spec_claims(&["exp", "iat", "iss"]);
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<AppClaims>(&jwt, key, &validation)
            .map_err(|e| unauthorized(&format!("invalid app JWT: {e}")))?
            .claims;
        let iss = match &claims.iss {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if iss != app.app_id {
            return Err(unauthorized("JWT issuer is not the app"));
        }
        if claims.exp - claims.iat > 600 || claims.iat > Utc::now().timestamp() + 60 {
            return Err(unauthorized("JWT lifetime must be at most 10 minutes and iat not in the future"));
        }
        if installation != app.installation_id {
            return Err(Refusal::NotFound("NotFound", "no such installation".into()));
        }
        Ok(self.issue("ghs_", TimeDelta::hours(1)))
    }

    /// `POST .../registration-token`.
    pub(crate) fn registration_token(&mut self, authorization: Option<&str>) -> Outcome<TokenResponse> {
        self.check_github(authorization)?;
        Ok(self.issue("reg_", TimeDelta::hours(1)))
    }

    /// `POST /actions/runner-registration` with `RemoteAuth <registration token>`: an admin JWT.
    pub(crate) fn admin_token(&self, authorization: Option<&str>) -> Outcome<String> {
        match bearer(authorization, "RemoteAuth") {
            Some(t) if self.valid_issued(&t, "reg_") => {}
            _ => return Err(Refusal::Unauthorized("invalid registration token".into())),
        }
        let exp = (Utc::now() + TimeDelta::from_std(self.admin_ttl).unwrap_or(TimeDelta::hours(1))).timestamp();
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &AdminClaims { exp, sub: "runner-admin".into(), generation: self.admin_generation },
            &EncodingKey::from_secret(&self.secret),
        )
        .map_err(|e| Refusal::Unauthorized(e.to_string()))
    }

    /// `Bearer <admin JWT>` on Actions-service calls: signature and expiry.
    pub(crate) fn check_admin(&self, authorization: Option<&str>) -> Outcome<()> {
        let token = bearer(authorization, "Bearer").ok_or_else(|| Refusal::Unauthorized("missing token".into()))?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<AdminClaims>(&token, &DecodingKey::from_secret(&self.secret), &validation)
            .map_err(|e| Refusal::Unauthorized(format!("invalid admin token: {e}")))?;
        if claims.claims.generation != self.admin_generation {
            return Err(Refusal::Unauthorized("the admin token was revoked".into()));
        }
        Ok(())
    }

    /// Revokes every admin token issued so far, before its expiry (clients must fetch a new one).
    pub(crate) fn revoke_admin_tokens(&mut self) {
        self.admin_generation += 1;
    }
}

/// `Bearer` value of an `Authorization` header.
pub(crate) fn bearer_token(authorization: Option<&str>) -> Option<String> {
    bearer(authorization, "Bearer")
}
