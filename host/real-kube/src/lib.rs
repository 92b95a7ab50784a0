//! A real Kubernetes control plane for tests: etcd, kube-apiserver and (optionally) kube-controller-manager
//! v1.20.2 on free loopback ports, with a throwaway CA, token authentication and RBAC, torn down when the
//! [`RealKube`] is dropped (also on a test panic; the processes also die with the test process).
//!
//! [`RealRegistry`] is a real OCI registry (the CNCF distribution server) on loopback.
//!
//! The binaries come from `scripts/provision-real-k8s.sh` (see [`bin_dir`]). There is no scheduler and no
//! kubelet: pods stay Pending unless something writes their status (the simulated kubelet does).
#![deny(missing_docs)]

mod pki;
mod process;
mod registry;
mod tools;

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};

pub use registry::RealRegistry;
pub use tools::{Helm, bin_dir, tool};

use pki::Pki;
use process::Server;
pub use process::free_port;

/// Why the cluster could not start or answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A binary is missing: run the provisioning script.
    #[error("{0} is missing: run scripts/provision-real-k8s.sh (or set GHA_REAL_K8S_BIN)")]
    NotProvisioned(PathBuf),
    /// Generating the certificates.
    #[error("PKI: {0}")]
    Pki(String),
    /// Files and processes.
    #[error("{0}")]
    Io(String),
    /// A server did not become ready; its log's tail.
    #[error("{what} not ready: {log}")]
    NotReady {
        /// Which server, and what was awaited.
        what: String,
        /// The last lines of its log.
        log: String,
    },
    /// The API refused a request.
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

/// What to start.
#[derive(Debug, Clone)]
pub struct RealKubeOptions {
    /// Start kube-controller-manager (garbage collection, namespace deletion, ServiceAccount token secrets,
    /// Deployments and ReplicaSets).
    pub controller_manager: bool,
}

impl Default for RealKubeOptions {
    fn default() -> Self {
        RealKubeOptions { controller_manager: true }
    }
}

/// A running control plane. Dropping it kills every process and removes its files.
pub struct RealKube {
    dir: tempfile::TempDir,
    url: String,
    ca_file: PathBuf,
    apiserver_args: Vec<String>,
    // Field order is drop order: the controller manager and API server go before etcd.
    controller_manager: Option<Server>,
    apiserver: Server,
    _etcd: Server,
}

/// The admin's bearer token (group `system:masters`).
const ADMIN_TOKEN: &str = "gha-real-kube-admin";

impl RealKube {
    /// Starts etcd and kube-apiserver (and kube-controller-manager), and waits until they serve.
    ///
    /// # Errors
    /// A binary is missing, a server does not come up within a minute (the error holds its log's tail).
    pub async fn start(options: RealKubeOptions) -> Result<RealKube, Error> {
        let (etcd_bin, apiserver_bin) = (tool("etcd")?, tool("kube-apiserver")?);
        let controller_manager_bin =
            if options.controller_manager { Some(tool("kube-controller-manager")?) } else { None };
        let dir = tempfile::Builder::new().prefix("gha-real-kube-").tempdir().map_err(|e| Error::Io(e.to_string()))?;
        let path = dir.path().to_path_buf();
        let pki = Pki::generate(&path)?;
        let tokens = path.join("tokens.csv");
        std::fs::write(&tokens, format!("{ADMIN_TOKEN},admin,admin,\"system:masters\"\n"))
            .map_err(|e| Error::Io(e.to_string()))?;

        let (client_port, peer_port, secure_port) = (free_port()?, free_port()?, free_port()?);
        let etcd_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let mut etcd = Server::start(
            "etcd",
            &etcd_bin,
            &[
                "--name=default".into(),
                format!("--data-dir={}", path.join("etcd").display()),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=default={peer_url}"),
                "--unsafe-no-fsync".into(),
                "--log-level=warn".into(),
            ],
            &path,
        )?;
        // kube-apiserver gives up on an etcd that does not answer within seconds (a loaded machine can take longer).
        etcd.wait_listening(&format!("127.0.0.1:{client_port}"), Duration::from_secs(60)).await?;
        let file = |p: &Path| p.display().to_string();
        let apiserver_args = vec![
            format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={secure_port}"),
            "--insecure-port=0".into(),
            format!("--tls-cert-file={}", file(&pki.serving_cert)),
            format!("--tls-private-key-file={}", file(&pki.serving_key)),
            format!("--client-ca-file={}", file(&pki.ca_cert)),
            format!("--token-auth-file={}", file(&tokens)),
            "--authorization-mode=RBAC".into(),
            "--service-account-issuer=https://kubernetes.default.svc".into(),
            format!("--service-account-key-file={}", file(&pki.sa_pub)),
            format!("--service-account-signing-key-file={}", file(&pki.sa_key)),
            "--service-cluster-ip-range=10.0.0.0/24".into(),
            "--allow-privileged=true".into(),
            "--endpoint-reconciler-type=none".into(),
            "--v=0".into(),
        ];
        let apiserver = Server::start("kube-apiserver", &apiserver_bin, &apiserver_args, &path)?;
        let mut cluster = RealKube {
            url: format!("https://127.0.0.1:{secure_port}"),
            ca_file: pki.ca_cert.clone(),
            apiserver_args,
            controller_manager: None,
            apiserver,
            _etcd: etcd,
            dir,
        };
        cluster.wait_ready().await?;

        if let Some(bin) = controller_manager_bin {
            let kubeconfig = path.join("admin.kubeconfig");
            std::fs::write(&kubeconfig, cluster.kubeconfig()).map_err(|e| Error::Io(e.to_string()))?;
            cluster.controller_manager = Some(Server::start(
                "kube-controller-manager",
                &bin,
                &[
                    format!("--kubeconfig={}", file(&kubeconfig)),
                    format!("--service-account-private-key-file={}", file(&pki.sa_key)),
                    format!("--root-ca-file={}", file(&pki.ca_cert)),
                    "--leader-elect=false".into(),
                    "--use-service-account-credentials=false".into(),
                    "--secure-port=0".into(),
                    "--port=0".into(),
                    "--v=0".into(),
                ],
                &path,
            )?);
            cluster.wait_for_controller_manager().await?;
        }
        Ok(cluster)
    }

