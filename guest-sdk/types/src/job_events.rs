//! The job messages a decision receives ([`JobEvents`]): columns of numbers, each distinct string sent once and
//! named by index, so a thousand messages cross the sandbox as a dozen copies.

use std::collections::HashMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{JobEvent, JobPhase};

/// Marks "no conclusion" in [`JobEvents::conclusions`].
pub const NO_CONCLUSION: u32 = u32::MAX;

/// The job messages since the previous decision, oldest first, as columns (message `i` is entry `i` of each
/// column), strings interned. Read them with [`JobEvents::iter`]; build them with [`JobEventsBuilder`] or
/// `collect()`. In JSON (decision logs, `policy test` suites) they are a plain list of [`JobEvent`] objects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[allow(missing_docs, reason = "the fields of JobEvent, one column each")]
pub struct JobEvents {
    /// Every distinct string the messages name.
    pub strings: Vec<String>,
    /// Every distinct label set, as indices into `strings`.
    pub label_sets: Vec<Vec<u32>>,
    pub phases: Vec<JobPhase>,
    pub job_ids: Vec<u64>,
    /// 0 = not known.
    pub workflow_run_ids: Vec<u64>,
    pub repositories: Vec<u32>,
    pub workflow_refs: Vec<u32>,
    pub job_display_names: Vec<u32>,
    pub event_names: Vec<u32>,
    /// Indices into `label_sets`.
    pub labels: Vec<u32>,
    /// Unix ms; 0 = not known.
    pub queued_unix_ms: Vec<u64>,
    pub started_unix_ms: Vec<u64>,
    pub finished_unix_ms: Vec<u64>,
    /// Indices into `strings`; [`NO_CONCLUSION`] = none.
    pub conclusions: Vec<u32>,
}

/// A message with its strings looked up.
#[derive(Debug, Clone, Copy)]
pub struct JobEventRef<'a> {
    events: &'a JobEvents,
    index: usize,
}

/// Entry `index` of a column (the default when a column is short).
fn cell<T: Copy + Default>(column: &[T], index: usize) -> T {
    column.get(index).copied().unwrap_or_default()
}

/// A time column's entry: 0 = not known.
fn time(column: &[u64], index: usize) -> Option<u64> {
    Some(cell(column, index)).filter(|&t| t != 0)
}

impl<'a> JobEventRef<'a> {
    fn text(&self, column: &[u32]) -> &'a str {
        self.events.strings.get(cell(column, self.index) as usize).map_or("", String::as_str)
    }

    /// Which message.
    pub fn phase(&self) -> JobPhase {
        cell(&self.events.phases, self.index)
    }
    /// The runner request id: one job's messages share it.
    pub fn job_id(&self) -> u64 {
        cell(&self.events.job_ids, self.index)
    }
    /// The workflow run (0 when unknown).
    pub fn workflow_run_id(&self) -> u64 {
        cell(&self.events.workflow_run_ids, self.index)
    }
    /// `owner/repo`.
    pub fn repository(&self) -> &'a str {
        self.text(&self.events.repositories)
    }
    /// `owner/repo/.github/workflows/file.yml@ref`.
    pub fn workflow_ref(&self) -> &'a str {
        self.text(&self.events.workflow_refs)
    }
    /// The job's name in its run, e.g. `test (3/40)`.
    pub fn job_display_name(&self) -> &'a str {
        self.text(&self.events.job_display_names)
    }
    /// What triggered the run.
    pub fn event_name(&self) -> &'a str {
        self.text(&self.events.event_names)
    }
    /// The job's `runs-on` labels.
    pub fn labels(&self) -> impl Iterator<Item = &'a str> + 'a {
        let events = self.events;
        let set = events.label_sets.get(cell(&events.labels, self.index) as usize).map_or(&[][..], Vec::as_slice);
        set.iter().map(move |&i| events.strings.get(i as usize).map_or("", String::as_str))
    }
    /// When the job was queued (Unix ms).
    pub fn queued_unix_ms(&self) -> Option<u64> {
        time(&self.events.queued_unix_ms, self.index)
    }
    /// When it started on its runner.
    pub fn started_unix_ms(&self) -> Option<u64> {
        time(&self.events.started_unix_ms, self.index)
    }
    /// When it finished.
    pub fn finished_unix_ms(&self) -> Option<u64> {
        time(&self.events.finished_unix_ms, self.index)
    }
    /// A completed job's conclusion.
    pub fn conclusion(&self) -> Option<&'a str> {
        let index = self.events.conclusions.get(self.index).copied().unwrap_or(NO_CONCLUSION);
        (index != NO_CONCLUSION).then(|| self.events.strings.get(index as usize).map_or("", String::as_str))
    }

    /// The message as a [`JobEvent`] (without a runner name: decisions do not get them).
    pub fn to_event(&self) -> JobEvent {
        JobEvent {
            phase: self.phase(),
            job_id: self.job_id(),
            runner_name: String::new(),
            repository: self.repository().into(),
            workflow_ref: self.workflow_ref().into(),
            workflow_run_id: self.workflow_run_id(),
            job_display_name: self.job_display_name().into(),
            event_name: self.event_name().into(),
            labels: self.labels().map(Into::into).collect(),
            queued_unix_ms: self.queued_unix_ms(),
            started_unix_ms: self.started_unix_ms(),
            finished_unix_ms: self.finished_unix_ms(),
            conclusion: self.conclusion().map(Into::into),
            attributes: Vec::new(),
        }
    }
}

