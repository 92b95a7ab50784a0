//! Property tests of message decoding: garbage never panics, and what the service encodes decodes back intact.

use gha_actions_client::message::{self, JOB_MESSAGES_TYPE, JobMessage};
use gha_actions_client::model::JobFields;
use proptest::prelude::*;

fn fields() -> impl Strategy<Value = JobFields> {
    (
        any::<i64>(),
        "[a-z/]{0,20}",
        "[a-zA-Z0-9 .-]{0,30}",
        proptest::collection::vec("[a-z-]{1,10}", 0..4),
        any::<i64>(),
    )
        .prop_map(|(id, repo, name, labels, run)| JobFields {
            runner_request_id: id,
            repository_name: repo,
            job_display_name: name,
            request_labels: labels,
            workflow_run_id: run,
            ..Default::default()
        })
}

fn job_message() -> impl Strategy<Value = JobMessage> {
    (0..4u8, fields()).prop_map(|(kind, f)| match kind {
        0 => JobMessage::Available(f),
        1 => JobMessage::Assigned(f),
        2 => JobMessage::Started(f),
        _ => JobMessage::Completed(f),
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,400}") {
        let _ = message::decode("u", &text);
    }

    #[test]
    fn arbitrary_bodies_never_panic(id in any::<i64>(), body in ".{0,300}") {
        let envelope = serde_json::json!({"messageId": id, "messageType": JOB_MESSAGES_TYPE, "body": body});
        let _ = message::decode("u", &envelope.to_string());
    }

    #[test]
    fn encoded_messages_decode_back(id in any::<i64>(), jobs in proptest::collection::vec(job_message(), 0..60)) {
        let body: Vec<serde_json::Value> = jobs.iter().map(JobMessage::to_json).collect();
        let envelope = serde_json::json!({
            "messageId": id,
            "messageType": JOB_MESSAGES_TYPE,
            "body": serde_json::Value::Array(body).to_string(),
        });
        let text = format!("\u{feff}{envelope}");
        let decoded = message::decode("u", message::strip_bom(&text)).unwrap();
        prop_assert_eq!(decoded.id, id);
        prop_assert_eq!(decoded.jobs, jobs);
    }
}