    async fn wait_ready(&mut self) -> Result<(), Error> {
        let client = self.admin_client().await?;
        for _ in 0..600 {
            if self.apiserver.exited() {
                break;
            }
            // Ready, and the bootstrap controller has made the `default` namespace.
            let ready = matches!(client.request_text(http_get("/readyz")).await.as_deref(), Ok("ok"));
            if ready && client.request_text(http_get("/api/v1/namespaces/default")).await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(Error::NotReady { what: "kube-apiserver".into(), log: self.apiserver.log_tail() })
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A kubeconfig authenticating with `token` (context `real-kube`, namespace `default`).
    pub fn kubeconfig_with_token(&self, token: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: real-kube\n  cluster:\n    server: {}\n    \
             certificate-authority: {}\nusers:\n- name: user\n  user:\n    token: {token}\ncontexts:\n- name: \
             real-kube\n  context:\n    cluster: real-kube\n    user: user\n    namespace: default\n\
             current-context: real-kube\n",
            self.url,
            self.ca_file.display()
        )
    }

    /// The admin's kubeconfig (`system:masters`).
    pub fn kubeconfig(&self) -> String {
        self.kubeconfig_with_token(ADMIN_TOKEN)
    }

    /// Writes the admin's kubeconfig into the cluster's directory and returns its path (for helm, kubectl).
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn kubeconfig_file(&self) -> Result<PathBuf, Error> {
        let path = self.dir.path().join("admin.kubeconfig");
        std::fs::write(&path, self.kubeconfig()).map_err(|e| Error::Io(e.to_string()))?;
        Ok(path)
    }

    /// Client settings authenticating with `token`.
    ///
    /// # Errors
    /// The settings cannot be built.
    pub async fn config_with_token(&self, token: &str) -> Result<kube::Config, Error> {
        let kubeconfig = Kubeconfig::from_yaml(&self.kubeconfig_with_token(token))
            .map_err(|e| Error::Io(format!("kubeconfig: {e}")))?;
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| Error::Io(format!("kubeconfig: {e}")))
    }

    /// A client authenticating with `token`.
    ///
    /// # Errors
    /// The client cannot be built.
    pub async fn client_with_token(&self, token: &str) -> Result<Client, Error> {
        Ok(Client::try_from(self.config_with_token(token).await?)?)
    }

    /// Client settings of the admin (`system:masters`).
    ///
    /// # Errors
    /// The settings cannot be built.
    pub async fn admin_config(&self) -> Result<kube::Config, Error> {
        self.config_with_token(ADMIN_TOKEN).await
    }

    /// The CA certificate's file.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// A client of the admin (`system:masters`).
    ///
    /// # Errors
    /// The client cannot be built.
    pub async fn admin_client(&self) -> Result<Client, Error> {
        self.client_with_token(ADMIN_TOKEN).await
    }

    /// A token of ServiceAccount `namespace/name`, from the TokenRequest API (as a kubelet gets one for a pod).
    ///
    /// # Errors
    /// The ServiceAccount does not exist.
    pub async fn service_account_token(&self, namespace: &str, name: &str) -> Result<String, Error> {
        let accounts: Api<ServiceAccount> = Api::namespaced(self.admin_client().await?, namespace);
        let request = accounts.create_token_request(name, &Default::default(), &TokenRequest::default()).await?;
        Ok(request.status.map(|s| s.token).unwrap_or_default())
    }

    async fn wait_for_controller_manager(&mut self) -> Result<(), Error> {
        // The ServiceAccount controller making `default/default` shows the manager works.
        let accounts: Api<ServiceAccount> = Api::namespaced(self.admin_client().await?, "default");
        for _ in 0..600 {
            if accounts.get_opt("default").await?.is_some() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = self.controller_manager.as_ref().map_or(String::new(), Server::log_tail);
        Err(Error::NotReady { what: "kube-controller-manager".into(), log })
    }

    /// A client acting as ServiceAccount `namespace/name` (creating the ServiceAccount when it does not exist).
    ///
    /// # Errors
    /// The ServiceAccount cannot be made or has no token.
    pub async fn service_account_client(&self, namespace: &str, name: &str) -> Result<Client, Error> {
        let accounts: Api<ServiceAccount> = Api::namespaced(self.admin_client().await?, namespace);
        if accounts.get_opt(name).await?.is_none() {
            let account: ServiceAccount =
                serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).expect("static object");
            accounts.create(&Default::default(), &account).await?;
        }
        let token = self.service_account_token(namespace, name).await?;
        self.client_with_token(&token).await
    }

    /// Kills kube-apiserver and starts it again on the same port: every open watch and connection is cut, as in
    /// a control-plane upgrade.
    ///
    /// # Errors
    /// It does not come back.
    pub async fn restart_apiserver(&mut self) -> Result<(), Error> {
        self.apiserver.stop();
        self.apiserver =
            Server::start("kube-apiserver", &tool("kube-apiserver")?, &self.apiserver_args, self.dir.path())?;
        self.wait_ready().await
    }
}

fn http_get(path: &str) -> http::Request<Vec<u8>> {
    http::Request::get(path).body(Vec::new()).expect("static request")
}