/// Builds [`JobEvents`], interning strings and label sets.
#[derive(Debug, Default)]
pub struct JobEventsBuilder {
    events: JobEvents,
    strings: HashMap<String, u32>,
    label_sets: HashMap<Vec<u32>, u32>,
}

impl JobEventsBuilder {
    fn intern(&mut self, text: &str) -> u32 {
        if let Some(&index) = self.strings.get(text) {
            return index;
        }
        let index = self.events.strings.len() as u32;
        self.events.strings.push(text.to_string());
        self.strings.insert(text.to_string(), index);
        index
    }

    /// Adds a message.
    pub fn push(&mut self, event: &JobEvent) {
        let labels: Vec<u32> = event.labels.iter().map(|l| self.intern(l)).collect();
        let next = self.events.label_sets.len() as u32;
        let labels = *self.label_sets.entry(labels.clone()).or_insert_with(|| {
            self.events.label_sets.push(labels);
            next
        });
        let repository = self.intern(&event.repository);
        let workflow_ref = self.intern(&event.workflow_ref);
        let job_display_name = self.intern(&event.job_display_name);
        let event_name = self.intern(&event.event_name);
        let conclusion = event.conclusion.as_deref().map_or(NO_CONCLUSION, |c| self.intern(c));
        let events = &mut self.events;
        events.phases.push(event.phase);
        events.job_ids.push(event.job_id);
        events.workflow_run_ids.push(event.workflow_run_id);
        events.repositories.push(repository);
        events.workflow_refs.push(workflow_ref);
        events.job_display_names.push(job_display_name);
        events.event_names.push(event_name);
        events.labels.push(labels);
        events.queued_unix_ms.push(event.queued_unix_ms.unwrap_or(0));
        events.started_unix_ms.push(event.started_unix_ms.unwrap_or(0));
        events.finished_unix_ms.push(event.finished_unix_ms.unwrap_or(0));
        events.conclusions.push(conclusion);
    }

    /// Messages added so far.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Nothing added yet.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The messages, leaving the builder empty.
    pub fn take(&mut self) -> JobEvents {
        self.strings.clear();
        self.label_sets.clear();
        std::mem::take(&mut self.events)
    }
}

impl JobEvents {
    /// The messages, oldest first.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = JobEventRef<'_>> {
        (0..self.len()).map(move |index| JobEventRef { events: self, index })
    }

    /// How many messages.
    pub fn len(&self) -> usize {
        self.phases.len()
    }

    /// No messages.
    pub fn is_empty(&self) -> bool {
        self.phases.is_empty()
    }
}

impl<'a> FromIterator<&'a JobEvent> for JobEvents {
    fn from_iter<I: IntoIterator<Item = &'a JobEvent>>(events: I) -> Self {
        let mut builder = JobEventsBuilder::default();
        events.into_iter().for_each(|e| builder.push(e));
        builder.take()
    }
}

impl FromIterator<JobEvent> for JobEvents {
    fn from_iter<I: IntoIterator<Item = JobEvent>>(events: I) -> Self {
        events.into_iter().collect::<Vec<_>>().iter().collect()
    }
}

impl Serialize for JobEvents {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(|e| e.to_event()))
    }
}

impl<'de> Deserialize<'de> for JobEvents {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<JobEvent>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_sent_once_and_read_back() {
        let event = |job_id, name: &str| JobEvent {
            phase: JobPhase::Completed,
            job_id,
            workflow_ref: "acme/app/.github/workflows/ci.yml@main".into(),
            job_display_name: name.into(),
            labels: vec!["linux".into(), "x64".into()],
            conclusion: Some("succeeded".into()),
            ..Default::default()
        };
        let events: JobEvents = (0..100).map(|i| event(i, if i == 0 { "build" } else { "test" })).collect();
        assert_eq!(events.len(), 100);
        assert_eq!(events.label_sets.len(), 1);
        assert!(events.strings.len() <= 8, "{:?}", events.strings);
        let first = events.iter().next().unwrap();
        assert_eq!((first.job_display_name(), first.conclusion()), ("build", Some("succeeded")));
        assert_eq!(first.labels().collect::<Vec<_>>(), ["linux", "x64"]);
        assert_eq!(first.to_event(), event(0, "build"));
        let json = serde_json::to_string(&events).unwrap();
        assert!(json.starts_with(r#"[{"phase":"completed","jobId":0"#), "{json}");
        assert_eq!(serde_json::from_str::<JobEvents>(&json).unwrap(), events);
    }
}
