//! [`RedbStorage`]: openmls's [`StorageProvider`] on disk, in one redb file.
//!
//! openmls hands the provider typed keys and values through serde; this module stores them
//! as JSON bytes in one redb table, `openmls`, keyed by
//! `label_len (u8) || label || json(key) || storage version (u16, big endian)`. The label
//! names the kind of value (`GroupState`, `KeyPackage`, ...), so kinds never collide, and
//! the version suffix keeps values of a later openmls storage version apart. Lists
//! (`own_leaf_nodes`, the proposal queue) are stored as one JSON array of JSON items.
//!
//! Every openmls call is one committed redb write transaction (the proposal queue's two
//! writes share one), so a crash leaves either the state before or after the call. Inside a
//! group of writes ([`RedbStorage::begin_group`], which [`crate::MlsClient`] opens around
//! each of its operations), those transactions are committed without `fsync` and the
//! group's end commits them all durably at once: one `fsync` per client operation instead of
//! one per openmls call, and a crash leaves the state before or after the whole operation. The
//! semantics follow openmls's own in-memory provider: missing lists read as empty, deleting
//! what is absent is not an error.
//!
//! A second table, `client`, holds this crate's own small records (the client ID and the
//! public key of its signature key pair), so that [`crate::MlsClient::open`] can find its
//! identity again.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use openmls_traits::storage::{CURRENT_VERSION, StorageProvider, traits};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, Table, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

const OPENMLS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("openmls");
const CLIENT: TableDefinition<&str, &[u8]> = TableDefinition::new("client");

