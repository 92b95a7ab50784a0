//! `gha-autoscaler demo`: one scale set, applied as an AutoscalingRunnerSet, runs a job trace through the real
//! controller, listener process, policy and simulated runners; the run is sampled, summarised and charted.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use gha_actions_fake::JobState;
use gha_crds::{
    AutoscalingRunnerSet, EphemeralRunner, EphemeralRunnerSet, PolicyConfigMapRef, PolicySourceSpec, PolicySpecCr,
};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{ListParams, PostParams};

use crate::trace_feed::TraceFeed;
use crate::{CONTROLLER_NAMESPACE, RUNNER_NAMESPACE, Rss, Sandbox, SandboxOptions};
use gha_simulator::chart::{self, Series};
use gha_simulator::trace::TraceJob;
use gha_simulator::{Row, percentile, side_by_side};

/// The scale set's name (and the label jobs without labels ask for).
pub const SCALE_SET: &str = "demo";

/// Where the policy comes from.
#[derive(Debug, Clone)]
pub enum DemoPolicy {
    /// A built-in policy by name.
    BuiltIn(String),
    /// A component file, shipped to the cluster in a ConfigMap as users do.
    File(PathBuf),
}

impl DemoPolicy {
    /// `NAME` or a path ending in `.wasm`.
    pub fn parse(text: &str) -> Self {
        if text.ends_with(".wasm") { DemoPolicy::File(text.into()) } else { DemoPolicy::BuiltIn(text.into()) }
    }

    /// Display name.
    pub fn label(&self) -> String {
        match self {
            DemoPolicy::BuiltIn(name) => name.clone(),
            DemoPolicy::File(path) => path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        }
    }
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// One line, redrawn (a terminal).
    Live,
    /// A plain line every few seconds (logs, CI).
    Lines,
    /// Nothing.
    Quiet,
}

/// A demo run's settings.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The policy.
    pub policy: DemoPolicy,
    /// Its config.
    pub policy_config: Option<serde_json::Value>,
    /// The jobs.
    pub trace: Vec<TraceJob>,
    /// Wall seconds per trace second.
    pub time_scale: f64,
    /// minRunners.
    pub min_runners: i32,
    /// maxRunners.
    pub max_runners: i32,
    /// Pod start-up time, trace seconds.
    pub pod_start_seconds: f64,
    /// The `gha-autoscaler` binary (listener pods run it).
    pub binary: PathBuf,
    /// Where to write the SVG chart.
    pub chart: Option<PathBuf>,
    /// Progress display.
    pub progress: Progress,
    /// Log level of the listener process.
    pub listener_log_level: String,
}

/// One sample of the run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// Trace seconds since the first job.
    pub t: f64,
    /// Jobs waiting for a runner.
    pub queued: usize,
    /// Jobs running.
    pub running: usize,
    /// The listener's desired runners (ERS replicas).
    pub desired: usize,
    /// EphemeralRunners.
    pub runners: usize,
    /// Runners up without a job.
    pub idle: usize,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct DemoReport {
    /// Policy label.
    pub policy: String,
    /// Jobs in the trace.
    pub jobs: usize,
    /// Jobs that finished successfully.
    pub completed: usize,
    /// Queue wait (queued → runner assigned), trace seconds: p50, p95, max.
    pub wait_p50: f64,
    /// p95.
    pub wait_p95: f64,
    /// max.
    pub wait_max: f64,
    /// Most runners at once.
    pub peak_runners: usize,
    /// Runner-minutes without a job (trace time).
    pub idle_runner_minutes: f64,
    /// Runner-minutes with a job (trace time).
    pub busy_runner_minutes: f64,
    /// Policy hook calls in the listener.
    pub policy_calls: u64,
    /// Of which answered by the fallback, in the listener or the controller.
    pub policy_fallbacks: u64,
    /// Runners left beyond the minimum, or registrations without a runner, at the end.
    pub leaked: usize,
    /// The set is back at its minimum at the end.
    pub back_to_min: bool,
    /// Wall seconds of the run (setup included).
    pub wall_seconds: f64,
    /// Peak RSS of this process and its children (the listener), MiB.
    pub peak_rss_mib: f64,
    /// Samples over time.
    pub samples: Vec<Sample>,
    /// Resource use when the run was ready, when half the jobs had completed, and at the end.
    pub checkpoints: Vec<Checkpoint>,
}

/// Resource use at one moment of a run (what a soak test watches for growth).
#[derive(Debug, Clone, Copy, Default)]
pub struct Checkpoint {
    /// Jobs completed so far.
    pub completed: usize,
    /// RSS of this process and its children (the listener), MiB.
    pub rss_mib: f64,
    /// Message sessions open on the Actions service.
    pub sessions: usize,
    /// Watches the Kubernetes API is serving (known on the in-memory API only).
    pub watches: Option<usize>,
    /// Tasks alive in this process's runtime (controller, servers, kubelet).
    pub tasks: usize,
}

