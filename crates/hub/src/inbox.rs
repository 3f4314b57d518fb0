//! The inbox: delivery of room events to this provider's own clients. It decides which
//! local clients get an event (the users on the participant list after it, those it names,
//! and those who had a client in the group before it) and adds their items to the event's
//! storage batch, so that they become durable with the event. It serves reads of a
//! client's inbox, with long polling: a read with nothing to return waits until the room
//! engine reports that new items are durable ([`Inbox::items_added`]) or the wait ends. It
//! owns the notification; it knows nothing of rooms beyond the state it is handed.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use mimi_codec::{ClientId, Sender, UserId};
use mimi_signaling::{LoggedEvent, Room};
use tokio::sync::Notify;

use crate::accounts::Accounts;
use crate::context::Context;
use crate::error::ApiError;
use crate::storage::{Batch, Payload, StorageError};

/// The inbox part (see the module documentation).
#[derive(Debug)]
pub struct Inbox {
    ctx: Arc<Context>,
    /// Whose clients a user has.
    accounts: Arc<Accounts>,
    /// Notified whenever inbox items of local clients become durable.
    added: Notify,
}

impl Inbox {
    /// The inbox over the shared context, delivering to the clients `accounts` knows.
    pub fn new(ctx: Arc<Context>, accounts: Arc<Accounts>) -> Inbox {
        Inbox {
            ctx,
            accounts,
            added: Notify::new(),
        }
    }

    /// Wake the long-polling reads: inbox items became durable.
    pub fn items_added(&self) {
        self.added.notify_waiters();
    }

    /// A client's inbox after `after`.
    pub async fn read(
        &self,
        client: &ClientId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, ApiError> {
        let c = client.clone();
        Ok(self
            .ctx
            .read(move |s| s.inbox_read(&c, after, limit))
            .await?)
    }

    /// A client's inbox after `after`, waiting up to `wait` for the first item if there is
    /// none yet (long polling: the client learns of a new item as soon as it is durable,
    /// without asking again and again).
    ///
    /// Rule HUB-API-1 (docs/protocol-coverage.md).
    pub async fn wait(
        &self,
        client: &ClientId,
        after: u64,
        limit: usize,
        wait: Duration,
    ) -> Result<Vec<(u64, Vec<u8>)>, ApiError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before reading, so that an item committed after the read wakes it.
            let added = self.added.notified();
            let items = self.read(client, after, limit).await?;
            if !items.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(items);
            }
            tokio::select! {
                _ = added => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// Queue `message` for every local client the event concerns: this server's users on
    /// the participant list after it (`room`), the users it names (sender and targets), and
    /// those who had a client in the group before it (a commit removing them must reach
    /// them).
    pub async fn queue_event(
        &self,
        batch: &mut Batch,
        room: &Room,
        logged: &LoggedEvent,
        in_group_before: BTreeSet<UserId>,
        message: &Payload,
    ) -> Result<(), StorageError> {
        let name = &self.ctx.server_name;
        let mut users: BTreeSet<UserId> = room
            .participants()
            .map(|(u, _)| u.clone())
            .filter(|u| u.server() == *name)
            .collect();
        let concerned = logged
            .changes
            .iter()
            .map(|c| c.target.clone())
            .chain(match &logged.sender {
                Sender::User(u) => Some(u.clone()),
                Sender::Server(_) => None,
            })
            .chain(in_group_before);
        users.extend(concerned.filter(|u| u.server() == *name));
        if users.is_empty() {
            return Ok(());
        }
        // From the accounts' cache; at most one trip to storage for all of them.
        let clients = self.accounts.clients_of(users).await?;
        for client in clients {
            batch.inbox.push((client, message.clone()));
        }
        Ok(())
    }
}
