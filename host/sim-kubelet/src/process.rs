//! Containers that run as real local processes: the command is mapped to a local binary, env values are
//! resolved (literal or from Secrets), and Secret volumes are written to a private directory whose path replaces
//! the mount path in env values and arguments. When the pod's task is aborted (pod deleted) the process gets
//! SIGTERM and its grace period, as a kubelet gives it, then SIGKILL.

use std::path::PathBuf;

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Pod, Secret, ServiceAccount};
use kube::api::PostParams;
use kube::{Api, Client, ResourceExt};

use crate::kubelet::{KubeletOptions, ServiceAccountAccess};

/// A process to run for a pod.
pub(crate) struct ProcessSpec {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// The pod's termination grace period (capped).
    grace: std::time::Duration,
    /// The container log file, if logs are kept.
    log_file: Option<PathBuf>,
    /// Holds the mounted files while the process runs.
    _volumes: tempfile::TempDir,
}

/// Longest grace period a terminated process gets here.
const MAX_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// A running process; dropping it terminates the process as a kubelet does.
struct Running {
    child: Option<tokio::process::Child>,
    grace: std::time::Duration,
}

impl Running {
    /// Waits for the process to end; it is then no longer terminated on drop.
    async fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        let Some(child) = self.child.as_mut() else { return Err(std::io::ErrorKind::NotFound.into()) };
        let status = child.wait().await;
        self.child = None;
        status
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let (Some(pid), Ok(runtime)) = (child.id(), tokio::runtime::Handle::try_current()) else { return };
        let Ok(pid) = i32::try_from(pid) else { return };
        // SAFETY: signals a child process this struct owns and has not reaped.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let grace = self.grace;
        // The child is killed on drop: after the grace period, or when the runtime stops first.
        runtime.spawn(async move {
            let _ = tokio::time::timeout(grace, child.wait()).await;
        });
    }
}

impl ProcessSpec {
    /// Runs the process to its end; its exit code (or 1 when it could not start, 137 when killed).
    pub(crate) async fn run(self) -> i32 {
        let mut command = tokio::process::Command::new(&self.program);
        command.args(&self.args).envs(self.env.iter().cloned()).kill_on_drop(true);
        if let Some(path) = &self.log_file {
            let log = std::fs::OpenOptions::new().create(true).append(true).open(path);
            match log.and_then(|file| Ok((file.try_clone()?, file))) {
                Ok((stdout, stderr)) => {
                    command.stdout(stdout).stderr(stderr);
                }
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot open the container log"),
            }
        }
        // If this process dies without stopping its pods (SIGKILL), the processes still get their SIGTERM.
        #[cfg(target_os = "linux")]
        // SAFETY: prctl is async-signal-safe; the closure touches nothing else between fork and exec.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = command.spawn();
        match child {
            Ok(child) => {
                let mut running = Running { child: Some(child), grace: self.grace };
                match running.wait().await {
                    Ok(status) => status.code().unwrap_or(137),
                    Err(_) => 1,
                }
            }
            Err(e) => {
                tracing::warn!(program = %self.program.display(), error = %e, "cannot start the container process");
                1
            }
        }
    }
}

async fn secret_data(client: &Client, namespace: &str, name: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = secrets.get(name).await.map_err(|e| format!("secret {name}: {e}"))?;
    let mut data: Vec<(String, Vec<u8>)> = secret.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect();
    data.extend(secret.string_data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_bytes())));
    Ok(data)
}

/// The process for a pod's first container if its command maps to a local binary; None otherwise.
pub(crate) async fn spec_for(
    client: &Client,
    pod: &Pod,
    options: &KubeletOptions,
) -> Option<Result<ProcessSpec, String>> {
    let spec = pod.spec.as_ref()?;
    let container = spec.containers.first()?;
    let command = container.command.clone().unwrap_or_default();
    let name = command.first()?.rsplit('/').next()?.to_string();
    let program = options.binaries.get(&name)?.clone();
    Some(build(client, pod, program, command, container, options).await)
}

