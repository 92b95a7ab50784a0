//! The whole product offline, on loopback: the fake Actions service, the in-memory Kubernetes API with the
//! CRDs, the controller manager, and a simulated kubelet that plays runner pods and runs listener pods as real
//! `gha-autoscaler listener` processes. `demo`, the end-to-end tests and the benchmarks start one of these.
#![deny(missing_docs)]

mod backend;
pub mod demo;
mod trace_feed;

pub use backend::{Backend, BackendKind, Identity};

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use gha_actions_fake::{FakeActions, FakeOptions, JobSpec};
use gha_controller::{Context, ControllerOptions};
use gha_crds::{AutoscalingRunnerSet, AutoscalingRunnerSetSpec, PolicySpecCr};
use gha_sim_kubelet::{KubeletOptions, SimulatedKubelet};
use k8s_openapi::api::core::v1::{Container, EnvVar, Namespace, PodSpec, PodTemplateSpec, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::watch;

/// The PAT the fake accepts.
pub const TOKEN: &str = "ghp_fake";
/// The organization scale sets register in.
pub const ORG: &str = "acme";
/// Namespace of the controller and listeners.
pub const CONTROLLER_NAMESPACE: &str = "arc-systems";
/// Namespace of scale sets and runners.
pub const RUNNER_NAMESPACE: &str = "arc-runners";
/// The GitHub secret every scale set uses.
pub const GITHUB_SECRET: &str = "github-token";

/// How to start a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// The `gha-autoscaler` binary listener pods run; None = listener pods never start (tests that drive the
    /// EphemeralRunnerSet themselves).
    pub listener_binary: Option<PathBuf>,
    /// Multiplies job durations in runner pods.
    pub time_scale: f64,
    /// Container start-up time of every pod.
    pub pod_start_delay: Duration,
    /// How long the fake holds an empty long poll.
    pub long_poll_hold: Duration,
    /// Start the simulated kubelet (off: tests write pod statuses themselves).
    pub kubelet: bool,
    /// Run the controller manager in this process (off: the caller runs `gha-autoscaler controller`).
    pub in_process_controller: bool,
    /// Log level of listener processes (`LOG_LEVEL` in their pod template).
    pub listener_log_level: String,
    /// Controller flags (namespace and listener API URL are filled in).
    pub controller: ControllerOptions,
    /// The Kubernetes API to run on.
    pub backend: BackendKind,
    /// Who the in-process controller manager is.
    pub controller_identity: Identity,
    /// Where listener processes' logs go (`<namespace>_<pod>.log`); None: this process's output.
    pub container_log_dir: Option<PathBuf>,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            listener_binary: None,
            time_scale: 1.0,
            pod_start_delay: Duration::from_millis(50),
            long_poll_hold: Duration::from_millis(500),
            kubelet: true,
            in_process_controller: true,
            listener_log_level: "warn".into(),
            controller: ControllerOptions {
                kube_qps: 0.0,
                runner_max_concurrent_reconciles: 8,
                sync_period: Duration::from_secs(5),
                ..ControllerOptions::default()
            },
            backend: BackendKind::Mem,
            controller_identity: Identity::Admin,
            container_log_dir: None,
        }
    }
}

