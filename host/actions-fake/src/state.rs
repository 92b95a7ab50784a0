//! The fake's state and its rules: scale sets, sessions and their message queues, jobs and their lifecycle,
//! runners, statistics. Pure and synchronous; the HTTP layer locks it per request.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use gha_actions_client::message::JobMessage;
use gha_actions_client::model::{JobFields, Label, RunnerGroup, RunnerReference, RunnerScaleSet, Statistics};
use serde::{Deserialize, Serialize};

/// Job messages per envelope, as the service sends at most.
pub const MAX_JOBS_PER_MESSAGE: usize = 50;
/// How often a job is cancelled and re-queued before it is given up.
pub const MAX_ATTEMPTS: u32 = 3;

/// How jobs reach a scale set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AssignmentMode {
    /// github.com: the service assigns jobs (`JobAssigned`).
    #[default]
    GitHubCom,
    /// GHES: the listener acquires offered jobs (`JobAvailable` + acquirejobs).
    Ghes,
}

/// A job as the control API enqueues it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct JobSpec {
    /// `runs-on` labels; a scale set takes the job when it has all of them.
    pub labels: Vec<String>,
    /// `owner/repo`.
    pub repository: String,
    /// Workflow ref.
    pub workflow_ref: String,
    /// Triggering event.
    pub event_name: String,
    /// Job name.
    pub display_name: String,
    /// The workflow run it belongs to; 0 = a run of its own (the job's id).
    pub workflow_run_id: i64,
    /// How long the simulated runner works on it.
    pub duration_ms: u64,
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum JobState {
    /// Waiting for a scale set with capacity.
    Queued,
    /// Offered to a scale set, waiting to be acquired (GHES).
    Available,
    /// Assigned to a scale set, waiting for a runner.
    Assigned,
    /// Running on a runner.
    Running,
    /// Finished (any result).
    Completed,
}

/// A job and its timestamps.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    /// `runnerRequestId`.
    pub id: i64,
    /// What was enqueued.
    pub spec: JobSpec,
    /// Where it is.
    pub state: JobState,
    /// The scale set holding it.
    pub scale_set_id: Option<i64>,
    /// The runner running it.
    pub runner_id: Option<i64>,
    /// Cancellations so far.
    pub attempts: u32,
    /// Final result.
    pub result: Option<String>,
    /// Enqueued.
    pub queue_time: DateTime<Utc>,
    /// Assigned to a scale set.
    pub scale_set_assign_time: Option<DateTime<Utc>>,
    /// Started on a runner.
    pub runner_assign_time: Option<DateTime<Utc>>,
    /// Finished.
    pub finish_time: Option<DateTime<Utc>>,
    #[serde(skip)]
    state_since: Option<Instant>,
}

/// A runner created by `generatejitconfig`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Runner {
    /// Runner id.
    pub id: i64,
    /// Runner name.
    pub name: String,
    /// Its scale set.
    pub scale_set_id: i64,
    /// Registered with its JIT config (which is then spent).
    pub registered: bool,
    /// The job it runs.
    pub job: Option<i64>,
    /// It ran its one job and left.
    pub finished: bool,
    #[serde(skip)]
    pub(crate) jit_token: String,
}

struct ScaleSetRecord {
    scale_set: RunnerScaleSet,
    /// `X-ScaleSetMaxCapacity` of the last poll.
    capacity: u32,
}

/// An envelope waiting for its ack.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// Message id.
    pub id: i64,
    /// Job messages.
    pub jobs: Vec<JobMessage>,
    /// Statistics when it was cut.
    pub statistics: Statistics,
    /// Sent as the envelope's type and body instead of the job messages (to feed clients garbage).
    pub raw: Option<(String, String)>,
    /// Delivered at least once.
    pub delivered: bool,
}

