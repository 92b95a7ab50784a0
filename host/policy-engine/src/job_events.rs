//! The job events a decision receives: every job message since the previous decision, up to the bound.

use crate::types::{JobEvent, JobEventsBuilder, MAX_JOB_EVENTS, ScaleInput};

/// Collects job events between decisions, keeping the first [`MAX_JOB_EVENTS`] and counting the rest.
#[derive(Debug, Default)]
pub struct JobEventBuffer {
    events: JobEventsBuilder,
    dropped: u32,
}

impl JobEventBuffer {
    /// Records an event (or counts it dropped when the buffer is full).
    pub fn push(&mut self, event: &JobEvent) {
        if self.events.len() < MAX_JOB_EVENTS {
            self.events.push(event);
        } else {
            self.dropped = self.dropped.saturating_add(1);
        }
    }

    /// Moves the recorded events into a decision's input, leaving the buffer empty.
    pub fn drain_into(&mut self, input: &mut ScaleInput) {
        input.job_events = self.events.take();
        input.job_events_dropped = std::mem::take(&mut self.dropped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_events_and_counts_the_rest() {
        let mut buffer = JobEventBuffer::default();
        for id in 0..MAX_JOB_EVENTS as u64 + 5 {
            buffer.push(&JobEvent { job_id: id, ..Default::default() });
        }
        let mut input = ScaleInput::default();
        buffer.drain_into(&mut input);
        assert_eq!(input.job_events.len(), MAX_JOB_EVENTS);
        assert_eq!(input.job_events.iter().last().map(|e| e.job_id()), Some(MAX_JOB_EVENTS as u64 - 1));
        assert_eq!(input.job_events_dropped, 5);
        buffer.drain_into(&mut input);
        assert!(input.job_events.is_empty() && input.job_events_dropped == 0);
    }
}
