//! Decoding the long-poll message: the envelope, then its double-encoded body of job messages.

use crate::error::{Error, Result};
use crate::model::{JobFields, Statistics};

/// The only envelope type the service sends to scale-set listeners.
pub const JOB_MESSAGES_TYPE: &str = "RunnerScaleSetJobMessages";

/// One job message. Unknown message types are skipped when decoding.
#[derive(Debug, Clone, PartialEq)]
pub enum JobMessage {
    /// A job the listener may acquire (GHES flow).
    Available(JobFields),
    /// A job assigned to the scale set.
    Assigned(JobFields),
    /// A job started on one of the scale set's runners.
    Started(JobFields),
    /// A job finished (or was cancelled).
    Completed(JobFields),
}

impl JobMessage {
    /// The job's fields.
    pub fn fields(&self) -> &JobFields {
        match self {
            JobMessage::Available(f) | JobMessage::Assigned(f) | JobMessage::Started(f) | JobMessage::Completed(f) => f,
        }
    }

    /// The wire `messageType`.
    pub fn message_type(&self) -> &'static str {
        match self {
            JobMessage::Available(_) => "JobAvailable",
            JobMessage::Assigned(_) => "JobAssigned",
            JobMessage::Started(_) => "JobStarted",
            JobMessage::Completed(_) => "JobCompleted",
        }
    }

    /// Encodes the message as the service does (fields plus `messageType`).
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self.fields()).unwrap_or_default();
        value["messageType"] = self.message_type().into();
        value
    }
}

/// A decoded message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// For `lastMessageId` and the ack.
    pub id: i64,
    /// Statistics at the time of the message.
    pub statistics: Option<Statistics>,
    /// Job messages in order (unknown types dropped).
    pub jobs: Vec<JobMessage>,
    /// Parts that could not be read and were skipped: an unknown envelope type, a body that is not a list, a job
    /// message whose fields do not decode, unreadable statistics. The rest is acted on and the message is
    /// acknowledged, so one bad part never wedges the queue.
    pub undecodable: u32,
}

/// Decodes an envelope's text (BOM already stripped). Only an envelope without a readable `messageId` is an
/// error (it cannot even be acknowledged); anything else that cannot be read is skipped and counted.
///
/// # Errors
/// [`Error::InvalidResponse`] for text that is not a JSON object with an integer `messageId`.
pub fn decode(url: &str, text: &str) -> Result<Message> {
    let invalid = |message: String| Error::InvalidResponse { url: url.to_string(), message };
    let envelope: serde_json::Value =
        serde_json::from_str(text).map_err(|e| invalid(format!("message envelope: {e}")))?;
    let id = envelope
        .get("messageId")
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| invalid("message envelope without an integer messageId".into()))?;
    let mut message = Message { id, statistics: None, jobs: Vec::new(), undecodable: 0 };
    let mut skip = |what: String| {
        tracing::warn!(message_id = id, %what, "skipping an undecodable part of a message");
        message.undecodable += 1;
    };
    match envelope.get("statistics") {
        None | Some(serde_json::Value::Null) => {}
        Some(statistics) => match serde_json::from_value::<Statistics>(statistics.clone()) {
            Ok(statistics) => message.statistics = Some(statistics),
            Err(e) => skip(format!("statistics: {e}")),
        },
    }
    let message_type = envelope.get("messageType").and_then(serde_json::Value::as_str).unwrap_or_default();
    if message_type != JOB_MESSAGES_TYPE {
        skip(format!("unexpected message type {message_type:?}"));
        return Ok(message);
    }
    let body = envelope.get("body").and_then(serde_json::Value::as_str).unwrap_or_default();
    if body.trim().is_empty() {
        return Ok(message);
    }
    let items: Vec<serde_json::Value> = match serde_json::from_str(body) {
        Ok(items) => items,
        Err(e) => {
            skip(format!("message body: {e}"));
            return Ok(message);
        }
    };
    for item in items {
        let kind = item.get("messageType").and_then(|t| t.as_str()).unwrap_or_default().to_string();
        let constructor: fn(JobFields) -> JobMessage = match kind.as_str() {
            "JobAvailable" => JobMessage::Available,
            "JobAssigned" => JobMessage::Assigned,
            "JobStarted" => JobMessage::Started,
            "JobCompleted" => JobMessage::Completed,
            other => {
                tracing::debug!(message_type = other, "ignoring an unknown job message type");
                continue;
            }
        };
        match serde_json::from_value::<JobFields>(item) {
            Ok(fields) => message.jobs.push(constructor(fields)),
            Err(e) => skip(format!("{kind} message: {e}")),
        }
    }
    Ok(message)
}

