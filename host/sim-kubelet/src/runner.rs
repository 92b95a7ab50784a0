//! The runner a runner pod runs, against the Actions service's simulated-runner API: register with the JIT
//! config (once), wait for a job, work for its duration, report the result.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::json;

/// How the runner process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunnerOutcome {
    /// It ran its job and reported `result`.
    Completed {
        /// The job's `runnerRequestId`.
        job: i64,
        /// The reported result.
        result: String,
    },
    /// The service removed the runner before it got a job.
    Removed,
    /// Registration was refused (a spent or unknown JIT config).
    Refused(String),
    /// The service could not be reached or answered nonsense.
    Broken(String),
}

impl RunnerOutcome {
    /// The container's exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunnerOutcome::Completed { .. } | RunnerOutcome::Removed => 0,
            RunnerOutcome::Refused(_) | RunnerOutcome::Broken(_) => 1,
        }
    }
}

#[derive(Deserialize)]
struct Registered {
    id: i64,
    token: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssignedJob {
    runner_request_id: i64,
    #[serde(default)]
    duration_ms: u64,
}

/// Plays one runner to its end. `time_scale` multiplies job durations (0.01 = a hundred times faster).
pub(crate) async fn play(
    http: &reqwest::Client,
    actions_url: &str,
    jit_config: &str,
    time_scale: f64,
) -> RunnerOutcome {
    let base = actions_url.trim_end_matches('/');
    let response =
        match http.post(format!("{base}/_runner/register")).json(&json!({"jitConfig": jit_config})).send().await {
            Ok(r) => r,
            Err(e) => return RunnerOutcome::Broken(e.to_string()),
        };
    if !response.status().is_success() {
        let status = response.status();
        return RunnerOutcome::Refused(format!("{status}: {}", response.text().await.unwrap_or_default()));
    }
    let Ok(registered) = response.json::<Registered>().await else {
        return RunnerOutcome::Broken("registration answered nonsense".into());
    };
    loop {
        let poll = http
            .get(format!("{base}/_runner/{}/job?waitMs=5000", registered.id))
            .bearer_auth(&registered.token)
            .send()
            .await;
        let response = match poll {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "runner poll failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        match response.status() {
            StatusCode::NO_CONTENT => continue,
            StatusCode::UNAUTHORIZED | StatusCode::NOT_FOUND => return RunnerOutcome::Removed,
            s if s.is_success() => {
                let Ok(job) = response.json::<AssignedJob>().await else {
                    return RunnerOutcome::Broken("job answered nonsense".into());
                };
                let work = Duration::from_millis((job.duration_ms as f64 * time_scale.max(0.0)) as u64);
                tokio::time::sleep(work).await;
                let result = "succeeded".to_string();
                let done = http
                    .post(format!("{base}/_runner/{}/complete", registered.id))
                    .bearer_auth(&registered.token)
                    .json(&json!({"result": result}))
                    .send()
                    .await;
                return match done {
                    Ok(r) if r.status().is_success() => RunnerOutcome::Completed { job: job.runner_request_id, result },
                    Ok(r) => RunnerOutcome::Broken(format!("completion refused: {}", r.status())),
                    Err(e) => RunnerOutcome::Broken(e.to_string()),
                };
            }
            other => {
                tracing::debug!(status = %other, "runner poll refused; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