/// A failure of the on-disk store.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database failed (I/O, corruption, locked by another process).
    #[error("database: {0}")]
    Database(#[from] redb::Error),
    /// A stored value could not be encoded or decoded.
    #[error("stored value encoding: {0}")]
    Encoding(#[from] serde_json::Error),
}

macro_rules! db_error {
    ($($t:ty),*) => {$(
        impl From<$t> for StorageError {
            fn from(e: $t) -> Self {
                StorageError::Database(e.into())
            }
        }
    )*};
}
db_error!(
    redb::SetDurabilityError,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

type Result<T> = std::result::Result<T, StorageError>;

// Labels: one per kind of value openmls stores.
const KEY_PACKAGE: &[u8] = b"KeyPackage";
const PSK: &[u8] = b"Psk";
const ENCRYPTION_KEY_PAIR: &[u8] = b"EncryptionKeyPair";
const SIGNATURE_KEY_PAIR: &[u8] = b"SignatureKeyPair";
const EPOCH_KEY_PAIRS: &[u8] = b"EpochKeyPairs";
const TREE: &[u8] = b"Tree";
const GROUP_CONTEXT: &[u8] = b"GroupContext";
const INTERIM_TRANSCRIPT_HASH: &[u8] = b"InterimTranscriptHash";
const CONFIRMATION_TAG: &[u8] = b"ConfirmationTag";
const JOIN_CONFIG: &[u8] = b"MlsGroupJoinConfig";
const OWN_LEAF_NODES: &[u8] = b"OwnLeafNodes";
const GROUP_STATE: &[u8] = b"GroupState";
const APPLICATION_EXPORT_TREE: &[u8] = b"ApplicationExportTree";
const QUEUED_PROPOSAL: &[u8] = b"QueuedProposal";
const PROPOSAL_QUEUE_REFS: &[u8] = b"ProposalQueueRefs";
const OWN_LEAF_NODE_INDEX: &[u8] = b"OwnLeafNodeIndex";
const EPOCH_SECRETS: &[u8] = b"EpochSecrets";
const RESUMPTION_PSK_STORE: &[u8] = b"ResumptionPsk";
const MESSAGE_SECRETS: &[u8] = b"MessageSecrets";

/// openmls storage (and this crate's client record) in one redb database file.
#[derive(Debug)]
pub struct RedbStorage {
    db: Database,
    /// How many groups of writes are open ([`RedbStorage::begin_group`]): while any is,
    /// writes are committed without `fsync`.
    groups: AtomicUsize,
}

fn storage_key<K: Serialize + ?Sized>(label: &[u8], key: &K) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(key)?;
    let mut out = Vec::with_capacity(1 + label.len() + json.len() + 2);
    // Labels are the short constants above, so their length fits a byte.
    out.push(u8::try_from(label.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(label);
    out.extend_from_slice(&json);
    out.extend_from_slice(&CURRENT_VERSION.to_be_bytes());
    Ok(out)
}

type OpenMlsTable<'t> = Table<'t, &'static [u8], &'static [u8]>;

fn read_list_in(table: &OpenMlsTable<'_>, key: &[u8]) -> Result<Vec<Vec<u8>>> {
    match table.get(key)? {
        Some(v) => Ok(serde_json::from_slice(v.value())?),
        None => Ok(Vec::new()),
    }
}

impl RedbStorage {
    /// Open the database file at `path`, creating it (and its tables) if absent.
    pub fn open(path: &Path) -> Result<Self> {
        let db = Database::create(path)?;
        let tx = db.begin_write()?;
        tx.open_table(OPENMLS)?;
        tx.open_table(CLIENT)?;
        tx.commit()?;
        Ok(RedbStorage {
            db,
            groups: AtomicUsize::new(0),
        })
    }

    /// Open a group of writes: until the matching [`end_group`](Self::end_group), each
    /// write is committed (visible to this process's reads) but not made durable.
    pub fn begin_group(&self) {
        self.groups.fetch_add(1, Ordering::SeqCst);
    }

    /// Close a group of writes; closing the outermost one commits every write since it
    /// opened durably (one empty transaction with `fsync`, which persists the non-durable
    /// ones before it). Call it whether the grouped operation succeeded or not: what the
    /// operation wrote stays, as it would without a group.
    pub fn end_group(&self) -> Result<()> {
        let before = self
            .groups
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .unwrap_or(0);
        if before == 1 {
            self.db.begin_write()?.commit()?;
        }
        Ok(())
    }

    /// A write transaction: durable at commit, unless a group of writes is open.
    fn begin_write(&self) -> Result<redb::WriteTransaction> {
        let mut tx = self.db.begin_write()?;
        if self.groups.load(Ordering::SeqCst) > 0 {
            tx.set_durability(Durability::None)?;
        }
        Ok(tx)
    }

    /// Run `f` on the openmls table in one write transaction and commit it.
    fn write(&self, f: impl FnOnce(&mut OpenMlsTable<'_>) -> Result<()>) -> Result<()> {
        let tx = self.begin_write()?;
        {
            let mut table = tx.open_table(OPENMLS)?;
            f(&mut table)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn put<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &self,
        label: &[u8],
        key: &K,
        value: &V,
    ) -> Result<()> {
        let key = storage_key(label, key)?;
        let value = serde_json::to_vec(value)?;
        self.write(|t| {
            t.insert(key.as_slice(), value.as_slice())?;
            Ok(())
        })
    }

    fn get<K: Serialize + ?Sized, V: DeserializeOwned>(
        &self,
        label: &[u8],
        key: &K,
    ) -> Result<Option<V>> {
        let key = storage_key(label, key)?;
        let tx = self.db.begin_read()?;
        let table = tx.open_table(OPENMLS)?;
        match table.get(key.as_slice())? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
            None => Ok(None),
        }
    }

    fn del<K: Serialize + ?Sized>(&self, label: &[u8], key: &K) -> Result<()> {
        let key = storage_key(label, key)?;
        self.write(|t| {
            t.remove(key.as_slice())?;
            Ok(())
        })
    }

    fn append<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &self,
        label: &[u8],
        key: &K,
        item: &V,
    ) -> Result<()> {
        let key = storage_key(label, key)?;
        let item = serde_json::to_vec(item)?;
        self.write(|t| {
            let mut list = read_list_in(t, &key)?;
            list.push(item);
            let bytes = serde_json::to_vec(&list)?;
            t.insert(key.as_slice(), bytes.as_slice())?;
            Ok(())
        })
    }

    fn list<K: Serialize + ?Sized, V: DeserializeOwned>(
        &self,
        label: &[u8],
        key: &K,
    ) -> Result<Vec<V>> {
        let items: Vec<Vec<u8>> = self.get(label, key)?.unwrap_or_default();
        items
            .iter()
            .map(|item| serde_json::from_slice(item).map_err(StorageError::from))
            .collect()
    }

    /// A record of this crate's own (not openmls's).
    pub(crate) fn client_record(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(CLIENT)?;
        Ok(table.get(name)?.map(|v| v.value().to_vec()))
    }

    /// Write a record of this crate's own.
    pub(crate) fn set_client_record(&self, name: &str, value: &[u8]) -> Result<()> {
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(CLIENT)?;
            table.insert(name, value)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// How many values openmls has stored under `label` (for tests and diagnostics).
    pub fn count_label(&self, label: &str) -> Result<usize> {
        let mut prefix = Vec::with_capacity(1 + label.len());
        prefix.push(u8::try_from(label.len()).unwrap_or(u8::MAX));
        prefix.extend_from_slice(label.as_bytes());
        let tx = self.db.begin_read()?;
        let table = tx.open_table(OPENMLS)?;
        let mut n = 0;
        for entry in table.range(prefix.as_slice()..)? {
            let (k, _) = entry?;
            if !k.value().starts_with(&prefix) {
                break;
            }
            n += 1;
        }
        Ok(n)
    }
}

fn epoch_key<'a, G: Serialize, E: Serialize>(
    group: &'a G,
    epoch: &'a E,
    leaf: u32,
) -> (&'a G, &'a E, u32) {
    (group, epoch, leaf)
}

impl StorageProvider<CURRENT_VERSION> for RedbStorage {
    type Error = StorageError;

    fn write_mls_join_config<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        MlsGroupJoinConfig: traits::MlsGroupJoinConfig<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        config: &MlsGroupJoinConfig,
    ) -> Result<()> {
        self.put(JOIN_CONFIG, group_id, config)
    }

    fn append_own_leaf_node<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        LeafNode: traits::LeafNode<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        leaf_node: &LeafNode,
    ) -> Result<()> {
        self.append(OWN_LEAF_NODES, group_id, leaf_node)
    }

    fn queue_proposal<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
        QueuedProposal: traits::QueuedProposal<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        proposal_ref: &ProposalRef,
        proposal: &QueuedProposal,
    ) -> Result<()> {
        let proposal_key = storage_key(QUEUED_PROPOSAL, &(group_id, proposal_ref))?;
        let proposal = serde_json::to_vec(proposal)?;
        let refs_key = storage_key(PROPOSAL_QUEUE_REFS, group_id)?;
        let new_ref = serde_json::to_vec(proposal_ref)?;
        self.write(|t| {
            t.insert(proposal_key.as_slice(), proposal.as_slice())?;
            let mut refs = read_list_in(t, &refs_key)?;
            refs.push(new_ref);
            let refs = serde_json::to_vec(&refs)?;
            t.insert(refs_key.as_slice(), refs.as_slice())?;
            Ok(())
        })
    }

    fn write_tree<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        TreeSync: traits::TreeSync<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        tree: &TreeSync,
    ) -> Result<()> {
        self.put(TREE, group_id, tree)
    }

    fn write_interim_transcript_hash<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        InterimTranscriptHash: traits::InterimTranscriptHash<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        interim_transcript_hash: &InterimTranscriptHash,
    ) -> Result<()> {
        self.put(INTERIM_TRANSCRIPT_HASH, group_id, interim_transcript_hash)
    }

    fn write_context<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        GroupContext: traits::GroupContext<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        group_context: &GroupContext,
    ) -> Result<()> {
        self.put(GROUP_CONTEXT, group_id, group_context)
    }

    fn write_confirmation_tag<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ConfirmationTag: traits::ConfirmationTag<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        confirmation_tag: &ConfirmationTag,
    ) -> Result<()> {
        self.put(CONFIRMATION_TAG, group_id, confirmation_tag)
    }

    fn write_group_state<
        GroupState: traits::GroupState<CURRENT_VERSION>,
        GroupId: traits::GroupId<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        group_state: &GroupState,
    ) -> Result<()> {
        self.put(GROUP_STATE, group_id, group_state)
    }

    fn write_message_secrets<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        MessageSecrets: traits::MessageSecrets<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        message_secrets: &MessageSecrets,
    ) -> Result<()> {
        self.put(MESSAGE_SECRETS, group_id, message_secrets)
    }

    fn write_resumption_psk_store<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ResumptionPskStore: traits::ResumptionPskStore<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        resumption_psk_store: &ResumptionPskStore,
    ) -> Result<()> {
        self.put(RESUMPTION_PSK_STORE, group_id, resumption_psk_store)
    }

    fn write_own_leaf_index<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        LeafNodeIndex: traits::LeafNodeIndex<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        own_leaf_index: &LeafNodeIndex,
    ) -> Result<()> {
        self.put(OWN_LEAF_NODE_INDEX, group_id, own_leaf_index)
    }

    fn write_group_epoch_secrets<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        GroupEpochSecrets: traits::GroupEpochSecrets<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        group_epoch_secrets: &GroupEpochSecrets,
    ) -> Result<()> {
        self.put(EPOCH_SECRETS, group_id, group_epoch_secrets)
    }

    fn write_signature_key_pair<
        SignaturePublicKey: traits::SignaturePublicKey<CURRENT_VERSION>,
        SignatureKeyPair: traits::SignatureKeyPair<CURRENT_VERSION>,
    >(
        &self,
        public_key: &SignaturePublicKey,
        signature_key_pair: &SignatureKeyPair,
    ) -> Result<()> {
        self.put(SIGNATURE_KEY_PAIR, public_key, signature_key_pair)
    }

    fn write_encryption_key_pair<
        EncryptionKey: traits::EncryptionKey<CURRENT_VERSION>,
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
    >(
        &self,
        public_key: &EncryptionKey,
        key_pair: &HpkeKeyPair,
    ) -> Result<()> {
        self.put(ENCRYPTION_KEY_PAIR, public_key, key_pair)
    }

    fn write_encryption_epoch_key_pairs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        EpochKey: traits::EpochKey<CURRENT_VERSION>,
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        epoch: &EpochKey,
        leaf_index: u32,
        key_pairs: &[HpkeKeyPair],
    ) -> Result<()> {
        self.put(
            EPOCH_KEY_PAIRS,
            &epoch_key(group_id, epoch, leaf_index),
            key_pairs,
        )
    }

    fn write_key_package<
        HashReference: traits::HashReference<CURRENT_VERSION>,
        KeyPackage: traits::KeyPackage<CURRENT_VERSION>,
    >(
        &self,
        hash_ref: &HashReference,
        key_package: &KeyPackage,
    ) -> Result<()> {
        self.put(KEY_PACKAGE, hash_ref, key_package)
    }

    fn write_psk<
        PskId: traits::PskId<CURRENT_VERSION>,
        PskBundle: traits::PskBundle<CURRENT_VERSION>,
    >(
        &self,
        psk_id: &PskId,
        psk: &PskBundle,
    ) -> Result<()> {
        self.put(PSK, psk_id, psk)
    }

    fn mls_group_join_config<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        MlsGroupJoinConfig: traits::MlsGroupJoinConfig<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<MlsGroupJoinConfig>> {
        self.get(JOIN_CONFIG, group_id)
    }

    fn own_leaf_nodes<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        LeafNode: traits::LeafNode<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Vec<LeafNode>> {
        self.list(OWN_LEAF_NODES, group_id)
    }

    fn queued_proposal_refs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Vec<ProposalRef>> {
        self.list(PROPOSAL_QUEUE_REFS, group_id)
    }

    fn queued_proposals<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
        QueuedProposal: traits::QueuedProposal<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Vec<(ProposalRef, QueuedProposal)>> {
        let refs: Vec<ProposalRef> = self.list(PROPOSAL_QUEUE_REFS, group_id)?;
        let mut out = Vec::with_capacity(refs.len());
        for proposal_ref in refs {
            // A reference without its proposal is skipped: both are written in one
            // transaction, so this only happens if openmls removed the proposal itself.
            if let Some(proposal) = self.get(QUEUED_PROPOSAL, &(group_id, &proposal_ref))? {
                out.push((proposal_ref, proposal));
            }
        }
        Ok(out)
    }

    fn tree<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        TreeSync: traits::TreeSync<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<TreeSync>> {
        self.get(TREE, group_id)
    }

    fn group_context<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        GroupContext: traits::GroupContext<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<GroupContext>> {
        self.get(GROUP_CONTEXT, group_id)
    }

    fn interim_transcript_hash<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        InterimTranscriptHash: traits::InterimTranscriptHash<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<InterimTranscriptHash>> {
        self.get(INTERIM_TRANSCRIPT_HASH, group_id)
    }

    fn confirmation_tag<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ConfirmationTag: traits::ConfirmationTag<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<ConfirmationTag>> {
        self.get(CONFIRMATION_TAG, group_id)
    }

    fn group_state<
        GroupState: traits::GroupState<CURRENT_VERSION>,
        GroupId: traits::GroupId<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<GroupState>> {
        self.get(GROUP_STATE, group_id)
    }

    fn message_secrets<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        MessageSecrets: traits::MessageSecrets<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<MessageSecrets>> {
        self.get(MESSAGE_SECRETS, group_id)
    }

    fn resumption_psk_store<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ResumptionPskStore: traits::ResumptionPskStore<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<ResumptionPskStore>> {
        self.get(RESUMPTION_PSK_STORE, group_id)
    }

    fn own_leaf_index<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        LeafNodeIndex: traits::LeafNodeIndex<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<LeafNodeIndex>> {
        self.get(OWN_LEAF_NODE_INDEX, group_id)
    }

    fn group_epoch_secrets<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        GroupEpochSecrets: traits::GroupEpochSecrets<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<GroupEpochSecrets>> {
        self.get(EPOCH_SECRETS, group_id)
    }

    fn signature_key_pair<
        SignaturePublicKey: traits::SignaturePublicKey<CURRENT_VERSION>,
        SignatureKeyPair: traits::SignatureKeyPair<CURRENT_VERSION>,
    >(
        &self,
        public_key: &SignaturePublicKey,
    ) -> Result<Option<SignatureKeyPair>> {
        self.get(SIGNATURE_KEY_PAIR, public_key)
    }

    fn encryption_key_pair<
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
        EncryptionKey: traits::EncryptionKey<CURRENT_VERSION>,
    >(
        &self,
        public_key: &EncryptionKey,
    ) -> Result<Option<HpkeKeyPair>> {
        self.get(ENCRYPTION_KEY_PAIR, public_key)
    }

    fn encryption_epoch_key_pairs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        EpochKey: traits::EpochKey<CURRENT_VERSION>,
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        epoch: &EpochKey,
        leaf_index: u32,
    ) -> Result<Vec<HpkeKeyPair>> {
        Ok(self
            .get(EPOCH_KEY_PAIRS, &epoch_key(group_id, epoch, leaf_index))?
            .unwrap_or_default())
    }

    fn key_package<
        KeyPackageRef: traits::HashReference<CURRENT_VERSION>,
        KeyPackage: traits::KeyPackage<CURRENT_VERSION>,
    >(
        &self,
        hash_ref: &KeyPackageRef,
    ) -> Result<Option<KeyPackage>> {
        self.get(KEY_PACKAGE, hash_ref)
    }

    fn psk<PskBundle: traits::PskBundle<CURRENT_VERSION>, PskId: traits::PskId<CURRENT_VERSION>>(
        &self,
        psk_id: &PskId,
    ) -> Result<Option<PskBundle>> {
        self.get(PSK, psk_id)
    }

    fn remove_proposal<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        proposal_ref: &ProposalRef,
    ) -> Result<()> {
        let refs_key = storage_key(PROPOSAL_QUEUE_REFS, group_id)?;
        let gone = serde_json::to_vec(proposal_ref)?;
        let proposal_key = storage_key(QUEUED_PROPOSAL, &(group_id, proposal_ref))?;
        self.write(|t| {
            let mut refs = read_list_in(t, &refs_key)?;
            if let Some(pos) = refs.iter().position(|r| *r == gone) {
                refs.remove(pos);
            }
            let refs = serde_json::to_vec(&refs)?;
            t.insert(refs_key.as_slice(), refs.as_slice())?;
            t.remove(proposal_key.as_slice())?;
            Ok(())
        })
    }

    fn delete_own_leaf_nodes<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<()> {
        self.del(OWN_LEAF_NODES, group_id)
    }

    fn delete_group_config<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<()> {
        self.del(JOIN_CONFIG, group_id)
    }

    fn delete_tree<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<()> {
        self.del(TREE, group_id)
    }

    fn delete_confirmation_tag<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<()> {
        self.del(CONFIRMATION_TAG, group_id)
    }

    fn write_application_export_tree<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ApplicationExportTree: traits::ApplicationExportTree<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        application_export_tree: &ApplicationExportTree,
    ) -> Result<()> {
        self.put(APPLICATION_EXPORT_TREE, group_id, application_export_tree)
    }

    fn application_export_tree<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ApplicationExportTree: traits::ApplicationExportTree<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<ApplicationExportTree>> {
        self.get(APPLICATION_EXPORT_TREE, group_id)
    }

    fn delete_application_export_tree<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ApplicationExportTree: traits::ApplicationExportTree<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<()> {
        self.del(APPLICATION_EXPORT_TREE, group_id)
    }

    fn delete_group_state<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<()> {
        self.del(GROUP_STATE, group_id)
    }

    fn delete_context<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<()> {
        self.del(GROUP_CONTEXT, group_id)
    }

    fn delete_interim_transcript_hash<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<()> {
        self.del(INTERIM_TRANSCRIPT_HASH, group_id)
    }

    fn delete_message_secrets<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<()> {
        self.del(MESSAGE_SECRETS, group_id)
    }

    fn delete_all_resumption_psk_secrets<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<()> {
        self.del(RESUMPTION_PSK_STORE, group_id)
    }

    fn delete_own_leaf_index<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<()> {
        self.del(OWN_LEAF_NODE_INDEX, group_id)
    }

    fn delete_group_epoch_secrets<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<()> {
        self.del(EPOCH_SECRETS, group_id)
    }

    fn clear_proposal_queue<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<()> {
        let refs: Vec<ProposalRef> = self.list(PROPOSAL_QUEUE_REFS, group_id)?;
        let mut keys = Vec::with_capacity(refs.len() + 1);
        for proposal_ref in &refs {
            keys.push(storage_key(QUEUED_PROPOSAL, &(group_id, proposal_ref))?);
        }
        keys.push(storage_key(PROPOSAL_QUEUE_REFS, group_id)?);
        self.write(|t| {
            for key in &keys {
                t.remove(key.as_slice())?;
            }
            Ok(())
        })
    }

    fn delete_signature_key_pair<
        SignaturePublicKey: traits::SignaturePublicKey<CURRENT_VERSION>,
    >(
        &self,
        public_key: &SignaturePublicKey,
    ) -> Result<()> {
        self.del(SIGNATURE_KEY_PAIR, public_key)
    }

    fn delete_encryption_key_pair<EncryptionKey: traits::EncryptionKey<CURRENT_VERSION>>(
        &self,
        public_key: &EncryptionKey,
    ) -> Result<()> {
        self.del(ENCRYPTION_KEY_PAIR, public_key)
    }

    fn delete_encryption_epoch_key_pairs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        EpochKey: traits::EpochKey<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        epoch: &EpochKey,
        leaf_index: u32,
    ) -> Result<()> {
        self.del(EPOCH_KEY_PAIRS, &epoch_key(group_id, epoch, leaf_index))
    }

    fn delete_key_package<KeyPackageRef: traits::HashReference<CURRENT_VERSION>>(
        &self,
        hash_ref: &KeyPackageRef,
    ) -> Result<()> {
        self.del(KEY_PACKAGE, hash_ref)
    }

    fn delete_psk<PskKey: traits::PskId<CURRENT_VERSION>>(&self, psk_id: &PskKey) -> Result<()> {
        self.del(PSK, psk_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct V(u32);

    fn open() -> (tempfile::TempDir, RedbStorage) {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStorage::open(&dir.path().join("db")).unwrap();
        (dir, s)
    }

    #[test]
    fn values_lists_and_deletes_persist_across_reopen() {
        let (dir, s) = open();
        s.put(TREE, b"g1".as_slice(), &V(7)).unwrap();
        s.append(OWN_LEAF_NODES, b"g1".as_slice(), &V(1)).unwrap();
        s.append(OWN_LEAF_NODES, b"g1".as_slice(), &V(2)).unwrap();
        s.put(TREE, b"g2".as_slice(), &V(9)).unwrap();
        s.del(TREE, b"g2".as_slice()).unwrap();
        s.del(TREE, b"absent".as_slice()).unwrap();
        drop(s);
        let s = RedbStorage::open(&dir.path().join("db")).unwrap();
        assert_eq!(s.get::<_, V>(TREE, b"g1".as_slice()).unwrap(), Some(V(7)));
        assert_eq!(s.get::<_, V>(TREE, b"g2".as_slice()).unwrap(), None);
        assert_eq!(
            s.list::<_, V>(OWN_LEAF_NODES, b"g1".as_slice()).unwrap(),
            vec![V(1), V(2)]
        );
        assert_eq!(
            s.list::<_, V>(OWN_LEAF_NODES, b"none".as_slice()).unwrap(),
            vec![]
        );
        // Same key, another label: a different value.
        assert_eq!(s.get::<_, V>(GROUP_STATE, b"g1".as_slice()).unwrap(), None);
        assert_eq!(s.count_label("Tree").unwrap(), 1);
    }

    /// A group's writes are read back inside it, and are on disk once the outermost group
    /// ends (a nested group's end does not end the outer one); an end without a begin
    /// leaves writes durable one by one.
    #[test]
    fn grouped_writes_are_visible_at_once_and_durable_when_the_group_ends() {
        let (dir, s) = open();
        s.begin_group();
        s.put(TREE, b"g1".as_slice(), &V(1)).unwrap();
        s.begin_group();
        s.append(OWN_LEAF_NODES, b"g1".as_slice(), &V(2)).unwrap();
        s.end_group().unwrap();
        assert_eq!(s.groups.load(Ordering::SeqCst), 1);
        s.put(TREE, b"g2".as_slice(), &V(3)).unwrap();
        assert_eq!(s.get::<_, V>(TREE, b"g1".as_slice()).unwrap(), Some(V(1)));
        s.end_group().unwrap();
        assert_eq!(s.groups.load(Ordering::SeqCst), 0);
        drop(s);
        let s = RedbStorage::open(&dir.path().join("db")).unwrap();
        assert_eq!(s.get::<_, V>(TREE, b"g1".as_slice()).unwrap(), Some(V(1)));
        assert_eq!(s.get::<_, V>(TREE, b"g2".as_slice()).unwrap(), Some(V(3)));
        assert_eq!(
            s.list::<_, V>(OWN_LEAF_NODES, b"g1".as_slice()).unwrap(),
            vec![V(2)]
        );
        s.end_group().unwrap();
        assert_eq!(s.groups.load(Ordering::SeqCst), 0);
        s.put(TREE, b"g3".as_slice(), &V(4)).unwrap();
        drop(s);
        let s = RedbStorage::open(&dir.path().join("db")).unwrap();
        assert_eq!(s.get::<_, V>(TREE, b"g3".as_slice()).unwrap(), Some(V(4)));
    }

    #[test]
    fn a_corrupt_value_is_an_encoding_error() {
        let (_dir, s) = open();
        s.put(TREE, b"g".as_slice(), "not a number").unwrap();
        assert!(matches!(
            s.get::<_, V>(TREE, b"g".as_slice()),
            Err(StorageError::Encoding(_))
        ));
    }
}
