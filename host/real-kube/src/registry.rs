//! A real OCI registry for tests: the CNCF distribution server (Debian's `docker-registry`) on a free loopback
//! port, plain HTTP, optionally behind htpasswd basic auth, its storage in a temporary directory.

use std::time::Duration;

use crate::Error;
use crate::process::{Server, free_port};
use crate::tools::tool;

/// A running registry. Dropping it kills the server and removes its storage.
pub struct RealRegistry {
    address: String,
    server: Server,
    _dir: tempfile::TempDir,
}

impl RealRegistry {
    /// Starts a registry that requires `credentials` (user, password) for every request, or none.
    ///
    /// # Errors
    /// The binary is missing, or the server does not answer within 20 s.
    pub async fn start(credentials: Option<(&str, &str)>) -> Result<RealRegistry, Error> {
        let program = tool("docker-registry")?;
        let dir = tempfile::tempdir().map_err(|e| Error::Io(e.to_string()))?;
        let address = format!("127.0.0.1:{}", free_port()?);
        let auth = match credentials {
            Some((user, password)) => {
                let hash = bcrypt::hash(password, 4).map_err(|e| Error::Io(format!("bcrypt: {e}")))?;
                let htpasswd = dir.path().join("htpasswd");
                std::fs::write(&htpasswd, format!("{user}:{hash}\n")).map_err(|e| Error::Io(e.to_string()))?;
                format!("auth:\n  htpasswd:\n    realm: gha-test\n    path: {}\n", htpasswd.display())
            }
            None => String::new(),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    \
             enabled: true\nhttp:\n  addr: {address}\n{auth}",
            dir.path().join("storage").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).map_err(|e| Error::Io(e.to_string()))?;
        let mut server = Server::start(
            "docker-registry",
            &program,
            &["serve".into(), config_path.display().to_string()],
            dir.path(),
        )?;
        // `/v2/` answers 200 (anonymous) or 401 (auth required) once the server listens.
        server.wait_listening(&address, Duration::from_secs(20)).await?;
        Ok(RealRegistry { address, server, _dir: dir })
    }

    /// `host:port` of the registry, the registry part of its references.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The server's log tail (for assertion messages).
    pub fn log_tail(&self) -> String {
        self.server.log_tail()
    }
}
