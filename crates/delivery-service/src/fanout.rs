//! Which server gets which message: the commit (without Welcomes) to every participating
//! server, each Welcome only to the servers of the clients it adds, application messages and
//! other events to every participating server.

use std::collections::{BTreeMap, BTreeSet};

use mimi_codec::{ClientId, CommitRequest, MlsBytes, ServerName};

use crate::error::DsError;
use crate::group::welcome_recipients;

/// The destinations of one accepted event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FanoutPlan {
    /// Servers that get the event itself (for a commit: without Welcomes).
    pub event_to: BTreeSet<ServerName>,
    /// For a commit, the Welcomes each server gets, in the commit's order.
    pub welcomes_to: BTreeMap<ServerName, Vec<MlsBytes>>,
}

impl FanoutPlan {
    /// Everything to every server in `targets` (application messages, proposals,
    /// participation events).
    pub fn broadcast(targets: BTreeSet<ServerName>) -> Self {
        FanoutPlan {
            event_to: targets,
            welcomes_to: BTreeMap::new(),
        }
    }

    /// A commit: the commit to `targets`; each Welcome to the servers of the added clients
    /// it is encrypted to (`added` maps each added client to its KeyPackageRef).
    pub fn for_commit(
        targets: BTreeSet<ServerName>,
        commit: &CommitRequest,
        added: &[(ClientId, Vec<u8>)],
    ) -> Result<Self, DsError> {
        let mut welcomes_to: BTreeMap<ServerName, Vec<MlsBytes>> = BTreeMap::new();
        for welcome in &commit.welcomes {
            let recipients = welcome_recipients(welcome.as_slice())?;
            let servers: BTreeSet<ServerName> = added
                .iter()
                .filter(|(_, r)| recipients.contains(r))
                .map(|(c, _)| c.user().server())
                .collect();
            for server in servers {
                welcomes_to.entry(server).or_default().push(welcome.clone());
            }
        }
        Ok(FanoutPlan {
            event_to: targets,
            welcomes_to,
        })
    }

    /// Every server that gets anything.
    pub fn destinations(&self) -> BTreeSet<ServerName> {
        self.event_to
            .iter()
            .chain(self.welcomes_to.keys())
            .cloned()
            .collect()
    }
}
