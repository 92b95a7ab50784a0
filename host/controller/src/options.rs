//! The controller manager's settings: ARC's flags (§1.11 of the reference) and environment variables.

use std::time::Duration;

use clap::{ArgAction, Args, ValueEnum};

/// Flags and environment of `gha-autoscaler controller`.
#[derive(Debug, Clone, Args)]
pub struct ControllerOptions {
    /// Namespace the controller runs in; listeners and their secrets live here.
    #[arg(long, env = "CONTROLLER_MANAGER_POD_NAMESPACE", default_value = "arc-systems")]
    pub controller_namespace: String,
    /// Image of listener pods (the controller's own image).
    #[arg(
        long,
        env = "CONTROLLER_MANAGER_CONTAINER_IMAGE",
        default_value = "ghcr.io/gha-autoscaler/gha-autoscaler:latest"
    )]
    pub image: String,
    /// Command of the listener container (ARC's `LISTENER_ENTRYPOINT`).
    #[arg(long, env = "LISTENER_ENTRYPOINT", default_value = "/gha-autoscaler")]
    pub listener_entrypoint: String,
    /// Accepted for compatibility with ARC's chart; scale-set mode is the only mode.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub auto_scaling_runner_set_only: bool,
    /// Run the controllers only while holding a Lease (needed with more than one replica).
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", default_value_t = false)]
    pub enable_leader_election: bool,
    /// Name of the Lease.
    #[arg(long, default_value = "gha-autoscaler-controller")]
    pub leader_election_id: String,
    /// Watch only this namespace (plus the controller namespace).
    #[arg(long, env = "WATCH_SINGLE_NAMESPACE")]
    pub watch_single_namespace: Option<String>,
    /// Parallel EphemeralRunner reconciles.
    #[arg(long, default_value_t = 2)]
    pub runner_max_concurrent_reconciles: u16,
    /// Metrics address passed to listeners (`0` or empty disables).
    #[arg(long, default_value = ":8080")]
    pub listener_metrics_addr: String,
    /// Metrics path of listeners.
    #[arg(long, default_value = "/metrics")]
    pub listener_metrics_endpoint: String,
    /// The controller's own metrics address (`0` disables).
    #[arg(long, default_value = ":8080")]
    pub metrics_addr: String,
    /// Health probes (`/healthz`, `/readyz`) address (`0` disables).
    #[arg(long = "health-probe-bind-address", default_value = ":8081")]
    pub health_probe_addr: String,
    /// Labels with these prefixes are not copied from the AutoscalingRunnerSet to what it creates.
    #[arg(long = "exclude-label-propagation-prefix")]
    pub exclude_label_propagation_prefixes: Vec<String>,
    /// Kubernetes client requests per second.
    #[arg(long = "k8s-client-rate-limiter-qps", default_value_t = 20.0)]
    pub kube_qps: f64,
    /// Kubernetes client burst.
    #[arg(long = "k8s-client-rate-limiter-burst", default_value_t = 30)]
    pub kube_burst: u32,
    /// Image pull secrets of listener pods.
    #[arg(long = "auto-scaler-image-pull-secrets")]
    pub listener_image_pull_secrets: Vec<String>,
    /// A runner pod whose container cannot start (image pull, config errors) fails after this.
    #[arg(long, value_parser = parse_duration, default_value = "5m")]
    pub runner_start_timeout: Duration,
    /// How often every object is reconciled even without changes.
    #[arg(long, value_parser = parse_duration, default_value = "1m")]
    pub sync_period: Duration,
    /// Log level pushed to listeners.
    #[arg(skip = String::from("info"))]
    pub listener_log_level: String,
    /// Log format pushed to listeners.
    #[arg(skip = String::from("text"))]
    pub listener_log_format: String,
    /// Kubernetes API URL written into listener configs (for listeners that run outside the cluster, as in
    /// `demo`); absent = listeners use their in-cluster config.
    #[arg(long, hide = true)]
    pub listener_kubernetes_api_url: Option<String>,
    /// Treat every GitHub host as GHES (also when `GITHUB_ACTIONS_FORCE_GHES` is set, whatever its value, as ARC).
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", default_value_t = false)]
    pub force_ghes: bool,
    /// ARC's Go profiler address: accepted, and a warning says there is none (the metrics endpoint has the
    /// figures).
    #[arg(long)]
    pub pprof_addr: Option<String>,
    /// How reconciles are retried after errors (ARC's `--workqueue-rate-limiter`).
    #[arg(long, value_enum, default_value_t = RetryLimiter::BucketRateLimiter)]
    pub workqueue_rate_limiter: RetryLimiter,
    /// ARC's `--update-strategy`: either way templates roll out in place and busy runners finish first.
    #[arg(long, value_enum, default_value_t = UpdateStrategy::Immediate)]
    pub update_strategy: UpdateStrategy,
    /// The build version ARS `app.kubernetes.io/version` labels are checked against.
    #[arg(skip = String::from(env!("CARGO_PKG_VERSION")))]
    pub build_version: String,
}