fn checkpoint(sandbox: &Sandbox) -> Checkpoint {
    let completed = sandbox.fake.with_state(|s| s.jobs().iter().filter(|j| j.state == JobState::Completed).count());
    Checkpoint {
        completed,
        rss_mib: process_tree_rss(),
        sessions: sandbox.fake.with_state(|s| s.sessions().len()),
        watches: sandbox.backend.mem().map(|kube| kube.with_store(|s| s.open_watches())),
        tasks: tokio::runtime::Handle::current().metrics().num_alive_tasks(),
    }
}

impl DemoReport {
    /// What went wrong; empty = a good run.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.completed != self.jobs {
            problems.push(format!("{} of {} jobs did not complete", self.jobs - self.completed, self.jobs));
        }
        if self.leaked > 0 {
            problems.push(format!("{} runners leaked", self.leaked));
        }
        if !self.back_to_min {
            problems.push("the scale set did not return to its minimum".into());
        }
        problems
    }
}

/// RSS of this process plus its direct children.
fn process_tree_rss() -> f64 {
    let me = std::process::id();
    Rss::of(me).total + crate::child_processes(me).iter().map(|(pid, _)| Rss::of(*pid).total).sum::<f64>()
}

/// Sums a counter's series in a Prometheus text exposition.
fn counter_sum(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

async fn policy_spec(sandbox: &Sandbox, options: &DemoOptions) -> anyhow::Result<PolicySpecCr> {
    let source = match &options.policy {
        DemoPolicy::BuiltIn(name) => PolicySourceSpec { built_in: Some(name.clone()), ..Default::default() },
        DemoPolicy::File(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let maps: Api<ConfigMap> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
            let map = ConfigMap {
                metadata: ObjectMeta { name: Some("demo-policy".into()), ..Default::default() },
                binary_data: Some([("policy.wasm".to_string(), ByteString(bytes))].into()),
                ..Default::default()
            };
            maps.create(&PostParams::default(), &map).await.context("creating the policy ConfigMap")?;
            PolicySourceSpec {
                config_map: Some(PolicyConfigMapRef { name: "demo-policy".into(), key: None }),
                ..Default::default()
            }
        }
    };
    Ok(PolicySpecCr { source, config: options.policy_config.clone(), ..Default::default() })
}

struct Probe {
    runner_sets: Api<EphemeralRunnerSet>,
    runners: Api<EphemeralRunner>,
    http: reqwest::Client,
    metrics_url: String,
    calls: u64,
    fallbacks: u64,
}

impl Probe {
    /// Exactly `min` EphemeralRunners (deleting ones included) and no more live registrations on GitHub.
    async fn settled(&self, sandbox: &Sandbox, min: usize) -> bool {
        let runners = self.runners.list(&ListParams::default()).await.map(|l| l.items.len()).unwrap_or(usize::MAX);
        let registered = sandbox.fake.with_state(|s| s.runners().iter().filter(|r| !r.finished).count());
        runners == min && registered <= min
    }

    async fn sample(&mut self, sandbox: &Sandbox, t: f64) -> Sample {
        let jobs = sandbox.fake.with_state(|s| s.jobs());
        let queued = jobs
            .iter()
            .filter(|j| matches!(j.state, JobState::Queued | JobState::Available | JobState::Assigned))
            .count();
        let running = jobs.iter().filter(|j| j.state == JobState::Running).count();
        let desired =
            self.runner_sets.get(SCALE_SET).await.ok().and_then(|e| e.spec.replicas).unwrap_or(0).max(0) as usize;
        let runners: Vec<EphemeralRunner> = self
            .runners
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.metadata.deletion_timestamp.is_none())
            .collect();
        let idle = runners
            .iter()
            .filter(|r| {
                let status = r.status.clone().unwrap_or_default();
                status.phase.as_deref() == Some("Running") && status.job_id.is_none()
            })
            .count();
        if let Ok(response) = self.http.get(&self.metrics_url).send().await
            && let Ok(text) = response.text().await
        {
            self.calls = self.calls.max(counter_sum(&text, "gha_policy_calls_total"));
            self.fallbacks = self.fallbacks.max(counter_sum(&text, "gha_policy_fallbacks_total"));
        }
        Sample { t, queued, running, desired, runners: runners.len(), idle }
    }
}

