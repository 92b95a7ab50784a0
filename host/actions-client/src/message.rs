//! Decoding the long-poll message: the envelope, then its double-encoded body of job messages.

use crate::error::{Error, Result};
use crate::model::{JobFields, MessageEnvelope, Statistics};

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
}

/// Decodes an envelope's text (BOM already stripped).
///
/// # Errors
/// [`Error::InvalidResponse`] for malformed JSON, an unexpected envelope type, or a body that is not a JSON array.
pub fn decode(url: &str, text: &str) -> Result<Message> {
    let invalid = |message: String| Error::InvalidResponse { url: url.to_string(), message };
    let envelope: MessageEnvelope =
        serde_json::from_str(text).map_err(|e| invalid(format!("message envelope: {e}")))?;
    if envelope.message_type != JOB_MESSAGES_TYPE {
        return Err(invalid(format!("unexpected message type {:?}", envelope.message_type)));
    }
    let mut jobs = Vec::new();
    if !envelope.body.trim().is_empty() {
        let items: Vec<serde_json::Value> =
            serde_json::from_str(&envelope.body).map_err(|e| invalid(format!("message body: {e}")))?;
        for item in items {
            let kind = item.get("messageType").and_then(|t| t.as_str()).unwrap_or_default().to_string();
            let fields = || -> Result<JobFields> {
                serde_json::from_value(item.clone()).map_err(|e| invalid(format!("{kind} message: {e}")))
            };
            jobs.push(match kind.as_str() {
                "JobAvailable" => JobMessage::Available(fields()?),
                "JobAssigned" => JobMessage::Assigned(fields()?),
                "JobStarted" => JobMessage::Started(fields()?),
                "JobCompleted" => JobMessage::Completed(fields()?),
                other => {
                    tracing::debug!(message_type = other, "ignoring an unknown job message type");
                    continue;
                }
            });
        }
    }
    Ok(Message { id: envelope.message_id, statistics: envelope.statistics, jobs })
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
    fn garbage_is_an_error_not_a_panic() {
        for text in [
            "not json".to_string(),
            r#"{"messageId": 1, "messageType": "Other", "body": ""}"#.to_string(),
            envelope("{\"not\": \"an array\"}"),
            envelope(r#"[{"messageType":"JobStarted","runnerRequestId":"five"}]"#),
            r#"{"messageType": "RunnerScaleSetJobMessages"}"#.to_string(),
        ] {
            assert!(matches!(decode("u", &text), Err(Error::InvalidResponse { .. })), "{text}");
        }
    }

    #[test]
    fn job_messages_encode_with_their_type() {
        let m = JobMessage::Started(JobFields { runner_request_id: 3, ..Default::default() });
        let json = m.to_json();
        assert_eq!((json["messageType"].as_str(), json["runnerRequestId"].as_i64()), (Some("JobStarted"), Some(3)));
    }
}
