//! The main loop: first decision from the session statistics, then per message: statistics → acquire →
//! JobStarted (runner marked busy, pod labelled by the policy) → JobCompleted → ack → decide. A message is
//! acknowledged only once handled: when acquiring fails it is not, and the service delivers it again. An empty
//! poll decides again; a policy's requeue-after decides in the middle of a long poll, which stays open (the poll
//! owns a handle on the session, so deciding never drops it). A decision that changes nothing (the count and
//! drain of the last patch, no job event since) patches nothing: the EphemeralRunnerSet keeps both.

use std::future::Future;
use std::io::Write as _;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use gha_actions_client::model::{JobFields, Statistics};
use gha_actions_client::{Error as ClientError, JobMessage, Message, MessageSession};
use gha_policy_engine::types::{Bounds, JobEvent, JobPhase, JobStatistics, ScaleDecision, ScaleInput};
use gha_policy_engine::{DecisionRecord, JobEventBuffer, ScaleSetPolicy};
use rand::Rng;
use tokio::time::Instant;

use crate::cluster::Cluster;
use crate::metrics::ListenerMetrics;
use crate::patch_id::PatchSequence;
use crate::policy_state::StateStore;

/// Why the loop ended with an error.
#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    /// The scale set is gone on GitHub: the controller must re-register it.
    #[error("the runner scale set no longer exists: {0}")]
    ScaleSetGone(String),
}

/// What the loop keeps between iterations.
struct State {
    /// The session id last written to the EphemeralRunnerSet (a replaced session is recorded too).
    recorded_session: String,
    statistics: Statistics,
    previous: Option<(ScaleDecision, u64)>,
    /// The policy state restored from the store, for the first decision.
    restored: Vec<u8>,
    events_since: u32,
    /// Every job message since the previous decision, for the policy.
    job_events: JobEventBuffer,
    patches: PatchSequence,
    capacity: u32,
    decide_at: Option<Instant>,
    /// The count last patched onto the EphemeralRunnerSet, and whether that patch drained (patchID 0).
    patched: Option<(u32, bool)>,
}

/// A long poll in flight.
type Poll = Pin<Box<dyn Future<Output = Result<Option<Message>, ClientError>> + Send>>;

/// One scale set's listener loop.
pub struct Listener<C: Cluster> {
    session: Arc<MessageSession>,
    policy: Arc<ScaleSetPolicy>,
    cluster: C,
    metrics: Arc<ListenerMetrics>,
    bounds: Bounds,
    state: State,
    decision_log: Option<Box<dyn std::io::Write + Send + Sync>>,
    state_store: Option<StateStore>,
}

/// A job message as the policy sees it.
fn to_job_event(phase: JobPhase, fields: &JobFields) -> JobEvent {
    let unix_ms = |t: Option<chrono::DateTime<Utc>>| t.map(|t| t.timestamp_millis().max(0) as u64);
    JobEvent {
        phase,
        job_id: fields.runner_request_id.max(0) as u64,
        runner_name: fields.runner_name.clone().unwrap_or_default(),
        repository: format!("{}/{}", fields.owner_name, fields.repository_name),
        workflow_ref: fields.job_workflow_ref.clone(),
        workflow_run_id: fields.workflow_run_id.max(0) as u64,
        job_display_name: fields.job_display_name.clone(),
        event_name: fields.event_name.clone(),
        labels: fields.request_labels.clone(),
        queued_unix_ms: unix_ms(fields.queue_time),
        started_unix_ms: unix_ms(fields.runner_assign_time),
        finished_unix_ms: unix_ms(fields.finish_time),
        conclusion: fields.result.clone(),
        attributes: Vec::new(),
    }
}

fn to_job_statistics(s: &Statistics) -> JobStatistics {
    JobStatistics {
        available_jobs: s.total_available_jobs,
        acquired_jobs: s.total_acquired_jobs,
        assigned_jobs: s.total_assigned_jobs,
        running_jobs: s.total_running_jobs,
        registered_runners: s.total_registered_runners,
        busy_runners: s.total_busy_runners,
        idle_runners: s.total_idle_runners,
    }
}

/// Exponential backoff with jitter for transient errors, capped at 30 s.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(500).saturating_mul(1 << attempt.min(6)).min(Duration::from_secs(30));
    base.mul_f64(rand::rng().random_range(0.5..=1.0))
}

impl<C: Cluster> Listener<C> {
    /// A listener over an open session.
    pub fn new(
        session: MessageSession,
        policy: Arc<ScaleSetPolicy>,
        cluster: C,
        metrics: Arc<ListenerMetrics>,
        bounds: Bounds,
    ) -> Self {
        let statistics = session.initial_statistics().unwrap_or_default();
        Listener {
            session: Arc::new(session),
            policy,
            cluster,
            metrics,
            bounds,
            decision_log: None,
            state_store: None,
            state: State {
                recorded_session: String::new(),
                statistics,
                previous: None,
                restored: Vec::new(),
                events_since: 0,
                job_events: JobEventBuffer::default(),
                patches: PatchSequence::default(),
                capacity: bounds.max_runners,
                decide_at: None,
                patched: None,
            },
        }
    }