fn show(progress: Progress, policy: &str, sample: &Sample, last_line: &mut Instant) {
    let line = format!(
        "[{:5.1} min] queued {:3} | running {:3} | desired {:3} | runners {:3} (idle {:3}) | policy {policy}",
        sample.t / 60.0,
        sample.queued,
        sample.running,
        sample.desired,
        sample.runners,
        sample.idle
    );
    match progress {
        Progress::Live => {
            print!("\r{line}");
            let _ = std::io::stdout().flush();
        }
        Progress::Lines if last_line.elapsed() >= Duration::from_secs(3) => {
            println!("{line}");
            *last_line = Instant::now();
        }
        _ => {}
    }
}

/// Runs the demo once.
///
/// # Errors
/// The sandbox cannot start or the scale set never becomes ready.
pub async fn run(options: &DemoOptions) -> anyhow::Result<DemoReport> {
    let wall = Instant::now();
    let port = gha_real_kube::free_port()?;
    let mut sandbox_options = SandboxOptions {
        listener_binary: Some(options.binary.clone()),
        time_scale: options.time_scale,
        pod_start_delay: Duration::from_secs_f64(options.pod_start_seconds * options.time_scale),
        listener_log_level: options.listener_log_level.clone(),
        ..SandboxOptions::default()
    };
    sandbox_options.controller.listener_metrics_addr = format!("127.0.0.1:{port}");
    let sandbox = Sandbox::start(sandbox_options).await?;
    let policy = policy_spec(&sandbox, options).await?;
    sandbox.apply(&sandbox.runner_set(SCALE_SET, options.min_runners, options.max_runners, Some(policy))).await?;
    wait_until_ready(&sandbox).await?;

    let mut probe = Probe {
        runner_sets: Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE),
        runners: Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE),
        http: reqwest::Client::builder().timeout(Duration::from_secs(1)).build()?,
        metrics_url: format!("http://127.0.0.1:{port}/metrics"),
        calls: 0,
        fallbacks: 0,
    };
    let label = options.policy.label();
    let start = Instant::now();
    let trace_time = |now: Instant| now.duration_since(start).as_secs_f64() / options.time_scale;
    let mut report = DemoReport { policy: label.clone(), jobs: options.trace.len(), ..DemoReport::default() };
    report.checkpoints.push(checkpoint(&sandbox));
    let mut last_line = Instant::now() - Duration::from_secs(60);
    let tick = Duration::from_millis(200);
    let mut feed = TraceFeed::new(&options.trace, SCALE_SET).map_err(anyhow::Error::msg)?;
    let last_queued = feed.last_queued();
    let settle_deadline_after = Duration::from_secs(90);
    let mut all_done_at: Option<Instant> = None;
    loop {
        let t = trace_time(Instant::now());
        feed.feed(&sandbox.fake, t);
        let sample = probe.sample(&sandbox, t).await;
        if let Some(previous) = report.samples.last() {
            let minutes = (sample.t - previous.t) / 60.0;
            report.idle_runner_minutes += previous.idle as f64 * minutes;
            report.busy_runner_minutes += previous.running as f64 * minutes;
        }
        report.peak_runners = report.peak_runners.max(sample.runners);
        report.peak_rss_mib = report.peak_rss_mib.max(process_tree_rss());
        if report.checkpoints.len() == 1 && report.samples.len().is_multiple_of(25) {
            let now = checkpoint(&sandbox);
            if now.completed * 2 >= options.trace.len() {
                report.checkpoints.push(now);
            }
        }
        show(options.progress, &label, &sample, &mut last_line);
        report.samples.push(sample);
        let jobs_done = feed.finished();
        let min = options.min_runners.max(0) as usize;
        if jobs_done && t >= last_queued {
            let done_at = *all_done_at.get_or_insert_with(Instant::now);
            // Settled: at the minimum with no runner still being deleted and no registration left over.
            let at_min = sample.runners == min && sample.desired == min && probe.settled(&sandbox, min).await;
            if at_min || done_at.elapsed() > settle_deadline_after {
                break;
            }
        }
        tokio::time::sleep(tick).await;
    }
    if options.progress == Progress::Live {
        println!();
    }
    finish(&sandbox, options, &mut report, &probe).await;
    report.checkpoints.push(checkpoint(&sandbox));
    report.wall_seconds = wall.elapsed().as_secs_f64();
    if let Some(path) = &options.chart {
        let line = |name: &str, value: fn(&Sample) -> usize| Series {
            name: name.into(),
            points: report.samples.iter().map(|s| (s.t / 60.0, value(s) as f64)).collect(),
        };
        let series =
            [line("queued jobs", |s| s.queued), line("desired runners", |s| s.desired), line("runners", |s| s.runners)];
        chart::write_svg(path, &format!("gha-autoscaler demo — policy {label}"), &series)
            .map_err(|e| anyhow::anyhow!(e))?;
    }
    sandbox.stop().await;
    Ok(report)
}

