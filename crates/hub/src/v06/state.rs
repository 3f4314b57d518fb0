//! The -06 records of this provider in [`crate::storage::Storage::v06_record`]: the consent
//! state per `ConsentScope` (requester, target, optional room).
//!
//! Keys: `consent/` + the TLS-encoded `ConsentScope` → one byte, the last `grant` (2) or
//! `revoke` (3) decided for that scope (by this provider's user, or received with
//! `updateConsent`); `request/` + scope → one byte `request` (1), removed by `cancel`.

use std::sync::Arc;

use mimi_codec::v06::{ConsentEntry, ConsentOperation, ConsentScope, IdentifierUri};
use mimi_codec::{ServerName, Wire};

use crate::context::Context;
use crate::storage::StorageError;

const CONSENT: &[u8] = b"consent/";
const REQUEST: &[u8] = b"request/";
const KP_REF: &[u8] = b"kpref/";

/// Which provider each KeyPackageRef handed out through this hub came from (§5.2: "the hub
/// provider needs to associate its KeyPackageRef with the target provider").
#[derive(Debug)]
pub struct KeyPackageSources<'a> {
    ctx: &'a Arc<Context>,
}

impl<'a> KeyPackageSources<'a> {
    /// The records over `ctx`.
    pub fn new(ctx: &'a Arc<Context>) -> Self {
        KeyPackageSources { ctx }
    }

    /// Record that the key package `hash_ref` came from `provider`.
    pub async fn record(&self, hash_ref: &[u8], provider: &ServerName) -> Result<(), StorageError> {
        let key = [KP_REF, hash_ref].concat();
        let value = provider.as_str().as_bytes().to_vec();
        self.ctx
            .blocking(move |s| s.put_v06_record(&key, Some(&value)))
            .await
    }

    /// The provider the key package `hash_ref` came from, if it went through this hub.
    pub async fn source(&self, hash_ref: &[u8]) -> Result<Option<ServerName>, StorageError> {
        let key = [KP_REF, hash_ref].concat();
        let stored = self.ctx.blocking(move |s| s.v06_record(&key)).await?;
        stored
            .map(|bytes| {
                std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| StorageError::Corrupt("a KeyPackageRef's provider".into()))
            })
            .transpose()
    }
}

/// What a scope's consent is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentState {
    /// Nothing decided.
    None,
    /// Granted.
    Granted,
    /// Revoked or denied.
    Revoked,
}

/// The consent records, over the shared context.
#[derive(Debug)]
pub struct Consents<'a> {
    ctx: &'a Arc<Context>,
}

fn key(prefix: &[u8], scope: &ConsentScope) -> Result<Vec<u8>, StorageError> {
    let encoded = scope
        .encode()
        .map_err(|e| StorageError::Corrupt(format!("consent scope: {e}")))?;
    Ok([prefix, &encoded].concat())
}

fn scope(
    requester: &IdentifierUri,
    target: &IdentifierUri,
    room: Option<&IdentifierUri>,
) -> ConsentScope {
    ConsentScope {
        requester_uri: requester.clone(),
        target_uri: target.clone(),
        room_id: room.cloned(),
    }
}

impl<'a> Consents<'a> {
    /// The records over `ctx`.
    pub fn new(ctx: &'a Arc<Context>) -> Self {
        Consents { ctx }
    }

    async fn get(&self, key: Vec<u8>) -> Result<Option<Vec<u8>>, StorageError> {
        self.ctx.blocking(move |s| s.v06_record(&key)).await
    }

    async fn put(&self, key: Vec<u8>, value: Option<Vec<u8>>) -> Result<(), StorageError> {
        self.ctx
            .blocking(move |s| s.put_v06_record(&key, value.as_deref()))
            .await
    }

    /// Record a `ConsentEntry`: a `request` is kept until `cancel`led; a `grant` or
    /// `revoke` replaces the scope's decision (and ends its pending request).
    ///
    /// Rule V06-CONSENT-1 (docs/protocol-coverage.md).
    pub async fn record(&self, entry: &ConsentEntry) -> Result<(), StorageError> {
        let scope = entry.scope();
        match entry.operation {
            ConsentOperation::Request => self.put(key(REQUEST, &scope)?, Some(vec![1])).await,
            ConsentOperation::Cancel => self.put(key(REQUEST, &scope)?, None).await,
            ConsentOperation::Grant | ConsentOperation::Revoke => {
                let value = if entry.operation == ConsentOperation::Grant {
                    2
                } else {
                    3
                };
                self.put(key(CONSENT, &scope)?, Some(vec![value])).await?;
                self.put(key(REQUEST, &scope)?, None).await
            }
        }
    }

    /// A decision of this provider's user `target`: grant (or revoke) `requester` consent to
    /// fetch its key material, for `room` or for any room.
    pub async fn decide(
        &self,
        requester: &IdentifierUri,
        target: &IdentifierUri,
        room: Option<&IdentifierUri>,
        grant: bool,
    ) -> Result<(), StorageError> {
        let value = if grant { 2 } else { 3 };
        let scope = scope(requester, target, room);
        self.put(key(CONSENT, &scope)?, Some(vec![value])).await?;
        self.put(key(REQUEST, &scope)?, None).await
    }

    /// The decision recorded for exactly this scope.
    pub async fn state(
        &self,
        requester: &IdentifierUri,
        target: &IdentifierUri,
        room: Option<&IdentifierUri>,
    ) -> Result<ConsentState, StorageError> {
        let stored = self
            .get(key(CONSENT, &scope(requester, target, room))?)
            .await?;
        Ok(match stored.as_deref() {
            None => ConsentState::None,
            Some([2]) => ConsentState::Granted,
            Some([3]) => ConsentState::Revoked,
            Some(other) => {
                return Err(StorageError::Corrupt(format!("consent state {other:?}")));
            }
        })
    }

    /// Whether a request for this scope is pending.
    pub async fn requested(
        &self,
        requester: &IdentifierUri,
        target: &IdentifierUri,
        room: Option<&IdentifierUri>,
    ) -> Result<bool, StorageError> {
        Ok(self
            .get(key(REQUEST, &scope(requester, target, room))?)
            .await?
            .is_some())
    }

    /// Whether `requester` may fetch `target`'s key material for `room`: a decision for the
    /// room wins over one for any room; `Granted` only if the deciding one is a grant.
    ///
    /// Rule V06-CONSENT-2 (docs/protocol-coverage.md).
    pub async fn granted(
        &self,
        requester: &IdentifierUri,
        target: &IdentifierUri,
        room: Option<&IdentifierUri>,
    ) -> Result<ConsentState, StorageError> {
        if room.is_some() {
            let for_room = self.state(requester, target, room).await?;
            if for_room != ConsentState::None {
                return Ok(for_room);
            }
        }
        self.state(requester, target, None).await
    }
}