impl Default for ControllerOptions {
    fn default() -> Self {
        ControllerOptions {
            controller_namespace: "arc-systems".into(),
            image: "ghcr.io/gha-autoscaler/gha-autoscaler:latest".into(),
            listener_entrypoint: "/gha-autoscaler".into(),
            auto_scaling_runner_set_only: true,
            enable_leader_election: false,
            leader_election_id: "gha-autoscaler-controller".into(),
            watch_single_namespace: None,
            runner_max_concurrent_reconciles: 2,
            listener_metrics_addr: String::new(),
            listener_metrics_endpoint: "/metrics".into(),
            metrics_addr: "0".into(),
            health_probe_addr: "0".into(),
            exclude_label_propagation_prefixes: Vec::new(),
            kube_qps: 20.0,
            kube_burst: 30,
            listener_image_pull_secrets: Vec::new(),
            runner_start_timeout: Duration::from_secs(300),
            sync_period: Duration::from_secs(60),
            listener_log_level: "info".into(),
            listener_log_format: "text".into(),
            listener_kubernetes_api_url: None,
            force_ghes: false,
            pprof_addr: None,
            workqueue_rate_limiter: RetryLimiter::BucketRateLimiter,
            update_strategy: UpdateStrategy::Immediate,
            build_version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// Retries after failed reconciles (controller-runtime's workqueue rate limiters, by ARC's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RetryLimiter {
    /// Each object's own retry delay, and at most 10 retries a second overall (burst 100).
    #[value(name = "bucket_rate_limiter")]
    BucketRateLimiter,
    /// Each object's own retry delay only.
    #[value(name = "typed_rate_limiter")]
    TypedRateLimiter,
}

/// ARC's update strategies; ours rolls a changed template out in place under both (busy runners finish first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UpdateStrategy {
    /// ARC: replace the listener and runners at once.
    Immediate,
    /// ARC: wait for running jobs first.
    Eventual,
}

/// A Go duration (`1m30s`, `500ms`, `1.5h`, `2h45m`) or plain seconds (`90`).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let invalid = || format!("invalid duration {text:?} (Go syntax: 1m30s, 500ms, 2h)");
    if text.is_empty() {
        return Err(invalid());
    }
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let mut rest = text;
    let mut seconds = 0.0;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(invalid)?;
        let value: f64 = rest[..number_end].parse().map_err(|_| invalid())?;
        let unit_end =
            rest[number_end..].find(|c: char| c.is_ascii_digit() || c == '.').map_or(rest.len(), |i| i + number_end);
        let scale = match &rest[number_end..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(invalid()),
        };
        seconds += value * scale;
        rest = &rest[unit_end..];
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| invalid())
}

/// An address flag: `0` or empty disables; `:8080` means all interfaces.
pub fn bind_address(flag: &str) -> Option<String> {
    match flag.trim() {
        "" | "0" => None,
        addr if addr.starts_with(':') => Some(format!("0.0.0.0{addr}")),
        addr => Some(addr.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Command {
        #[command(flatten)]
        options: ControllerOptions,
    }

    #[test]
    fn bool_flags_take_go_style_values() {
        use clap::Parser;
        let parse = |args: &[&str]| Command::try_parse_from(std::iter::once("controller").chain(args.iter().copied()));
        let options = parse(&["--enable-leader-election=true", "--auto-scaling-runner-set-only"]).unwrap().options;
        assert!(options.enable_leader_election && options.auto_scaling_runner_set_only);
        let options = parse(&["--enable-leader-election", "--force-ghes=false"]).unwrap().options;
        assert!(options.enable_leader_election && !options.force_ghes);
        assert!(parse(&["--enable-leader-election=maybe"]).is_err());
    }

    #[test]
    fn durations_and_addresses_parse() {
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2h45m10s"), Ok(Duration::from_secs(9910)));
        for bad in ["1d", "m", "", "1m30", "-1s", "1.2.3s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(bind_address(":8080").as_deref(), Some("0.0.0.0:8080"));
        assert_eq!(bind_address("0"), None);
        assert_eq!(bind_address("127.0.0.1:9").as_deref(), Some("127.0.0.1:9"));
    }
}