/// A kubeconfig for the pod's ServiceAccount, with a token from the TokenRequest API (what a kubelet projects
/// into `/var/run/secrets/kubernetes.io/serviceaccount`); None when the pod opts out of the token.
async fn service_account_kubeconfig(
    client: &Client,
    pod: &Pod,
    access: &ServiceAccountAccess,
) -> Result<Option<String>, String> {
    let spec = pod.spec.as_ref();
    if spec.and_then(|s| s.automount_service_account_token) == Some(false) {
        return Ok(None);
    }
    let account = spec.and_then(|s| s.service_account_name.clone()).unwrap_or_else(|| "default".into());
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
    let request = accounts
        .create_token_request(&account, &PostParams::default(), &TokenRequest::default())
        .await
        .map_err(|e| format!("token of ServiceAccount {account}: {e}"))?;
    let token = request.status.map(|s| s.token).unwrap_or_default();
    Ok(Some(format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: in-cluster\n  cluster:\n    server: {}\n    \
         certificate-authority: {}\nusers:\n- name: {account}\n  user:\n    token: {token}\ncontexts:\n- name: \
         in-cluster\n  context:\n    cluster: in-cluster\n    user: {account}\ncurrent-context: in-cluster\n",
        access.server,
        access.ca_file.display()
    )))
}

/// The value of a downward-API `fieldRef` (the fields a kubelet resolves from the pod itself).
fn downward(pod: &Pod, path: &str) -> String {
    let spec = pod.spec.as_ref();
    match path {
        "metadata.name" => pod.name_any(),
        "metadata.namespace" => pod.namespace().unwrap_or_default(),
        "metadata.uid" => pod.uid().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()).unwrap_or_default(),
        "status.podIP" => "10.0.0.1".into(),
        _ => String::new(),
    }
}

async fn build(
    client: &Client,
    pod: &Pod,
    program: PathBuf,
    command: Vec<String>,
    container: &k8s_openapi::api::core::v1::Container,
    options: &KubeletOptions,
) -> Result<ProcessSpec, String> {
    let service_accounts = options.service_accounts.as_ref();
    let namespace = pod.namespace().unwrap_or_default();
    let volumes = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut mounts: Vec<(String, String)> = Vec::new();
    let pod_volumes = pod.spec.as_ref().and_then(|s| s.volumes.clone()).unwrap_or_default();
    for mount in container.volume_mounts.iter().flatten() {
        let Some(secret) = pod_volumes.iter().find(|v| v.name == mount.name).and_then(|v| v.secret.as_ref()) else {
            continue;
        };
        let secret_name = secret.secret_name.clone().unwrap_or_default();
        let dir = volumes.path().join(&mount.name);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let data = match secret_data(client, &namespace, &secret_name).await {
            // An optional Secret that does not exist mounts as an empty directory.
            Err(_) if secret.optional == Some(true) => Vec::new(),
            other => other?,
        };
        for (key, bytes) in data {
            std::fs::write(dir.join(&key), bytes).map_err(|e| e.to_string())?;
        }
        mounts.push((mount.mount_path.trim_end_matches('/').to_string(), dir.display().to_string()));
    }
    let remap = |value: &str| -> String {
        mounts.iter().fold(value.to_string(), |v, (from, to)| {
            if v.starts_with(from.as_str()) { v.replacen(from.as_str(), to, 1) } else { v }
        })
    };
    // A container's hostname is its pod's name.
    let mut env = vec![("HOSTNAME".to_string(), pod.name_any())];
    for var in container.env.iter().flatten() {
        let source = var.value_from.as_ref();
        let value = match (
            &var.value,
            source.and_then(|v| v.secret_key_ref.as_ref()),
            source.and_then(|v| v.field_ref.as_ref()),
        ) {
            (Some(value), _, _) => value.clone(),
            (None, Some(key_ref), _) => {
                let data = secret_data(client, &namespace, &key_ref.name).await?;
                let bytes = data.into_iter().find(|(k, _)| *k == key_ref.key).map(|(_, v)| v).unwrap_or_default();
                String::from_utf8_lossy(&bytes).into_owned()
            }
            (None, None, Some(field)) => downward(pod, &field.field_path),
            (None, None, None) => String::new(),
        };
        env.push((var.name.clone(), remap(&value)));
    }
    if let Some(access) = service_accounts
        && let Some(kubeconfig) = service_account_kubeconfig(client, pod, access).await?
    {
        let path = volumes.path().join("service-account.kubeconfig");
        std::fs::write(&path, kubeconfig).map_err(|e| e.to_string())?;
        env.push(("KUBECONFIG".into(), path.display().to_string()));
    }
    let args: Vec<String> = command[1..].iter().chain(container.args.iter().flatten()).map(|a| remap(a)).collect();
    let grace_seconds = pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds).unwrap_or(30);
    let grace = std::time::Duration::from_secs(u64::try_from(grace_seconds).unwrap_or(0)).min(MAX_GRACE);
    let log_file = options
        .log_dir
        .as_ref()
        .map(|dir| dir.join(format!("{}_{}.log", pod.namespace().unwrap_or_default(), pod.name_any())));
    Ok(ProcessSpec { program, args, env, grace, log_file, _volumes: volumes })
}