/// A running sandbox. Dropping it stops everything.
pub struct Sandbox {
    /// The fake Actions service.
    pub fake: FakeActions,
    /// The Kubernetes API.
    pub backend: Backend,
    /// An admin client of it (not rate limited).
    pub client: Client,
    /// The simulated kubelet (fault injection).
    pub kubelet: Arc<SimulatedKubelet>,
    /// The in-process controllers' shared context (metrics, policies), while they run here.
    pub context: Option<Arc<Context>>,
    controller_options: ControllerOptions,
    controller_identity: Identity,
    listener_log_level: String,
    stop: watch::Sender<bool>,
    controller: Option<tokio::task::JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// A controller manager running in this process: its context, stop switch and task.
struct RunningController {
    context: Arc<Context>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// Starts the controller manager as `identity`.
async fn start_controller(
    backend: &Backend,
    identity: &Identity,
    options: ControllerOptions,
) -> anyhow::Result<RunningController> {
    let config = backend.config(identity).await?;
    let client = gha_controller::rate_limit::client(config, options.kube_qps, options.kube_burst)?;
    let context = gha_controller::manager::context(client, options).await?;
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(gha_controller::manager::run_controllers(context.clone(), stopped));
    Ok(RunningController { context, stop, task })
}

impl Sandbox {
    /// Starts the fake, the API (with CRDs and namespaces), the controller manager and the kubelet. With
    /// `SANDBOX_LOG` set (an `EnvFilter` directive), logs go to the test output.
    ///
    /// # Errors
    /// A server cannot bind or the CRDs cannot be installed.
    pub async fn start(options: SandboxOptions) -> anyhow::Result<Self> {
        if let Ok(filter) = std::env::var("SANDBOX_LOG") {
            let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
        }
        let fake = FakeActions::start(FakeOptions { long_poll_hold: options.long_poll_hold, ..FakeOptions::default() })
            .await
            .context("starting the fake Actions service")?;
        let backend = Backend::start(options.backend).await?;
        let client = backend.admin_client().await?;
        backend.install_crds(&client).await?;
        let namespaces: Api<Namespace> = Api::all(client.clone());
        for name in [CONTROLLER_NAMESPACE, RUNNER_NAMESPACE] {
            let namespace = Namespace {
                metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
                ..Default::default()
            };
            namespaces.create(&PostParams::default(), &namespace).await.context("creating the namespaces")?;
        }
        let secrets: Api<Secret> = Api::namespaced(client.clone(), RUNNER_NAMESPACE);
        let secret = Secret {
            metadata: ObjectMeta { name: Some(GITHUB_SECRET.into()), ..Default::default() },
            string_data: Some(BTreeMap::from([("github_token".to_string(), TOKEN.to_string())])),
            ..Default::default()
        };
        secrets.create(&PostParams::default(), &secret).await.context("creating the GitHub secret")?;

        let mut controller = options.controller.clone();
        controller.controller_namespace = CONTROLLER_NAMESPACE.into();
        controller.listener_kubernetes_api_url = backend.listener_api_url();
        controller.listener_entrypoint = "gha-autoscaler".into();
        let running = if options.in_process_controller {
            Some(start_controller(&backend, &options.controller_identity, controller.clone()).await?)
        } else {
            None
        };
        let mut tasks = Vec::new();

        let binaries: HashMap<String, PathBuf> =
            options.listener_binary.iter().map(|path| ("gha-autoscaler".to_string(), path.clone())).collect();
        let kubelet = SimulatedKubelet::new(
            client.clone(),
            KubeletOptions {
                actions_url: Some(fake.base_url()),
                start_delay: options.pod_start_delay,
                time_scale: options.time_scale,
                binaries,
                service_accounts: backend.service_accounts(),
                log_dir: options.container_log_dir.clone(),
                ..KubeletOptions::default()
            },
        );
        if options.kubelet {
            tasks.push(tokio::spawn(kubelet.clone().run()));
        }
        let (context, stop, controller_task) = match running {
            Some(RunningController { context, stop, task }) => (Some(context), stop, Some(task)),
            None => (None, watch::channel(false).0, None),
        };
        Ok(Sandbox {
            fake,
            backend,
            client,
            kubelet,
            context,
            controller_options: controller,
            controller_identity: options.controller_identity.clone(),
            listener_log_level: options.listener_log_level.clone(),
            stop,
            controller: controller_task,
            tasks,
        })
    }

    /// Stops the controller manager (if one runs here) and starts a fresh one (nothing carried over but the
    /// cluster's state).
    ///
    /// # Errors
    /// The new manager cannot start.
    pub async fn restart_controller(&mut self) -> anyhow::Result<()> {
        let identity = self.controller_identity.clone();
        self.restart_controller_as(identity).await
    }