async fn wait_until_ready(sandbox: &Sandbox) -> anyhow::Result<()> {
    let sets: Api<AutoscalingRunnerSet> = Api::namespaced(sandbox.client.clone(), RUNNER_NAMESPACE);
    let pods: Api<Pod> = Api::namespaced(sandbox.client.clone(), CONTROLLER_NAMESPACE);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ars = sets.get(SCALE_SET).await?;
        let listener_running = pods
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .any(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"));
        let sessions = sandbox.fake.with_state(|s| s.sessions().len());
        if listener_running && sessions > 0 {
            return Ok(());
        }
        let conditions = ars.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
        if let Some(invalid) = conditions
            .iter()
            .find(|c| c.type_ == "Ready" && matches!(c.reason.as_str(), "InvalidSpec" | "PolicyInvalid"))
        {
            anyhow::bail!("the scale set cannot start: {}", invalid.message);
        }
        if Instant::now() > deadline {
            let conditions = ars.status.and_then(|s| s.conditions).unwrap_or_default();
            let why: Vec<String> = conditions.iter().map(|c| format!("{}: {}", c.type_, c.message)).collect();
            anyhow::bail!("the scale set did not become ready in 60 s: {}", why.join("; "));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn finish(sandbox: &Sandbox, options: &DemoOptions, report: &mut DemoReport, probe: &Probe) {
    let jobs = sandbox.fake.with_state(|s| s.jobs());
    report.completed = jobs.iter().filter(|j| j.result.as_deref() == Some("succeeded")).count();
    let mut waits: Vec<f64> = jobs
        .iter()
        .filter_map(|j| Some((j.runner_assign_time? - j.queue_time).as_seconds_f64() / options.time_scale))
        .collect();
    waits.sort_by(f64::total_cmp);
    (report.wait_p50, report.wait_p95) = (percentile(&waits, 0.5), percentile(&waits, 0.95));
    report.wait_max = waits.last().copied().unwrap_or(0.0);
    let runners = probe.runners.list(&ListParams::default()).await.map(|l| l.items.len()).unwrap_or(usize::MAX);
    let registered = sandbox.fake.with_state(|s| s.runners().iter().filter(|r| !r.finished).count());
    let min = options.min_runners.max(0) as usize;
    report.back_to_min = runners == min;
    report.leaked = runners.saturating_sub(min) + registered.saturating_sub(runners);
    report.policy_calls = probe.calls;
    // The listener's fallbacks (decide, job events) and the controller's (pod mutation, scale-down selection).
    let controller_fallbacks = sandbox.context.as_ref().map_or(0, |context| {
        let metrics = context.policies.engine().metrics();
        ["mutate-runner-pod", "select"].iter().map(|hook| metrics.fallbacks(hook)).sum()
    });
    report.policy_fallbacks = probe.fallbacks + controller_fallbacks;
}

/// The reports side by side.
pub fn table(reports: &[DemoReport]) -> String {
    let rows: [Row<DemoReport>; 13] = [
        ("jobs completed", |r| format!("{} / {}", r.completed, r.jobs)),
        ("queue wait p50", |r| format!("{:.1} s", r.wait_p50)),
        ("queue wait p95", |r| format!("{:.1} s", r.wait_p95)),
        ("queue wait max", |r| format!("{:.1} s", r.wait_max)),
        ("peak runners", |r| r.peak_runners.to_string()),
        ("idle runner-minutes", |r| format!("{:.1}", r.idle_runner_minutes)),
        ("busy runner-minutes", |r| format!("{:.1}", r.busy_runner_minutes)),
        ("policy calls", |r| r.policy_calls.to_string()),
        ("policy fallbacks", |r| r.policy_fallbacks.to_string()),
        ("runners leaked", |r| r.leaked.to_string()),
        ("back to minimum", |r| if r.back_to_min { "yes".into() } else { "NO".into() }),
        ("wall clock", |r| format!("{:.1} s", r.wall_seconds)),
        ("peak RSS (process tree)", |r| format!("{:.0} MiB", r.peak_rss_mib)),
    ];
    side_by_side(reports, |r| r.policy.clone(), &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_summed_across_series() {
        let text = "# TYPE gha_policy_calls counter\ngha_policy_calls_total{hook=\"decide\",result=\"ok\"} 12\n\
                    gha_policy_calls_total{hook=\"select\",result=\"ok\"} 3\ngha_policy_calls_total_other 99\n";
        assert_eq!(counter_sum(text, "gha_policy_calls_total"), 15);
    }
}