    /// Writes every decision (input, module sha256, output, shadow divergence) as a JSON line to `log`.
    pub fn with_decision_log(mut self, log: Box<dyn std::io::Write + Send + Sync>) -> Self {
        self.decision_log = Some(log);
        self
    }

    /// Keeps the policy's state in `store`: restored at start, written as it changes and at shutdown.
    pub fn with_state_store(mut self, store: StateStore) -> Self {
        self.state_store = Some(store);
        self
    }

    /// The last decision's state, when it still has to be written, and from when it may be.
    fn state_write_at(&self) -> Option<Instant> {
        let (store, (decision, _)) = (self.state_store.as_ref()?, self.state.previous.as_ref()?);
        store.next_write(&decision.state).map(tokio::time::Instant::from_std)
    }

    /// Writes the last decision's state if it changed (`force`: even within the write interval).
    async fn save_state(&mut self, force: bool) {
        let (Some(store), Some((decision, _))) = (self.state_store.as_mut(), self.state.previous.as_ref()) else {
            return;
        };
        if force || store.due(&decision.state) {
            store.save(&decision.state).await;
        }
    }

    /// Runs until `shutdown` resolves (then the session is deleted) or the scale set is gone.
    ///
    /// # Errors
    /// [`LoopError::ScaleSetGone`].
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), LoopError> {
        self.metrics.bounds(self.bounds.min_runners, self.bounds.max_runners);
        self.metrics.statistics(&self.state.statistics);
        if let Some(store) = self.state_store.as_mut() {
            self.state.restored = store.load().await.unwrap_or_default();
        }
        self.decide().await;
        tokio::pin!(shutdown);
        let mut failures = 0;
        let mut in_flight: Option<Poll> = None;
        loop {
            let decide_at = self.state.decide_at;
            let write_at = self.state_write_at();
            let poll = in_flight.get_or_insert_with(|| {
                let (session, capacity) = (self.session.clone(), self.state.capacity);
                Box::pin(async move { session.get_message(capacity).await })
            });
            let polled = tokio::select! {
                _ = &mut shutdown => break,
                _ = async { tokio::time::sleep_until(decide_at.expect("guarded")).await }, if decide_at.is_some() => {
                    self.decide().await;
                    continue;
                }
                _ = async { tokio::time::sleep_until(write_at.expect("guarded")).await }, if write_at.is_some() => {
                    self.save_state(false).await;
                    continue;
                }
                polled = poll => polled,
            };
            in_flight = None;
            // The session that delivered the message (a poll may have replaced a dropped one).
            let delivered_by = self.session.id();
            self.record_session().await;
            let handled = match polled {
                Ok(None) => {
                    self.decide().await;
                    Ok(())
                }
                // The message in hand is finished even if shutdown is requested meanwhile.
                Ok(Some(message)) => self.handle(message, &delivered_by).await,
                Err(e) => Err(e),
            };
            match handled {
                Ok(()) => failures = 0,
                Err(ClientError::ScaleSetNotFound(why)) => return Err(LoopError::ScaleSetGone(why)),
                Err(e) => {
                    let wait = backoff(failures);
                    failures += 1;
                    tracing::warn!(error = %e, ?wait, "polling for messages failed; retrying");
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
        drop(in_flight);
        self.save_state(true).await;
        match Arc::try_unwrap(self.session).map(MessageSession::close) {
            Ok(closing) => {
                if let Err(e) = closing.await {
                    tracing::warn!(error = %e, "could not delete the message session");
                }
            }
            Err(_) => tracing::warn!("the message session is still in use; not deleting it"),
        }
        Ok(())
    }

    /// On a new session (the first, or one replacing a dropped session): its statistics are the latest (jobs
    /// assigned while no session existed reach no message), and it is written on the EphemeralRunnerSet with its
    /// owner, so that a successor can tell a session it may take over from one a live listener holds.
    async fn record_session(&mut self) {
        let id = self.session.id();
        if id == self.state.recorded_session {
            return;
        }
        if let Some(statistics) = self.session.initial_statistics().filter(|_| !self.state.recorded_session.is_empty())
        {
            self.state.statistics = statistics;
            self.metrics.statistics(&statistics);
        }
        if let Err(e) = self.cluster.record_session(&id, self.session.owner()).await {
            tracing::warn!(error = %e, "could not record the message session for a successor");
        }
        self.state.recorded_session = id;
    }

    /// Acts on one message and acknowledges it.
    ///
    /// # Errors
    /// Acquiring its available jobs failed: nothing of it is acted on or acknowledged, so it comes again.
    async fn handle(&mut self, message: Message, delivered_by: &str) -> Result<(), ClientError> {
        if let Some(statistics) = message.statistics {
            self.state.statistics = statistics;
            self.metrics.statistics(&statistics);
        }
        let available: Vec<i64> = message
            .jobs
            .iter()
            .filter_map(|j| matches!(j, JobMessage::Available(_)).then_some(j.fields().runner_request_id))
            .collect();
        if !available.is_empty()
            && let Err(e) = self.session.acquire_jobs(&available).await
        {
            tracing::warn!(jobs = available.len(), error = %e, "could not acquire jobs; the message will come again");
            return Err(e);
        }
        self.metrics.undecodable(message.undecodable);
        for job in &message.jobs {
            let (phase, fields) = match job {
                JobMessage::Available(fields) => (JobPhase::Available, fields),
                JobMessage::Assigned(fields) => (JobPhase::Assigned, fields),
                JobMessage::Started(fields) => (JobPhase::Started, fields),
                JobMessage::Completed(fields) => (JobPhase::Completed, fields),
            };
            let event = to_job_event(phase, fields);
            match phase {
                JobPhase::Started => {
                    self.state.events_since += 1;
                    self.metrics.job_started(fields);
                    if let Err(e) = self.cluster.job_started(&event.runner_name, fields).await {
                        tracing::warn!(runner = event.runner_name, error = %e, "could not mark the runner busy");
                    }
                    self.label_runner_pod(&event).await;
                }
                JobPhase::Completed => {
                    self.state.events_since += 1;
                    self.metrics.job_completed(fields);
                    self.label_runner_pod(&event).await;
                }
                JobPhase::Available | JobPhase::Assigned => {}
            }
            self.state.job_events.push(&event);
        }
        self.session.acknowledge(message.id, delivered_by).await;
        self.decide().await;
        Ok(())
    }

    /// Labels the pod of the runner a job started or completed on, as the policy's job-event hook says.
    async fn label_runner_pod(&self, event: &JobEvent) {
        let runner = &event.runner_name;
        if runner.is_empty() {
            return;
        }
        match self.policy.on_job_event(event) {
            Ok(decided) => {
                if let Err(e) = self.cluster.label_runner_pod(runner, &decided.value).await {
                    tracing::warn!(runner, error = %e, "could not label the runner pod");
                }
            }
            Err(e) => tracing::warn!(runner, error = %e, "the policy's job-event hook failed"),
        }
    }

    /// Asks the policy and patches the EphemeralRunnerSet.
    async fn decide(&mut self) {
        let now = Utc::now().timestamp_millis().max(0) as u64;
        let runners = self.cluster.runner_counts().await.unwrap_or_else(|e| {
            tracing::debug!(error = %e, "runner counts unavailable; deciding without them");
            Default::default()
        });
        let (previous, state) = match &self.state.previous {
            Some((decision, at)) => (Some(decision.to_previous(*at, self.bounds)), decision.state.clone()),
            None => (None, self.state.restored.clone()),
        };
        let mut input = ScaleInput {
            now_unix_ms: now,
            statistics: to_job_statistics(&self.state.statistics),
            runners,
            bounds: self.bounds,
            previous,
            job_events_since_previous: self.state.events_since,
            job_events: Default::default(),
            job_events_dropped: 0,
            state,
            attributes: Vec::new(),
        };
        self.state.job_events.drain_into(&mut input);
        let decided = match self.policy.decide(&input) {
            Ok(decided) => decided,
            Err(e) => {
                tracing::error!(error = %e, "the policy failed and its failure policy is Fail: not scaling");
                self.state.decide_at = Some(Instant::now() + Duration::from_secs(10));
                return;
            }
        };
        if let Some(log) = self.decision_log.as_mut() {
            let record = DecisionRecord::new(&self.policy, &self.policy.manifest().sha256, &input, &decided);
            // One write per line: a line written in pieces can interleave with another writer's output.
            let written = serde_json::to_string(&record).map_err(std::io::Error::other).and_then(|line| {
                log.write_all(format!("{line}\n").as_bytes())?;
                log.flush()
            });
            if let Err(e) = written {
                tracing::warn!(error = %e, "could not write the decision log");
            }
        }
        let decision = decided.value;
        let unchanged =
            self.state.patched == Some((decision.desired_runners, decision.drain)) && self.state.events_since == 0;
        let patch_id = (!unchanged).then(|| self.state.patches.next(decision.drain));
        tracing::info!(
            desired = decision.desired_runners,
            patch_id,
            assigned = input.statistics.assigned_jobs,
            outcome = decided.outcome.label(),
            reason = %decision.reason,
            "decided"
        );
        if let Some(patch_id) = patch_id {
            match self.cluster.patch_runner_set(decision.desired_runners, patch_id).await {
                Ok(()) => self.state.patched = Some((decision.desired_runners, decision.drain)),
                Err(e) => {
                    self.state.patched = None;
                    tracing::warn!(error = %e, "could not patch the EphemeralRunnerSet; the next decision retries");
                }
            }
        }
        self.metrics.desired(decision.desired_runners);
        self.state.capacity = decision.max_capacity.unwrap_or(self.bounds.max_runners);
        self.state.decide_at =
            decision.requeue_after_ms.map(|ms| Instant::now() + Duration::from_millis(u64::from(ms)));
        self.state.events_since = 0;
        self.state.previous = Some((decision, now));
        self.save_state(false).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(0) <= Duration::from_millis(500));
        assert!(backoff(20) <= Duration::from_secs(30) && backoff(20) >= Duration::from_secs(15));
    }
}