    /// Like [`Sandbox::restart_controller`], acting as `identity` from now on.
    ///
    /// # Errors
    /// The new manager cannot start.
    pub async fn restart_controller_as(&mut self, identity: Identity) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        if let Some(task) = self.controller.take() {
            task.abort();
            let _ = task.await;
        }
        let running = start_controller(&self.backend, &identity, self.controller_options.clone()).await?;
        (self.context, self.stop, self.controller) = (Some(running.context), running.stop, Some(running.task));
        self.controller_identity = identity;
        Ok(())
    }

    /// An AutoscalingRunnerSet in [`RUNNER_NAMESPACE`] registering `name` in [`ORG`].
    pub fn runner_set(&self, name: &str, min: i32, max: i32, policy: Option<PolicySpecCr>) -> AutoscalingRunnerSet {
        let mut ars = AutoscalingRunnerSet::new(
            name,
            AutoscalingRunnerSetSpec {
                github_config_url: self.fake.config_url(ORG),
                github_config_secret: GITHUB_SECRET.into(),
                min_runners: Some(min),
                max_runners: Some(max),
                template: PodTemplateSpec {
                    metadata: None,
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: "runner".into(),
                            image: Some("ghcr.io/actions/actions-runner:latest".into()),
                            command: Some(vec!["/home/runner/run.sh".into()]),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                },
                listener_template: Some(PodTemplateSpec {
                    metadata: None,
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: "listener".into(),
                            env: Some(vec![EnvVar {
                                name: "LOG_LEVEL".into(),
                                value: Some(self.listener_log_level.clone()),
                                value_from: None,
                            }]),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                }),
                policy,
                ..Default::default()
            },
        );
        ars.metadata.namespace = Some(RUNNER_NAMESPACE.into());
        ars
    }

    /// Creates `ars`.
    ///
    /// # Errors
    /// The API's refusal.
    pub async fn apply(&self, ars: &AutoscalingRunnerSet) -> anyhow::Result<AutoscalingRunnerSet> {
        let api: Api<AutoscalingRunnerSet> = Api::namespaced(self.client.clone(), RUNNER_NAMESPACE);
        Ok(api.create(&PostParams::default(), ars).await?)
    }

    /// Stops the controllers and the kubelet (listener processes are killed with their pods' tasks).
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.controller.take() {
            task.abort();
        }
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = &self.controller {
            task.abort();
        }
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Resident memory of a process, MiB, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rss {
    /// VmRSS.
    pub total: f64,
    /// VmHWM: the peak so far.
    pub peak: f64,
    /// RssAnon.
    pub anon: f64,
    /// RssFile.
    pub file: f64,
}

impl Rss {
    /// The RSS of `pid` (zeros when it cannot be read).
    pub fn of(pid: u32) -> Rss {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
                .map_or(0.0, |kib| kib / 1024.0)
        };
        Rss { total: field("VmRSS:"), peak: field("VmHWM:"), anon: field("RssAnon:"), file: field("RssFile:") }
    }
}

/// The direct children of process `parent`: PID and command line (arguments joined by spaces).
pub fn child_processes(parent: u32) -> Vec<(u32, String)> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let ppid = stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid == Some(parent) {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            children.push((pid, String::from_utf8_lossy(&cmdline).replace('\0', " ").trim_end().to_string()));
        }
    }
    children
}

/// A job for scale sets with all of `labels`, taking `duration_ms` (before the kubelet's time scale).
pub fn job(labels: &[&str], duration_ms: u64) -> JobSpec {
    JobSpec {
        labels: labels.iter().map(|l| l.to_string()).collect(),
        repository: "acme/app".into(),
        workflow_ref: "acme/app/.github/workflows/ci.yml@refs/heads/main".into(),
        event_name: "push".into(),
        display_name: "build".into(),
        workflow_run_id: 0,
        duration_ms,
    }
}

/// Polls `check` every 100 ms until it returns Ok; panics with its last error after `timeout`.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match check().await {
            Ok(()) => return,
            Err(state) if tokio::time::Instant::now() > deadline => panic!("timed out waiting for {what}: {state}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Ok when `ok`, else the message (for [`eventually`] checks).
pub fn ensure(ok: bool, message: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(message()) }
}
