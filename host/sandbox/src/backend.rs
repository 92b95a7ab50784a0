//! The Kubernetes API a sandbox runs on: the in-memory API server (fast, the demo's default) or a real
//! etcd + kube-apiserver + kube-controller-manager ([`gha_real_kube`]). Scenarios are written once against
//! [`Backend`] and run on either.

use anyhow::Context as _;
use gha_mem_kube::{MemKube, MemKubeOptions};
use gha_real_kube::{RealKube, RealKubeOptions};
use gha_sim_kubelet::ServiceAccountAccess;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::PostParams;
use kube::{Api, Client};

/// Which Kubernetes API to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendKind {
    /// The in-memory API server.
    #[default]
    Mem,
    /// A real control plane (needs `scripts/provision-real-k8s.sh`).
    Real,
}

/// Who the in-process controller manager is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Identity {
    /// The cluster admin.
    #[default]
    Admin,
    /// A ServiceAccount (e.g. the controller chart's), with exactly the RBAC granted to it. The in-memory API
    /// has no authorization, so there this is the admin.
    ServiceAccount {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
}

/// A running Kubernetes API.
pub enum Backend {
    /// The in-memory API server.
    Mem(MemKube),
    /// A real control plane.
    Real(Box<RealKube>),
}

impl Backend {
    /// Starts one.
    ///
    /// # Errors
    /// A server cannot start (for [`BackendKind::Real`]: also when the binaries are not provisioned).
    pub async fn start(kind: BackendKind) -> anyhow::Result<Backend> {
        Ok(match kind {
            BackendKind::Mem => Backend::Mem(
                MemKube::start(MemKubeOptions::default()).await.context("starting the in-memory Kubernetes API")?,
            ),
            BackendKind::Real => Backend::Real(Box::new(
                RealKube::start(RealKubeOptions::default()).await.context("starting the real Kubernetes API")?,
            )),
        })
    }

    /// Which one it is.
    pub fn kind(&self) -> BackendKind {
        match self {
            Backend::Mem(_) => BackendKind::Mem,
            Backend::Real(_) => BackendKind::Real,
        }
    }

    /// Client settings for `identity`.
    ///
    /// # Errors
    /// No token can be had for the ServiceAccount.
    pub async fn config(&self, identity: &Identity) -> anyhow::Result<kube::Config> {
        match (self, identity) {
            (Backend::Mem(kube), _) => Ok(kube::Config::new(kube.url().parse().context("API URL")?)),
            (Backend::Real(kube), Identity::Admin) => Ok(kube.admin_config().await?),
            (Backend::Real(kube), Identity::ServiceAccount { namespace, name }) => {
                let token = kube.service_account_token(namespace, name).await?;
                Ok(kube.config_with_token(&token).await?)
            }
        }
    }

    /// An admin client (no rate limit).
    ///
    /// # Errors
    /// The client cannot be built.
    pub async fn admin_client(&self) -> anyhow::Result<Client> {
        Ok(Client::try_from(self.config(&Identity::Admin).await?)?)
    }

    /// The API URL written into listener configs: the in-memory server's; None on a real cluster, where
    /// listeners use their pod's ServiceAccount like in a user's cluster.
    pub fn listener_api_url(&self) -> Option<String> {
        match self {
            Backend::Mem(kube) => Some(kube.url()),
            Backend::Real(_) => None,
        }
    }

    /// How pod processes reach the API as their ServiceAccount (real clusters only).
    pub fn service_accounts(&self) -> Option<ServiceAccountAccess> {
        match self {
            Backend::Mem(_) => None,
            Backend::Real(kube) => {
                Some(ServiceAccountAccess { server: kube.url().to_string(), ca_file: kube.ca_file().to_path_buf() })
            }
        }
    }

    /// An admin kubeconfig (for `kubectl`, `helm`, `gha-autoscaler controller`).
    pub fn kubeconfig(&self) -> String {
        match self {
            Backend::Mem(kube) => kube.kubeconfig(),
            Backend::Real(kube) => kube.kubeconfig(),
        }
    }

    /// Cuts every open watch: the in-memory server ends them; a real API server is restarted.
    ///
    /// # Errors
    /// The real API server does not come back.
    pub async fn cut_watches(&mut self) -> anyhow::Result<()> {
        match self {
            Backend::Mem(kube) => kube.cut_watches(),
            Backend::Real(kube) => kube.restart_apiserver().await?,
        }
        Ok(())
    }

    /// The in-memory server, for its fault injection and store (None on a real cluster).
    pub fn mem(&self) -> Option<&MemKube> {
        match self {
            Backend::Mem(kube) => Some(kube),
            Backend::Real(_) => None,
        }
    }

    /// The real control plane (None on the in-memory API).
    pub fn real(&self) -> Option<&RealKube> {
        match self {
            Backend::Mem(_) => None,
            Backend::Real(kube) => Some(kube),
        }
    }

    /// Creates our CRDs and waits until the API serves them.
    ///
    /// # Errors
    /// The API refuses them or they never become established.
    pub async fn install_crds(&self, client: &Client) -> anyhow::Result<()> {
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        for crd in gha_crds::all() {
            let name = crd.metadata.name.clone().unwrap_or_default();
            crds.create(&PostParams::default(), &crd).await.with_context(|| format!("installing CRD {name}"))?;
            let established = kube::runtime::wait::conditions::is_crd_established();
            tokio::time::timeout(
                std::time::Duration::from_secs(30),
                kube::runtime::wait::await_condition(crds.clone(), &name, established),
            )
            .await
            .with_context(|| format!("CRD {name} never became established"))??;
        }
        Ok(())
    }
}
