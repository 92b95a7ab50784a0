//! The GitHub config URL and what derives from it.

use url::Url;

use crate::error::{Error, Result};

/// What the runners register with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// An organization.
    Organization(String),
    /// A repository.
    Repository {
        /// Owner.
        owner: String,
        /// Repository name.
        repo: String,
    },
    /// An enterprise.
    Enterprise(String),
}

/// A parsed `githubConfigUrl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubConfig {
    /// The URL as given (trailing slash removed); sent to `runner-registration`.
    pub url: String,
    /// Organization, repository or enterprise.
    pub scope: Scope,
    /// Base of the GitHub REST API (`https://api.github.com`, `https://HOST/api/v3`).
    pub api_base: String,
    /// github.com, `*.ghe.com` and `github.localhost`; everything else is GHES.
    pub hosted: bool,
}

/// The environment variable that makes every host GHES. ARC tests its presence only: any value, even empty or
/// `false`, forces GHES.
pub const FORCE_GHES_ENV: &str = "GITHUB_ACTIONS_FORCE_GHES";

/// Whether `value` (the variable as read from the environment) forces GHES: it does whenever it is set.
pub fn forces_ghes(value: Option<std::ffi::OsString>) -> bool {
    value.is_some()
}

impl GitHubConfig {
    /// Parses a config URL. `force_ghes` treats any host as GHES (`GITHUB_ACTIONS_FORCE_GHES`).
    ///
    /// # Errors
    /// [`Error::InvalidConfigUrl`] saying what is wrong.
    pub fn parse(text: &str, force_ghes: bool) -> Result<Self> {
        let invalid = |why: &str| Error::InvalidConfigUrl(format!("{text:?}: {why}"));
        let url = Url::parse(text.trim()).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(invalid("the scheme must be https (or http for GHES behind a proxy)"));
        }
        let host = url.host_str().ok_or_else(|| invalid("no host"))?.to_ascii_lowercase();
        let segments: Vec<&str> =
            url.path_segments().map(|s| s.filter(|p| !p.is_empty()).collect()).unwrap_or_default();
        let scope = match segments.as_slice() {
            ["enterprises"] => return Err(invalid("an enterprise URL needs the enterprise name")),
            [org] => Scope::Organization((*org).to_string()),
            ["enterprises", enterprise] => Scope::Enterprise((*enterprise).to_string()),
            [owner, repo] => Scope::Repository { owner: (*owner).to_string(), repo: (*repo).to_string() },
            [] => return Err(invalid("the path must name an organization, org/repo or enterprises/NAME")),
            _ => return Err(invalid("too many path segments (expected org, org/repo or enterprises/NAME)")),
        };
        let hosted = !force_ghes
            && (matches!(host.as_str(), "github.com" | "www.github.com" | "github.localhost")
                || host.ends_with(".ghe.com"));
        if hosted && url.scheme() != "https" && host != "github.localhost" {
            return Err(invalid("github.com URLs must use https"));
        }
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        let api_base = if hosted {
            let api_host = if host == "www.github.com" { "github.com" } else { host.as_str() };
            format!("{}://api.{api_host}{port}", url.scheme())
        } else {
            format!("{}://{host}{port}/api/v3", url.scheme())
        };
        let mut normalized = format!("{}://{host}{port}/{}", url.scheme(), segments.join("/"));
        if normalized.ends_with('/') {
            normalized.pop();
        }
        Ok(GitHubConfig { url: normalized, scope, api_base, hosted })
    }

    /// Path of the registration-token endpoint under the API base.
    pub fn registration_token_path(&self) -> String {
        match &self.scope {
            Scope::Organization(org) => format!("/orgs/{org}/actions/runners/registration-token"),
            Scope::Repository { owner, repo } => format!("/repos/{owner}/{repo}/actions/runners/registration-token"),
            Scope::Enterprise(e) => format!("/enterprises/{e}/actions/runners/registration-token"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_value_of_the_force_ghes_variable_forces_ghes_as_in_arc() {
        for value in ["", "1", "yes", "true", "false", "0"] {
            assert!(forces_ghes(Some(value.into())), "{value:?}");
        }
        assert!(!forces_ghes(None));
    }

    #[test]
    fn hosted_urls_use_the_api_host() {
        let c = GitHubConfig::parse("https://github.com/acme/", false).unwrap();
        assert_eq!(c.scope, Scope::Organization("acme".into()));
        assert_eq!(
            (c.api_base.as_str(), c.hosted, c.url.as_str()),
            ("https://api.github.com", true, "https://github.com/acme")
        );
        let c = GitHubConfig::parse("https://www.github.com/acme/app", false).unwrap();
        assert_eq!(c.api_base, "https://api.github.com");
        assert_eq!(c.scope, Scope::Repository { owner: "acme".into(), repo: "app".into() });
        let c = GitHubConfig::parse("https://acme.ghe.com/enterprises/big", false).unwrap();
        assert_eq!(
            (c.api_base.as_str(), c.scope.clone()),
            ("https://api.acme.ghe.com", Scope::Enterprise("big".into()))
        );
    }

    #[test]
    fn other_hosts_are_ghes_and_may_use_http() {
        let c = GitHubConfig::parse("http://ghes.internal:8080/org", false).unwrap();
        assert_eq!((c.api_base.as_str(), c.hosted), ("http://ghes.internal:8080/api/v3", false));
        let forced = GitHubConfig::parse("https://github.com/acme", true).unwrap();
        assert_eq!(forced.api_base, "https://github.com/api/v3");
        assert_eq!(c.registration_token_path(), "/orgs/org/actions/runners/registration-token");
    }

    #[test]
    fn invalid_urls_say_why() {
        for (url, why) in [
            ("github.com/acme", "relative URL"),
            ("ftp://github.com/acme", "scheme"),
            ("https://github.com", "path must name"),
            ("https://github.com/a/b/c", "too many"),
            ("https://github.com/enterprises", "enterprise name"),
            ("http://github.com/acme", "https"),
        ] {
            let err = GitHubConfig::parse(url, false).unwrap_err().to_string();
            assert!(err.contains(why), "{url}: {err}");
        }
    }
}