/// A message session.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRecord {
    /// Session id.
    pub id: String,
    /// Its scale set.
    pub scale_set_id: i64,
    /// Who opened it.
    pub owner: String,
    #[serde(skip)]
    pub(crate) queue_token: String,
    #[serde(skip)]
    unacked: VecDeque<Envelope>,
    #[serde(skip)]
    pending: Vec<JobMessage>,
    #[serde(skip)]
    next_message_id: i64,
    /// When it was last polled (or created).
    #[serde(skip)]
    last_poll: Instant,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 404 with this exception.
    NotFound(&'static str, String),
    /// 409 with this exception.
    Conflict(&'static str, String),
    /// 400 with this exception.
    BadRequest(&'static str, String),
    /// 401.
    Unauthorized(String),
}

/// Result alias.
pub type Outcome<T> = Result<T, Refusal>;

/// Everything the fake knows.
pub struct FakeState {
    mode: AssignmentMode,
    next_id: i64,
    groups: Vec<RunnerGroup>,
    scale_sets: BTreeMap<i64, ScaleSetRecord>,
    sessions: HashMap<String, SessionRecord>,
    session_idle_timeout: Option<Duration>,
    /// Envelopes delivered again (not acknowledged, nor polled past, the first time).
    redeliveries: u64,
    jobs: BTreeMap<i64, Job>,
    runners: BTreeMap<i64, Runner>,
}

fn random_token(prefix: &str) -> String {
    use rand::Rng;
    let bytes: [u8; 16] = rand::rng().random();
    format!("{prefix}{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

impl FakeState {
    /// A fresh state with the `Default` runner group (id 1) and the given extra groups.
    pub fn new(mode: AssignmentMode, extra_groups: &[String]) -> Self {
        let mut state = FakeState {
            mode,
            next_id: 100,
            groups: Vec::new(),
            scale_sets: BTreeMap::new(),
            sessions: HashMap::new(),
            session_idle_timeout: None,
            redeliveries: 0,
            jobs: BTreeMap::new(),
            runners: BTreeMap::new(),
        };
        state.groups.push(RunnerGroup { id: 1, name: "Default".into(), size: 0, is_default_group: true });
        for name in extra_groups {
            let id = state.id();
            state.groups.push(RunnerGroup { id, name: name.clone(), size: 0, is_default_group: false });
        }
        state
    }

    fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    /// Forgets scale sets, sessions, jobs and runners; keeps runner groups.
    pub fn reset(&mut self) {
        *self = FakeState {
            groups: std::mem::take(&mut self.groups),
            session_idle_timeout: self.session_idle_timeout,
            ..FakeState::new(self.mode, &[])
        };
    }

    /// Runner groups named `name`.
    pub fn groups_named(&self, name: &str) -> Vec<RunnerGroup> {
        self.groups.iter().filter(|g| g.name.eq_ignore_ascii_case(name)).cloned().collect()
    }

    fn group_name(&self, id: i64) -> Option<String> {
        self.groups.iter().find(|g| g.id == id).map(|g| g.name.clone())
    }

    /// Scale sets of a group with a name.
    pub fn scale_sets_named(&self, group: i64, name: &str) -> Vec<RunnerScaleSet> {
        self.scale_sets
            .values()
            .filter(|r| r.scale_set.runner_group_id == group && r.scale_set.name == name)
            .map(|r| self.with_statistics(&r.scale_set))
            .collect()
    }

    fn with_statistics(&self, scale_set: &RunnerScaleSet) -> RunnerScaleSet {
        RunnerScaleSet { statistics: Some(self.statistics(scale_set.id)), ..scale_set.clone() }
    }

    /// A scale set by id.
    pub fn scale_set(&self, id: i64) -> Outcome<RunnerScaleSet> {
        self.scale_sets.get(&id).map(|r| self.with_statistics(&r.scale_set)).ok_or_else(|| not_found_scale_set(id))
    }

    /// Creates a scale set (409 when the name is taken in the group).
    pub fn create_scale_set(&mut self, mut scale_set: RunnerScaleSet) -> Outcome<RunnerScaleSet> {
        if scale_set.runner_group_id == 0 {
            scale_set.runner_group_id = 1;
        }
        let Some(group_name) = self.group_name(scale_set.runner_group_id) else {
            return Err(Refusal::NotFound("RunnerGroupNotFoundException", "no such runner group".into()));
        };
        if !self.scale_sets_named(scale_set.runner_group_id, &scale_set.name).is_empty() {
            return Err(Refusal::Conflict(
                "RunnerScaleSetExistsException",
                format!("a scale set named {} exists", scale_set.name),
            ));
        }
        scale_set.id = self.id();
        scale_set.runner_group_name = Some(group_name);
        scale_set.created_on = Some(Utc::now());
        if scale_set.labels.is_empty() {
            scale_set.labels = vec![Label::system(&scale_set.name)];
        }
        self.scale_sets.insert(scale_set.id, ScaleSetRecord { scale_set: scale_set.clone(), capacity: u32::MAX });
        self.dispatch();
        Ok(self.with_statistics(&scale_set))
    }

    /// Renames, moves or relabels.
    pub fn update_scale_set(
        &mut self,
        id: i64,
        patch: gha_actions_client::model::RunnerScaleSetPatch,
    ) -> Outcome<RunnerScaleSet> {
        let group_name = patch.runner_group_id.map(|g| self.group_name(g));
        let record = self.scale_sets.get_mut(&id).ok_or_else(|| not_found_scale_set(id))?;
        if let Some(name) = patch.name {
            record.scale_set.name = name;
        }
        if let (Some(group), Some(group_name)) = (patch.runner_group_id, group_name) {
            let group_name =
                group_name.ok_or(Refusal::NotFound("RunnerGroupNotFoundException", "no such runner group".into()))?;
            record.scale_set.runner_group_id = group;
            record.scale_set.runner_group_name = Some(group_name);
        }
        if let Some(labels) = patch.labels {
            record.scale_set.labels = labels;
        }
        let scale_set = record.scale_set.clone();
        self.dispatch();
        Ok(self.with_statistics(&scale_set))
    }

    /// Deletes a scale set (also what GitHub's garbage collection does): its sessions go, its unfinished jobs
    /// return to the queue.
    pub fn delete_scale_set(&mut self, id: i64) -> bool {
        let existed = self.scale_sets.remove(&id).is_some();
        self.sessions.retain(|_, s| s.scale_set_id != id);
        for job in self.jobs.values_mut().filter(|j| j.scale_set_id == Some(id) && j.state != JobState::Completed) {
            if job.state != JobState::Running {
                requeue(job);
            }
        }
        self.dispatch();
        existed
    }

    /// Drops sessions nobody polled for longer than `timeout` (see [`FakeState::new`]).
    pub fn with_session_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.session_idle_timeout = timeout;
        self
    }

    /// Drops the sessions nobody polled within the idle timeout.
    pub fn drop_idle_sessions(&mut self) {
        if let Some(timeout) = self.session_idle_timeout {
            self.sessions.retain(|_, s| s.last_poll.elapsed() <= timeout);
        }
    }

    /// How many envelopes were delivered more than once.
    pub fn redeliveries(&self) -> u64 {
        self.redeliveries
    }

    /// Opens a session (409 when one is active).
    pub fn create_session(&mut self, scale_set_id: i64, owner: &str, queue_base: &str) -> Outcome<SessionView> {
        if !self.scale_sets.contains_key(&scale_set_id) {
            return Err(not_found_scale_set(scale_set_id));
        }
        self.drop_idle_sessions();
        if let Some(active) = self.sessions.values().find(|s| s.scale_set_id == scale_set_id) {
            return Err(Refusal::Conflict(
                "RunnerScaleSetSessionConflictException",
                format!("The scale set {scale_set_id} already has an active session for owner {}.", active.owner),
            ));
        }
        let record = SessionRecord {
            id: uuid::Uuid::new_v4().to_string(),
            scale_set_id,
            owner: owner.to_string(),
            queue_token: random_token("queue-"),
            unacked: VecDeque::new(),
            pending: Vec::new(),
            next_message_id: 1,
            last_poll: Instant::now(),
        };
        let view = self.session_view(&record, queue_base);
        self.sessions.insert(record.id.clone(), record);
        // Jobs offered while no session listened are offered again to the new one; jobs already assigned show up
        // in the statistics (their messages went to no one).
        let offered: Vec<JobMessage> = self
            .jobs
            .values()
            .filter(|j| j.state == JobState::Available && j.scale_set_id == Some(scale_set_id))
            .map(|j| JobMessage::Available(fields(j)))
            .collect();
        for message in offered {
            self.push(scale_set_id, message);
        }
        Ok(view)
    }

    /// The wire view of a session.
    fn session_view(&self, record: &SessionRecord, queue_base: &str) -> SessionView {
        SessionView {
            session_id: record.id.clone(),
            owner_name: record.owner.clone(),
            runner_scale_set: self.scale_sets.get(&record.scale_set_id).map(|r| self.with_statistics(&r.scale_set)),
            message_queue_url: format!("{queue_base}/{}", record.id),
            message_queue_access_token: record.queue_token.clone(),
            statistics: self.statistics(record.scale_set_id),
        }
    }

    /// Gives a session a new queue token.
    pub fn refresh_session(&mut self, scale_set_id: i64, session_id: &str, queue_base: &str) -> Outcome<SessionView> {
        let session = self
            .sessions
            .get_mut(session_id)
            .filter(|s| s.scale_set_id == scale_set_id)
            .ok_or_else(|| Refusal::NotFound("MessageQueueNotFoundException", "no such session".into()))?;
        session.queue_token = random_token("queue-");
        let record = session.clone();
        Ok(self.session_view(&record, queue_base))
    }

    /// Ends a session.
    pub fn delete_session(&mut self, scale_set_id: i64, session_id: &str) -> bool {
        self.sessions.remove(session_id).is_some_and(|s| s.scale_set_id == scale_set_id)
    }

    /// Drops the session of a scale set, as when the service expires a stale one.
    pub fn drop_sessions_of(&mut self, scale_set_id: i64) {
        self.sessions.retain(|_, s| s.scale_set_id != scale_set_id);
    }

    /// Invalidates every queue token.
    pub fn expire_queue_tokens(&mut self) {
        for session in self.sessions.values_mut() {
            session.queue_token = random_token("queue-");
        }
    }

    /// Checks a queue token; returns the session's scale set.
    pub fn check_queue_token(&self, session_id: &str, token: &str) -> Outcome<i64> {
        let session = self
            .sessions
            .get(session_id)
            .ok_or_else(|| Refusal::NotFound("MessageQueueNotFoundException", "no such session".into()))?;
        if session.queue_token != token {
            return Err(Refusal::Unauthorized("the message queue token is invalid or expired".into()));
        }
        Ok(session.scale_set_id)
    }

    /// Checks a queue token of any session of the scale set (acquirejobs).
    pub fn check_scale_set_queue_token(&self, scale_set_id: i64, token: &str) -> Outcome<()> {
        if self.sessions.values().any(|s| s.scale_set_id == scale_set_id && s.queue_token == token) {
            Ok(())
        } else {
            Err(Refusal::Unauthorized("the message queue token is invalid or expired".into()))
        }
    }

    /// Records the advertised capacity of the session's scale set.
    pub fn set_capacity(&mut self, session_id: &str, capacity: u32) {
        if let Some(scale_set_id) = self.sessions.get(session_id).map(|s| s.scale_set_id)
            && let Some(record) = self.scale_sets.get_mut(&scale_set_id)
            && record.capacity != capacity
        {
            record.capacity = capacity;
            self.dispatch();
        }
    }

    /// The next envelope after `last_message_id`: an unacked one, or a new one cut from pending job messages.
    pub fn next_envelope(&mut self, session_id: &str, last_message_id: i64) -> Option<Envelope> {
        let scale_set_id = self.sessions.get(session_id)?.scale_set_id;
        let statistics = self.statistics(scale_set_id);
        let session = self.sessions.get_mut(session_id)?;
        session.last_poll = Instant::now();
        // Asking for messages after `lastMessageId` tells the service the client has those before: they are
        // done with, acknowledged or not.
        session.unacked.retain(|e| e.id > last_message_id);
        if let Some(envelope) = session.unacked.front_mut() {
            let again = std::mem::replace(&mut envelope.delivered, true);
            let envelope = envelope.clone();
            self.redeliveries += u64::from(again);
            return Some(envelope);
        }
        if session.pending.is_empty() {
            return None;
        }
        let take = session.pending.len().min(MAX_JOBS_PER_MESSAGE);
        let jobs: Vec<JobMessage> = session.pending.drain(..take).collect();
        let envelope = Envelope { id: session.next_message_id, jobs, statistics, raw: None, delivered: true };
        session.next_message_id += 1;
        session.unacked.push_back(envelope.clone());
        Some(envelope)
    }

    /// Queues an envelope of `message_type` with `body` as is (e.g. undecodable) on the scale set's active session.
    pub fn push_raw_envelope(&mut self, scale_set_id: i64, message_type: &str, body: &str) -> bool {
        let statistics = self.statistics(scale_set_id);
        let Some(session) = self.sessions.values_mut().find(|s| s.scale_set_id == scale_set_id) else { return false };
        let raw = Some((message_type.to_string(), body.to_string()));
        let envelope = Envelope { id: session.next_message_id, jobs: Vec::new(), statistics, raw, delivered: false };
        session.unacked.push_back(envelope);
        session.next_message_id += 1;
        true
    }

    /// Acknowledges an envelope.
    pub fn ack(&mut self, session_id: &str, message_id: i64) -> bool {
        let Some(session) = self.sessions.get_mut(session_id) else { return false };
        let before = session.unacked.len();
        session.unacked.retain(|e| e.id != message_id);
        before != session.unacked.len()
    }

    /// Enqueues a job; returns its `runnerRequestId`.
    pub fn enqueue(&mut self, spec: JobSpec) -> i64 {
        let id = self.id();
        self.jobs.insert(
            id,
            Job {
                id,
                spec,
                state: JobState::Queued,
                scale_set_id: None,
                runner_id: None,
                attempts: 0,
                result: None,
                queue_time: Utc::now(),
                scale_set_assign_time: None,
                runner_assign_time: None,
                finish_time: None,
                state_since: Some(Instant::now()),
            },
        );
        self.dispatch();
        id
    }

    /// Acquires offered jobs for a scale set; returns those acquired.
    pub fn acquire(&mut self, scale_set_id: i64, ids: &[i64]) -> Vec<i64> {
        let mut acquired = Vec::new();
        for id in ids {
            if let Some(job) = self.jobs.get_mut(id)
                && job.state == JobState::Available
                && job.scale_set_id == Some(scale_set_id)
            {
                set_state(job, JobState::Assigned);
                acquired.push(*id);
                let message = JobMessage::Assigned(fields(job));
                self.push(scale_set_id, message);
            }
        }
        acquired
    }

    /// Hands queued jobs to scale sets that match their labels and have capacity.
    fn dispatch(&mut self) {
        let queued: Vec<i64> = self.jobs.values().filter(|j| j.state == JobState::Queued).map(|j| j.id).collect();
        for id in queued {
            let labels = self.jobs[&id].spec.labels.clone();
            let target = self.scale_sets.values().find(|r| {
                labels.iter().all(|l| r.scale_set.labels.iter().any(|sl| sl.name.eq_ignore_ascii_case(l)))
                    && self.holding(r.scale_set.id) < r.capacity
            });
            let Some(scale_set_id) = target.map(|r| r.scale_set.id) else { continue };
            let mode = self.mode;
            let job = self.jobs.get_mut(&id).expect("listed above");
            job.scale_set_id = Some(scale_set_id);
            job.scale_set_assign_time = Some(Utc::now());
            let message = match mode {
                AssignmentMode::GitHubCom => {
                    set_state(job, JobState::Assigned);
                    JobMessage::Assigned(fields(job))
                }
                AssignmentMode::Ghes => {
                    set_state(job, JobState::Available);
                    let mut f = fields(job);
                    f.acquire_job_url = Some(format!("acquirejobs/{id}"));
                    JobMessage::Available(f)
                }
            };
            self.push(scale_set_id, message);
        }
    }

    /// Jobs a scale set holds (offered, assigned or running): what its capacity bounds.
    fn holding(&self, scale_set_id: i64) -> u32 {
        self.jobs
            .values()
            .filter(|j| {
                j.scale_set_id == Some(scale_set_id)
                    && matches!(j.state, JobState::Available | JobState::Assigned | JobState::Running)
            })
            .count() as u32
    }

    fn push(&mut self, scale_set_id: i64, message: JobMessage) {
        if let Some(session) = self.sessions.values_mut().find(|s| s.scale_set_id == scale_set_id) {
            session.pending.push(message);
        }
    }

    /// Statistics of a scale set, computed from jobs and runners.
    pub fn statistics(&self, scale_set_id: i64) -> Statistics {
        let jobs = self.jobs.values().filter(|j| j.scale_set_id == Some(scale_set_id));
        let mut s = Statistics::default();
        for job in jobs {
            match job.state {
                JobState::Available => s.total_available_jobs += 1,
                JobState::Assigned => s.total_assigned_jobs += 1,
                JobState::Running => {
                    s.total_assigned_jobs += 1;
                    s.total_running_jobs += 1;
                }
                JobState::Queued | JobState::Completed => {}
            }
        }
        for runner in self.runners.values().filter(|r| r.scale_set_id == scale_set_id && r.registered && !r.finished) {
            s.total_registered_runners += 1;
            if runner.job.is_some() {
                s.total_busy_runners += 1;
            } else {
                s.total_idle_runners += 1;
            }
        }
        s
    }

    /// Creates a runner and its JIT token (409 when the name is taken).
    pub fn create_runner(&mut self, scale_set_id: i64, name: &str) -> Outcome<(RunnerReference, String)> {
        if !self.scale_sets.contains_key(&scale_set_id) {
            return Err(not_found_scale_set(scale_set_id));
        }
        if self.runners.values().any(|r| r.name == name && !r.finished) {
            return Err(Refusal::Conflict(
                "GitHub.DistributedTask.WebApi.AgentExistsException",
                format!("A runner named {name} already exists."),
            ));
        }
        let id = self.id();
        let jit_token = random_token("jit-");
        self.runners.insert(
            id,
            Runner {
                id,
                name: name.into(),
                scale_set_id,
                registered: false,
                job: None,
                finished: false,
                jit_token: jit_token.clone(),
            },
        );
        Ok((RunnerReference { id, name: name.into(), runner_scale_set_id: scale_set_id }, jit_token))
    }

    /// A runner that still exists.
    pub fn runner(&self, id: i64) -> Option<RunnerReference> {
        self.runners.get(&id).filter(|r| !r.finished).map(reference)
    }

    /// Runners (still existing) with a name.
    pub fn runners_named(&self, name: &str) -> Vec<RunnerReference> {
        self.runners.values().filter(|r| r.name == name && !r.finished).map(reference).collect()
    }

    /// Removes a runner; refuses while it runs a job.
    pub fn remove_runner(&mut self, id: i64) -> Outcome<()> {
        match self.runners.get(&id) {
            Some(r) if r.job.is_some() => Err(Refusal::BadRequest(
                "GitHub.DistributedTask.WebApi.JobStillRunningException",
                format!("Runner {} is running a job.", r.name),
            )),
            Some(_) => {
                self.runners.remove(&id);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Registers a runner with its JIT token; a spent token is refused.
    pub fn register_runner(&mut self, id: i64, token: &str) -> Outcome<RunnerReference> {
        let runner = self
            .runners
            .get_mut(&id)
            .filter(|r| r.jit_token == token)
            .ok_or_else(|| Refusal::Unauthorized("unknown JIT config".into()))?;
        if runner.registered {
            return Err(Refusal::Conflict("JitConfigConsumedException", "this JIT config was already used".into()));
        }
        runner.registered = true;
        Ok(reference(runner))
    }

    /// Checks a registered runner's token.
    pub fn check_runner(&self, id: i64, token: &str) -> Outcome<()> {
        match self.runners.get(&id) {
            Some(r) if r.jit_token == token && r.registered && !r.finished => Ok(()),
            _ => Err(Refusal::Unauthorized("unknown or finished runner".into())),
        }
    }

    /// The job a runner runs, starting the oldest assigned job of its scale set if it is idle.
    pub fn take_job(&mut self, runner_id: i64) -> Option<Job> {
        let runner = self.runners.get(&runner_id)?;
        if let Some(job) = runner.job {
            return self.jobs.get(&job).cloned();
        }
        let scale_set_id = runner.scale_set_id;
        let name = runner.name.clone();
        let job = self
            .jobs
            .values_mut()
            .filter(|j| j.state == JobState::Assigned && j.scale_set_id == Some(scale_set_id))
            .min_by_key(|j| j.id)?;
        set_state(job, JobState::Running);
        job.runner_id = Some(runner_id);
        job.runner_assign_time = Some(Utc::now());
        let mut f = fields(job);
        f.runner_id = Some(runner_id);
        f.runner_name = Some(name);
        let job = job.clone();
        self.runners.get_mut(&runner_id)?.job = Some(job.id);
        self.push(scale_set_id, JobMessage::Started(f));
        Some(job)
    }

    /// A runner reports its job's result; the runner then leaves (ephemeral).
    pub fn complete_job(&mut self, runner_id: i64, result: &str) -> Outcome<()> {
        let runner = self.runners.get_mut(&runner_id).ok_or_else(|| Refusal::Unauthorized("unknown runner".into()))?;
        let Some(job_id) = runner.job.take() else {
            return Err(Refusal::BadRequest("NoJobException", "the runner has no job".into()));
        };
        runner.finished = true;
        let name = runner.name.clone();
        let Some(job) = self.jobs.get_mut(&job_id) else { return Ok(()) };
        set_state(job, JobState::Completed);
        job.result = Some(result.into());
        job.finish_time = Some(Utc::now());
        let mut f = fields(job);
        f.runner_id = Some(runner_id);
        f.runner_name = Some(name);
        f.result = Some(result.into());
        let scale_set_id = job.scale_set_id;
        if let Some(scale_set_id) = scale_set_id {
            self.push(scale_set_id, JobMessage::Completed(f));
        }
        self.dispatch();
        Ok(())
    }

    /// Cancels offered jobs not acquired within `acquire` and assigned jobs not started within `start`; they go
    /// back to the queue up to [`MAX_ATTEMPTS`] times.
    pub fn expire(&mut self, acquire: Duration, start: Duration) -> bool {
        let now = Instant::now();
        let stale: Vec<i64> = self
            .jobs
            .values()
            .filter(|j| {
                let age = j.state_since.map_or(Duration::ZERO, |s| now - s);
                (j.state == JobState::Available && age >= acquire) || (j.state == JobState::Assigned && age >= start)
            })
            .map(|j| j.id)
            .collect();
        for id in &stale {
            let job = self.jobs.get_mut(id).expect("listed above");
            let scale_set_id = job.scale_set_id;
            let mut f = fields(job);
            f.result = Some("canceled".into());
            job.attempts += 1;
            if job.attempts >= MAX_ATTEMPTS {
                set_state(job, JobState::Completed);
                job.result = Some("canceled".into());
                job.finish_time = Some(Utc::now());
            } else {
                requeue(job);
            }
            if let Some(scale_set_id) = scale_set_id {
                self.push(scale_set_id, JobMessage::Completed(f));
            }
        }
        if !stale.is_empty() {
            self.dispatch();
        }
        !stale.is_empty()
    }

    /// Every job.
    pub fn jobs(&self) -> Vec<Job> {
        self.jobs.values().cloned().collect()
    }

    /// Every runner ever created.
    pub fn runners(&self) -> Vec<Runner> {
        self.runners.values().cloned().collect()
    }

    /// Every scale set with statistics.
    pub fn scale_sets(&self) -> Vec<RunnerScaleSet> {
        self.scale_sets.values().map(|r| self.with_statistics(&r.scale_set)).collect()
    }

    /// Every session.
    pub fn sessions(&self) -> Vec<SessionRecord> {
        self.sessions.values().cloned().collect()
    }
}

/// The wire shape of a session.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs, reason = "wire fields")]
pub struct SessionView {
    pub session_id: String,
    pub owner_name: String,
    pub runner_scale_set: Option<RunnerScaleSet>,
    pub message_queue_url: String,
    pub message_queue_access_token: String,
    pub statistics: Statistics,
}

fn not_found_scale_set(id: i64) -> Refusal {
    Refusal::NotFound("RunnerScaleSetNotFoundException", format!("No runner scale set found with identifier: {id}"))
}

fn reference(r: &Runner) -> RunnerReference {
    RunnerReference { id: r.id, name: r.name.clone(), runner_scale_set_id: r.scale_set_id }
}

fn set_state(job: &mut Job, state: JobState) {
    job.state = state;
    job.state_since = Some(Instant::now());
}

fn requeue(job: &mut Job) {
    set_state(job, JobState::Queued);
    job.scale_set_id = None;
    job.scale_set_assign_time = None;
}

fn fields(job: &Job) -> JobFields {
    JobFields {
        runner_request_id: job.id,
        repository_name: job.spec.repository.rsplit('/').next().unwrap_or_default().to_string(),
        owner_name: job.spec.repository.split('/').next().unwrap_or_default().to_string(),
        job_id: format!("job-{}", job.id),
        job_workflow_ref: job.spec.workflow_ref.clone(),
        job_display_name: job.spec.display_name.clone(),
        workflow_run_id: if job.spec.workflow_run_id > 0 { job.spec.workflow_run_id } else { job.id },
        event_name: job.spec.event_name.clone(),
        request_labels: job.spec.labels.clone(),
        queue_time: Some(job.queue_time),
        scale_set_assign_time: job.scale_set_assign_time,
        runner_assign_time: job.runner_assign_time,
        finish_time: job.finish_time,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_with_set(mode: AssignmentMode) -> (FakeState, i64, String) {
        let mut state = FakeState::new(mode, &[]);
        let set = state.create_scale_set(RunnerScaleSet { name: "linux".into(), ..Default::default() }).unwrap();
        let session = state.create_session(set.id, "pod", "q").unwrap();
        (state, set.id, session.session_id)
    }

    fn job(labels: &[&str]) -> JobSpec {
        JobSpec { labels: labels.iter().map(|l| l.to_string()).collect(), ..Default::default() }
    }

    #[test]
    fn a_job_runs_through_assignment_start_and_completion() {
        let (mut state, set, session) = state_with_set(AssignmentMode::GitHubCom);
        let id = state.enqueue(job(&["linux"]));
        assert_eq!(state.statistics(set).total_assigned_jobs, 1);
        let (runner, token) = state.create_runner(set, "r1").unwrap();
        state.register_runner(runner.id, &token).unwrap();
        assert_eq!(state.take_job(runner.id).unwrap().id, id);
        let stats = state.statistics(set);
        assert_eq!((stats.total_running_jobs, stats.total_busy_runners), (1, 1));
        assert!(matches!(state.remove_runner(runner.id), Err(Refusal::BadRequest(..))));
        state.complete_job(runner.id, "succeeded").unwrap();
        let envelope = state.next_envelope(&session, 0).unwrap();
        let kinds: Vec<_> = envelope.jobs.iter().map(JobMessage::message_type).collect();
        assert_eq!(kinds, ["JobAssigned", "JobStarted", "JobCompleted"]);
        assert_eq!(state.statistics(set), Statistics::default());
        assert!(state.register_runner(runner.id, &token).is_err(), "a spent JIT config cannot register again");
    }

    #[test]
    fn capacity_bounds_assignment_and_labels_must_match() {
        let (mut state, set, session) = state_with_set(AssignmentMode::GitHubCom);
        state.set_capacity(&session, 2);
        for _ in 0..5 {
            state.enqueue(job(&["linux"]));
        }
        state.enqueue(job(&["windows"]));
        assert_eq!(state.statistics(set).total_assigned_jobs, 2);
        state.set_capacity(&session, 10);
        assert_eq!(state.statistics(set).total_assigned_jobs, 5);
    }

    #[test]
    fn envelopes_hold_at_most_fifty_and_are_redelivered_until_acked_or_polled_past() {
        let (mut state, _, session) = state_with_set(AssignmentMode::GitHubCom);
        for _ in 0..120 {
            state.enqueue(job(&[]));
        }
        let first = state.next_envelope(&session, 0).unwrap();
        assert_eq!(first.jobs.len(), MAX_JOBS_PER_MESSAGE);
        assert_eq!(state.next_envelope(&session, 0).unwrap().id, first.id, "unacked: delivered again");
        let second = state.next_envelope(&session, first.id).unwrap();
        assert!(!state.ack(&session, first.id), "polling past a message is done with it");
        assert!(state.ack(&session, second.id));
        assert_eq!(state.next_envelope(&session, second.id).unwrap().jobs.len(), 20);
    }

    #[test]
    fn ghes_jobs_are_offered_then_acquired_and_unacquired_ones_requeued_three_times() {
        let (mut state, set, _) = state_with_set(AssignmentMode::Ghes);
        let id = state.enqueue(job(&[]));
        assert_eq!(state.statistics(set).total_available_jobs, 1);
        for _ in 0..MAX_ATTEMPTS {
            assert!(state.expire(Duration::ZERO, Duration::from_secs(60)));
        }
        let given_up = state.jobs().into_iter().find(|j| j.id == id).unwrap();
        assert_eq!((given_up.state, given_up.result.as_deref()), (JobState::Completed, Some("canceled")));
        let id = state.enqueue(job(&[]));
        assert_eq!(state.acquire(set, &[id, 999]), [id]);
        assert_eq!(state.statistics(set).total_assigned_jobs, 1);
    }

    #[test]
    fn a_second_session_conflicts_and_a_deleted_scale_set_is_not_found() {
        let (mut state, set, _) = state_with_set(AssignmentMode::GitHubCom);
        assert!(matches!(state.create_session(set, "other", "q"), Err(Refusal::Conflict(..))));
        assert!(state.create_runner(set, "r").is_ok());
        assert!(matches!(state.create_runner(set, "r"), Err(Refusal::Conflict(..))));
        state.delete_scale_set(set);
        assert!(matches!(state.create_session(set, "pod", "q"), Err(Refusal::NotFound(..))));
    }
}
