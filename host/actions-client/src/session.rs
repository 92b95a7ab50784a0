//! The listener's message session: long poll, acquire, ack. An expired queue token refreshes the session; a
//! dropped session is replaced by a new one, which starts its message ids afresh (`lastMessageId` is kept per
//! session, never carried into a new one).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::client::ActionsClient;
use crate::error::{Error, Result};
use crate::message::Message;
use crate::model::{Session, Statistics};

/// Attempts of an acknowledgement before it is given up (the message then stays unacknowledged on the
/// service, and is not asked for again: `lastMessageId` has moved past it).
const ACK_ATTEMPTS: u32 = 4;

struct State {
    session: Session,
    /// The last message id handled in this session.
    last_message_id: i64,
}

/// An open message session of one scale set.
pub struct MessageSession {
    client: Arc<ActionsClient>,
    scale_set_id: i64,
    owner: String,
    state: Mutex<State>,
}

impl MessageSession {
    /// Opens a session owned by `owner` (the pod name).
    ///
    /// # Errors
    /// [`Error::SessionConflict`], [`Error::ScaleSetNotFound`], HTTP errors.
    pub async fn open(client: Arc<ActionsClient>, scale_set_id: i64, owner: &str) -> Result<Self> {
        let session = client.create_session(scale_set_id, owner).await?;
        let state = Mutex::new(State { session, last_message_id: 0 });
        Ok(MessageSession { client, scale_set_id, owner: owner.to_string(), state })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn current(&self) -> Session {
        self.state().session.clone()
    }

    /// The statistics the session started with.
    pub fn initial_statistics(&self) -> Option<Statistics> {
        self.current().statistics
    }

    /// The session id (it changes when a dropped session is replaced).
    pub fn id(&self) -> String {
        self.current().session_id
    }

    /// Who owns the session (the listener pod's name).
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Runs a queue operation; on an expired token refreshes the session, on a dropped session (also one the
    /// refresh finds gone) opens a new one (which says [`Error::ScaleSetNotFound`] when the scale set is gone), and
    /// tries once more.
    async fn with_refresh<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: Fn(Session, i64) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let (session, last) = {
            let state = self.state();
            (state.session.clone(), state.last_message_id)
        };
        let refreshed = match op(session, last).await {
            Err(Error::MessageQueueTokenExpired) => {
                tracing::info!(scale_set_id = self.scale_set_id, "message queue token expired; refreshing the session");
                self.client.refresh_session(self.scale_set_id, &self.current().session_id).await
            }
            Err(gone @ Error::SessionNotFound(_)) => Err(gone),
            other => return other,
        };
        let replacement = match refreshed {
            Ok(session) => (session, last),
            Err(Error::SessionNotFound(why)) => {
                tracing::warn!(scale_set_id = self.scale_set_id, %why, "the message session was dropped; opening a new one");
                // A new session numbers its messages from the start.
                (self.client.create_session(self.scale_set_id, &self.owner).await?, 0)
            }
            Err(e) => return Err(e),
        };
        {
            let mut state = self.state();
            state.session = replacement.0.clone();
            state.last_message_id = replacement.1;
        }
        op(replacement.0, replacement.1).await
    }

    /// Long-polls for the next message after the last one handled, advertising `max_capacity`.
    ///
    /// # Errors
    /// HTTP and decoding errors; a token that stays expired after a refresh.
    pub async fn get_message(&self, max_capacity: u32) -> Result<Option<Message>> {
        self.with_refresh(|s, last| async move { self.client.get_message(&s, last, max_capacity).await }).await
    }

    /// Marks `message_id` handled: deletes it on the service (retried a few times; a message already gone is
    /// fine) and polls after it from now on. A message of a session that has since been replaced is not
    /// deleted (its session and messages are gone; the id would name another message in the new one).
    pub async fn acknowledge(&self, message_id: i64, session_id: &str) {
        if self.id() != session_id {
            return;
        }
        for attempt in 0..ACK_ATTEMPTS {
            let acked = self.with_refresh(|s, _| async move { self.client.delete_message(&s, message_id).await }).await;
            match acked {
                Ok(()) => break,
                Err(e) if attempt + 1 == ACK_ATTEMPTS => {
                    tracing::warn!(message_id, error = %e, "could not acknowledge a message; moving past it");
                }
                Err(e) => {
                    tracing::debug!(message_id, error = %e, "acknowledging a message failed; retrying");
                    tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
                }
            }
        }
        let mut state = self.state();
        if state.session.session_id == session_id {
            state.last_message_id = state.last_message_id.max(message_id);
        }
    }

    /// Acquires `JobAvailable` jobs.
    ///
    /// # Errors
    /// HTTP errors.
    pub async fn acquire_jobs(&self, request_ids: &[i64]) -> Result<Vec<i64>> {
        self.with_refresh(|s, _| async move {
            self.client.acquire_jobs(self.scale_set_id, &s.message_queue_access_token, request_ids).await
        })
        .await
    }

    /// Deletes the session so a successor can open one without a conflict.
    ///
    /// # Errors
    /// HTTP errors.
    pub async fn close(self) -> Result<()> {
        self.client.delete_session(self.scale_set_id, &self.current().session_id).await
    }
}
