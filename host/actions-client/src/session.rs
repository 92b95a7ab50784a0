//! The listener's message session: long poll, ack, acquire, with one refresh-and-retry on an expired queue token.

use std::future::Future;
use std::sync::{Arc, Mutex};

use crate::client::ActionsClient;
use crate::error::{Error, Result};
use crate::message::Message;
use crate::model::{Session, Statistics};

/// An open message session of one scale set.
pub struct MessageSession {
    client: Arc<ActionsClient>,
    scale_set_id: i64,
    owner: String,
    session: Mutex<Session>,
}

impl MessageSession {
    /// Opens a session owned by `owner` (the pod name).
    ///
    /// # Errors
    /// [`Error::SessionConflict`], [`Error::ScaleSetNotFound`], HTTP errors.
    pub async fn open(client: Arc<ActionsClient>, scale_set_id: i64, owner: &str) -> Result<Self> {
        let session = client.create_session(scale_set_id, owner).await?;
        Ok(MessageSession { client, scale_set_id, owner: owner.to_string(), session: Mutex::new(session) })
    }

    fn current(&self) -> Session {
        self.session.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The statistics the session started with.
    pub fn initial_statistics(&self) -> Option<Statistics> {
        self.current().statistics
    }

    /// The session id.
    pub fn id(&self) -> String {
        self.current().session_id
    }

    /// Runs a queue operation; on an expired token refreshes the session, on a dropped session opens a new
    /// one (which says [`Error::ScaleSetNotFound`] when the scale set is gone), and tries once more.
    async fn with_refresh<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: Fn(Session) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let replacement = match op(self.current()).await {
            Err(Error::MessageQueueTokenExpired) => {
                tracing::info!(scale_set_id = self.scale_set_id, "message queue token expired; refreshing the session");
                self.client.refresh_session(self.scale_set_id, &self.current().session_id).await?
            }
            Err(Error::SessionNotFound(why)) => {
                tracing::warn!(scale_set_id = self.scale_set_id, %why, "the message session was dropped; opening a new one");
                self.client.create_session(self.scale_set_id, &self.owner).await?
            }
            other => return other,
        };
        *self.session.lock().unwrap_or_else(|e| e.into_inner()) = replacement.clone();
        op(replacement).await
    }

    /// Long-polls for the next message after `last_message_id`, advertising `max_capacity`.
    ///
    /// # Errors
    /// HTTP and decoding errors; a token that stays expired after a refresh.
    pub async fn get_message(&self, last_message_id: i64, max_capacity: u32) -> Result<Option<Message>> {
        self.with_refresh(|s| async move { self.client.get_message(&s, last_message_id, max_capacity).await }).await
    }

    /// Acknowledges a message.
    ///
    /// # Errors
    /// HTTP errors.
    pub async fn delete_message(&self, message_id: i64) -> Result<()> {
        self.with_refresh(|s| async move { self.client.delete_message(&s, message_id).await }).await
    }

    /// Acquires `JobAvailable` jobs.
    ///
    /// # Errors
    /// HTTP errors.
    pub async fn acquire_jobs(&self, request_ids: &[i64]) -> Result<Vec<i64>> {
        self.with_refresh(|s| async move {
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
