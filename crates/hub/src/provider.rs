//! The composition root: a [`Provider`] is this server's parts, built over one shared
//! [`Context`] — the room engine ([`Rooms`]), the accounts and directory ([`Accounts`]), the
//! inbox ([`Inbox`]) and check-invite ([`CheckInvite`]) — and nothing else. The federation
//! endpoints (`federation`), the client API (`api`) and the outbox (`outbox`) reach the
//! parts through it.

use std::sync::Arc;

use mimi_codec::ServerName;
use tokio::sync::Notify;

use crate::accounts::Accounts;
use crate::check_invite::CheckInvite;
use crate::context::{Context, Settings};
use crate::identity::HubIdentity;
use crate::inbox::Inbox;
use crate::limits::Limiter;
use crate::peers::Peers;
use crate::rooms::Rooms;
use crate::storage::{Change, Storage};

/// Everything a provider is built from.
pub struct ProviderParts {
    /// This server's name.
    pub server_name: ServerName,
    /// Its storage.
    pub storage: Arc<dyn Storage>,
    /// Its calls to other servers ([`crate::peers::HttpsPeers`] in a running server).
    pub peers: Arc<dyn Peers>,
    /// Its MLS identity as a hub.
    pub identity: HubIdentity,
    /// Its settings.
    pub settings: Settings,
}

/// One provider's server: its parts (see the module documentation).
pub struct Provider {
    ctx: Arc<Context>,
    rooms: Rooms,
    accounts: Arc<Accounts>,
    inbox: Arc<Inbox>,
    check_invite: Arc<CheckInvite>,
    outbox: Arc<Notify>,
    retry_now: crate::outbox::RetryNow,
    limiter: Limiter,
    franking: Arc<crate::v06::franking::HubFranking>,
    rooms06: crate::v06::rooms::Rooms06,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.ctx.server_name)
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// A provider built from its parts.
    pub fn new(parts: ProviderParts) -> Arc<Provider> {
        let ctx = Arc::new(Context {
            server_name: parts.server_name,
            storage: parts.storage,
            peers: parts.peers,
            settings: parts.settings,
            metrics: Arc::new(crate::metrics::Metrics::new()),
        });

        let check_invite = Arc::new(CheckInvite::new(Arc::clone(&ctx)));
        let outbox = Arc::new(Notify::new());
        let franking = Arc::clone(parts.identity.franking());
        // Other instances on the same storage wake this one's outbox workers and
        // long-polling reads (weakly held: the storage must not keep the parts alive).
        let accounts = Arc::new(Accounts::new(Arc::clone(&ctx)));
        let inbox = Arc::new(Inbox::new(Arc::clone(&ctx), Arc::clone(&accounts)));
        let (wake_outbox, wake_inbox) = (Arc::downgrade(&outbox), Arc::downgrade(&inbox));
        let tokens = Arc::downgrade(&accounts);
        ctx.storage.watch(Box::new(move |change| match change {
            Change::Outbox => {
                if let Some(outbox) = wake_outbox.upgrade() {
                    outbox.notify_waiters();
                }
            }
            Change::Inbox => {
                if let Some(inbox) = wake_inbox.upgrade() {
                    inbox.items_added();
                }
            }
            Change::Clients => {
                if let Some(accounts) = tokens.upgrade() {
                    accounts.forget_tokens();
                }
            }
        }));
        let rooms = Rooms::new(
            Arc::clone(&ctx),
            parts.identity,
            Arc::clone(&inbox),
            Arc::clone(&check_invite),
            Arc::clone(&outbox),
        );
        Arc::new(Provider {
            limiter: Limiter::new(&ctx.settings.rate_limits),
            accounts,
            ctx,
            rooms,
            inbox,
            check_invite,
            outbox,
            retry_now: crate::outbox::RetryNow::default(),
            franking,
            rooms06: crate::v06::rooms::Rooms06::default(),
        })
    }

    /// This server's name.
    pub fn server_name(&self) -> &ServerName {
        &self.ctx.server_name
    }

    /// The shared context.
    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// The storage.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.ctx.storage
    }

    /// The rate limits' buckets.
    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    /// The lock of the -06 rooms.
    pub fn rooms06(&self) -> &crate::v06::rooms::Rooms06 {
        &self.rooms06
    }

    /// The room engine.
    pub fn rooms(&self) -> &Rooms {
        &self.rooms
    }

    /// Accounts, key packages and the directory.
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// The local clients' inboxes.
    pub fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    /// Check-invite.
    pub fn invites(&self) -> &CheckInvite {
        &self.check_invite
    }

    /// The outbox's "retry a destination now" signals (the admin interface).
    pub fn retry_now(&self) -> &crate::outbox::RetryNow {
        &self.retry_now
    }

    /// What this provider measures.
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.ctx.metrics
    }

    /// The -06 franking keys (the hub's `frank`, the `franking_agent` of its rooms).
    pub fn franking(&self) -> &crate::v06::franking::HubFranking {
        &self.franking
    }

    /// Notified whenever outbox entries become durable.
    pub fn outbox_notify(&self) -> Arc<Notify> {
        Arc::clone(&self.outbox)
    }
}