/// Strips a UTF-8 byte-order mark.
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(body: &str) -> String {
        serde_json::json!({"messageId": 7, "messageType": JOB_MESSAGES_TYPE, "statistics": {"totalAssignedJobs": 2}, "body": body})
            .to_string()
    }

    #[test]
    fn double_encoded_bodies_decode_and_unknown_types_are_skipped() {
        let body = r#"[{"messageType":"JobAssigned","runnerRequestId":5,"jobDisplayName":"build"},
                      {"messageType":"JobSomethingNew","runnerRequestId":6},
                      {"messageType":"JobCompleted","runnerRequestId":5,"result":"succeeded","runnerName":"r1",
                       "finishTime":"2026-11-23T10:00:00Z","queueTime":"0001-01-01T00:00:00Z"}]"#;
        let message = decode("u", &envelope(body)).unwrap();
        assert_eq!(message.id, 7);
        assert_eq!(message.statistics.unwrap().total_assigned_jobs, 2);
        assert_eq!(message.jobs.len(), 2);
        assert!(matches!(&message.jobs[1], JobMessage::Completed(f) if f.result.as_deref() == Some("succeeded")));
    }

    #[test]
    fn empty_bodies_and_boms_are_fine() {
        let text = format!("\u{feff}{}", envelope(""));
        assert!(decode("u", strip_bom(&text)).unwrap().jobs.is_empty());
    }

    #[test]
    fn an_envelope_without_an_id_is_an_error_not_a_panic() {
        for text in ["not json", r#"{"messageType": "RunnerScaleSetJobMessages"}"#, r#"{"messageId": "7"}"#] {
            assert!(matches!(decode("u", text), Err(Error::InvalidResponse { .. })), "{text}");
        }
    }

    #[test]
    fn unreadable_parts_are_skipped_and_counted_and_the_rest_is_kept() {
        let other_type = decode("u", r#"{"messageId": 1, "messageType": "Other", "body": "[]"}"#).unwrap();
        assert_eq!((other_type.id, other_type.undecodable, other_type.jobs.len()), (1, 1, 0));
        let not_a_list = decode("u", &envelope("{\"not\": \"an array\"}")).unwrap();
        assert_eq!((not_a_list.undecodable, not_a_list.statistics.unwrap().total_assigned_jobs), (1, 2));
        let body = r#"[{"messageType":"JobStarted","runnerRequestId":"five"},
                      {"messageType":"JobAssigned","runnerRequestId":6}]"#;
        let one_bad = decode("u", &envelope(body)).unwrap();
        assert_eq!(one_bad.undecodable, 1);
        assert!(matches!(&one_bad.jobs[..], [JobMessage::Assigned(f)] if f.runner_request_id == 6));
        let bad_statistics =
            decode("u", r#"{"messageId": 3, "messageType": "RunnerScaleSetJobMessages", "statistics": {"totalAssignedJobs": "many"}}"#).unwrap();
        assert_eq!((bad_statistics.undecodable, bad_statistics.statistics), (1, None));
    }

    #[test]
    fn job_messages_encode_with_their_type() {
        let m = JobMessage::Started(JobFields { runner_request_id: 3, ..Default::default() });
        let json = m.to_json();
        assert_eq!((json["messageType"].as_str(), json["runnerRequestId"].as_i64()), (Some("JobStarted"), Some(3)));
    }
}
