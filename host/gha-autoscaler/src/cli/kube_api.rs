//! `gha-autoscaler kube-api`: serve the in-memory Kubernetes API on loopback and write a kubeconfig for kubectl.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use gha_mem_kube::{MemKube, MemKubeOptions};

/// Serve an in-memory Kubernetes API (for kubectl, controllers and the demo) until interrupted.
#[derive(Debug, Args)]
pub struct KubeApiArgs {
    /// Address to listen on (loopback; port 0 picks one).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Where to write the kubeconfig (`KUBECONFIG=... kubectl get pods`).
    #[arg(long, default_value = "mem-kube.kubeconfig")]
    kubeconfig: PathBuf,
}

impl KubeApiArgs {
    pub async fn execute(self) -> anyhow::Result<ExitCode> {
        let kube = MemKube::start_on(self.addr, MemKubeOptions::default()).await.context("starting the API server")?;
        std::fs::write(&self.kubeconfig, kube.kubeconfig())
            .with_context(|| format!("writing {}", self.kubeconfig.display()))?;
        println!("serving {} (kubeconfig: {})", kube.url(), self.kubeconfig.display());
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
        Ok(ExitCode::SUCCESS)
    }
}
