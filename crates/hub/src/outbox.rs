//! Delivery of the durable outbox: one worker per destination server sends that server's
//! entries with `POST /send`, strictly in the order they were committed, and removes an
//! entry only once the peer answered it. While a peer is down the worker retries the same
//! entry with capped exponential backoff and full jitter; entries survive restarts because
//! they are in storage until acknowledged.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mimi_codec::{MimiMessage, ServerName, Wire};
use mimi_transport::TransportError;
use rand::Rng;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::engine::Provider;
use crate::storage::{OutboxEntry, Storage};

/// Entries one worker reads per round.
pub const OUTBOX_BATCH: usize = 64;
/// First retry delay after a failed delivery.
pub const RETRY_BASE: Duration = Duration::from_millis(200);
/// Longest retry delay.
pub const RETRY_CAP: Duration = Duration::from_secs(30);
/// How often an idle worker looks at storage even without a notification.
pub const IDLE_POLL: Duration = Duration::from_secs(5);

/// The delay before retry `n` (0-based): full jitter under `min(cap, base * 2^n)`.
pub fn retry_delay(n: u32, jitter: f64) -> Duration {
    let ceiling = RETRY_BASE
        .saturating_mul(2u32.saturating_pow(n.min(16)))
        .min(RETRY_CAP);
    ceiling.mul_f64(jitter.clamp(0.0, 1.0))
}

/// Runs the outbox workers of a provider until `shutdown` resolves.
pub async fn run(provider: Arc<Provider>, shutdown: impl std::future::Future<Output = ()>) {
    let notify = provider.outbox_notify();
    let mut workers: HashMap<ServerName, JoinHandle<()>> = HashMap::new();
    tokio::pin!(shutdown);
    loop {
        let notified = notify.notified();
        let storage = Arc::clone(provider.storage());
        let destinations = tokio::task::spawn_blocking(move || storage.outbox_destinations()).await;
        match destinations {
            Ok(Ok(dests)) => {
                for dest in dests {
                    let alive = workers.get(&dest).is_some_and(|h| !h.is_finished());
                    if !alive {
                        let p = Arc::clone(&provider);
                        let n = Arc::clone(&notify);
                        let d = dest.clone();
                        workers.insert(dest, tokio::spawn(async move { deliver(p, d, n).await }));
                    }
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e, "outbox: cannot list destinations"),
            Err(e) => tracing::error!(error = %e, "outbox: storage task failed"),
        }
        tokio::select! {
            _ = &mut shutdown => break,
            _ = notified => {}
            _ = tokio::time::sleep(IDLE_POLL) => {}
        }
    }
    for (_, handle) in workers {
        handle.abort();
    }
}

async fn peek(storage: &Arc<dyn Storage>, dest: &ServerName) -> Option<Vec<OutboxEntry>> {
    let storage = Arc::clone(storage);
    let d = dest.clone();
    match tokio::task::spawn_blocking(move || storage.outbox_peek(&d, OUTBOX_BATCH)).await {
        Ok(Ok(entries)) => Some(entries),
        Ok(Err(e)) => {
            tracing::error!(%dest, error = %e, "outbox: cannot read");
            None
        }
        Err(e) => {
            tracing::error!(%dest, error = %e, "outbox: storage task failed");
            None
        }
    }
}

/// Deliver everything queued for `dest`, forever (until aborted).
async fn deliver(provider: Arc<Provider>, dest: ServerName, notify: Arc<Notify>) {
    let storage = Arc::clone(provider.storage());
    loop {
        let notified = notify.notified();
        let entries = peek(&storage, &dest).await.unwrap_or_default();
        if entries.is_empty() {
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
            }
            continue;
        }
        for entry in entries {
            deliver_one(&provider, &dest, &entry).await;
            let storage = Arc::clone(&storage);
            let d = dest.clone();
            let id = entry.id;
            match tokio::task::spawn_blocking(move || storage.outbox_ack(&d, id)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(%dest, id, error = %e, "outbox: cannot remove entry"),
                Err(e) => tracing::error!(%dest, id, error = %e, "outbox: storage task failed"),
            }
        }
    }
}

/// Send one entry until the peer answers it: accepted, or refused (a refusal is an answer;
/// retrying it would block every later entry).
async fn deliver_one(provider: &Provider, dest: &ServerName, entry: &OutboxEntry) {
    let message = match MimiMessage::decode(&entry.message) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(%dest, id = entry.id, error = %e, "outbox: stored message does not decode; dropping it");
            return;
        }
    };
    // The event's own position in the room's history (a batch may queue a destination's
    // backlog, so the entry's batch sequence is not always the event's).
    let seq = match &message.body {
        mimi_codec::MessageBody::Fanout(f) => Some(f.sequence),
        _ => entry.seq,
    };
    let mut attempt = 0u32;
    loop {
        match provider.client().send(dest, &message).await {
            Ok(_) => {
                tracing::debug!(%dest, room = %entry.room, ?seq, "delivered");
                return;
            }
            Err(
                e @ (TransportError::Refused { .. }
                | TransportError::TooLarge
                | TransportError::Decode(_)
                | TransportError::InvalidResponse(_)),
            ) => {
                tracing::warn!(%dest, room = %entry.room, ?seq, error = %e, "peer refused a fanned-out event");
                return;
            }
            Err(e) => {
                let delay = retry_delay(attempt, rand::thread_rng().r#gen::<f64>());
                tracing::info!(%dest, room = %entry.room, ?seq, error = %e, ?delay, "delivery failed; retrying");
                tokio::time::sleep(delay).await;
                attempt = attempt.saturating_add(1);
            }
        }
    }
}
