//! MLS at the hub: the delivery service's commit handling next to bare openmls.
//!
//! For a group of N clients (real openmls, in memory): the creator makes the group with the
//! MIMI group context (RoomState, the hub as external sender, the required capabilities,
//! exactly as `mimi-e2e` does), hands it to `mimi-ds`'s [`HubGroup`] at epoch 0, and adds
//! the other N - 1 clients in one commit that the hub stages and merges (untimed setup).
//! The timed commit is then the creator's self-update (a commit with an update path and
//! no proposals), with the GroupInfo of the new epoch, as a client sends in `ds.commit`:
//!
//! - **DS**: [`HubGroup::stage_commit`] (parse, openmls `PublicGroup::process_message`,
//!   the DS checks: queue, GroupInfo signed by the committer for the new epoch, Welcomes)
//!   then [`HubGroup::merge`];
//! - **bare**: parse the same commit bytes, `PublicGroup::process_message` and
//!   `merge_commit`, on a `PublicGroup` built with `from_external` from the same epoch.
//!
//! Each timed iteration starts from a fresh copy of the state (restored from bytes outside
//! the clock), so every iteration processes the same commit on the same epoch.

use std::time::{Duration, Instant};

use mimi_codec::{BoundedVec, ClientId, CodecError, MlsBytes, RoomState, ServerName, Wire};
use mimi_ds::{DsError, HubGroup, HubSender};
use mimi_e2e::{CIPHERSUITE, credential_for, external_sender, mimi_capabilities};
use mimi_e2e::{ExternalSender, mimi_required_capabilities};
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_memory_storage::MemoryStorage;
use openmls_rust_crypto::{OpenMlsRustCrypto, RustCrypto};

use crate::figure::{Figure, FigureError, Table};
use crate::messages;

/// Group sizes of the full benchmark.
pub const FULL_SIZES: [usize; 4] = [10, 100, 1_000, 10_000];
/// Group sizes of `--quick` (1,000 is the size the target is set at).
pub const QUICK_SIZES: [usize; 3] = [10, 100, 1_000];
/// Timed commits per run are about this many group members' worth, so that small groups
/// are timed over many commits (a single commit of a 10-client group takes microseconds)
/// and large ones over one.
pub const MEMBER_COMMITS_PER_RUN: usize = 2_000;
/// The hub's name in the benchmark group's external senders.
pub const MLS_HUB: &str = "hub.bench.test";

/// Why the MLS benchmark failed.
#[derive(Debug, thiserror::Error)]
pub enum MlsBenchError {
    /// openmls refused to build or process something of the benchmark's own making.
    #[error("openmls: {0}")]
    OpenMls(String),
    /// The delivery service refused the benchmark's group or commit.
    #[error("delivery service: {0}")]
    Ds(#[from] DsError),
    /// A MIMI value could not be built.
    #[error("codec: {0}")]
    Codec(#[from] CodecError),
    /// A figure could not be computed.
    #[error(transparent)]
    Figure(#[from] FigureError),
}

fn mls(e: impl std::fmt::Display) -> MlsBenchError {
    MlsBenchError::OpenMls(e.to_string())
}

/// One group of N clients at the point of the timed commit.
struct Fixture {
    /// The hub's state after the Add commit, as [`HubGroup::to_bytes`].
    hub_state: Vec<u8>,
    /// The bare `PublicGroup`'s storage after `from_external`.
    bare_state: Vec<(Vec<u8>, Vec<u8>)>,
    /// The group ID.
    group_id: GroupId,
    /// The timed commit bundle (commit, GroupInfo, no Welcomes).
    request: mimi_codec::CommitRequest,
}

fn to_bytes(message: &MlsMessageOut) -> Result<Vec<u8>, MlsBenchError> {
    message.tls_serialize_detached().map_err(mls)
}

fn mls_bytes(message: &MlsMessageOut) -> Result<MlsBytes, MlsBenchError> {
    Ok(MlsBytes::new(to_bytes(message)?)?)
}

fn client(index: usize) -> Result<ClientId, MlsBenchError> {
    Ok(format!("@user{index}:{MLS_HUB}#d")
        .parse()
        .map_err(CodecError::from)?)
}

fn new_signer() -> Result<SignatureKeyPair, MlsBenchError> {
    SignatureKeyPair::new(CIPHERSUITE.signature_algorithm()).map_err(mls)
}

/// The hub's external sender (a fresh signature key).
fn hub_sender() -> Result<ExternalSender, MlsBenchError> {
    let server: ServerName = MLS_HUB.parse().map_err(CodecError::from)?;
    Ok(external_sender(&server, new_signer()?.public()))
}

/// Build a group of `size` clients known to the hub, and the commit to time.
fn fixture(size: usize) -> Result<Fixture, MlsBenchError> {
    let room_state: RoomState = messages::room_state(1)?;
    let hub = hub_sender()?;
    let provider = OpenMlsRustCrypto::default();
    let signer = new_signer()?;
    let creator = CredentialWithKey {
        credential: credential_for(&client(0)?),
        signature_key: signer.public().into(),
    };
    let extensions = Extensions::from_vec(vec![
        Extension::Unknown(
            mimi_codec::mls_ids::ROOM_STATE_EXTENSION_TYPE,
            UnknownExtension(room_state.encode()?),
        ),
        Extension::ExternalSenders(vec![hub.clone()]),
        Extension::RequiredCapabilities(mimi_required_capabilities()),
    ])
    .map_err(mls)?;
    let config = MlsGroupCreateConfig::builder()
        .ciphersuite(CIPHERSUITE)
        .wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY)
        .use_ratchet_tree_extension(true)
        .capabilities(mimi_capabilities())
        .with_group_context_extensions(extensions)
        .build();
    let group_id = GroupId::from_slice(room_state.room_id.as_str().as_bytes());
    let mut group =
        MlsGroup::new_with_group_id(&provider, &signer, &config, group_id.clone(), creator)
            .map_err(mls)?;
    let group_info = to_bytes(
        &group
            .export_group_info(provider.crypto(), &signer, true)
            .map_err(mls)?,
    )?;
    let tree = group
        .export_ratchet_tree()
        .tls_serialize_detached()
        .map_err(mls)?;
    let (mut hub_group, _) = HubGroup::create(&group_info, &tree, HubSender::Exactly(&hub))?;

    // The other members' key packages (their private keys in one shared in-memory store:
    // they never process anything).
    let members = OpenMlsRustCrypto::default();
    let mut key_packages = Vec::with_capacity(size.saturating_sub(1));
    for index in 1..size {
        let member_signer = new_signer()?;
        let bundle = KeyPackage::builder()
            .leaf_node_capabilities(mimi_capabilities())
            .build(
                CIPHERSUITE,
                &members,
                &member_signer,
                CredentialWithKey {
                    credential: credential_for(&client(index)?),
                    signature_key: member_signer.public().into(),
                },
            )
            .map_err(mls)?;
        key_packages.push(bundle.key_package().clone());
    }
    if !key_packages.is_empty() {
        let add = commit(&mut group, &provider, &signer, key_packages)?;
        let staged = hub_group.stage_commit(&add)?;
        hub_group.merge(staged)?;
    }

    // The bare PublicGroup of the same epoch, from the creator's GroupInfo and tree.
    let bare_storage = MemoryStorage::default();
    let group_info = group
        .export_group_info(provider.crypto(), &signer, true)
        .map_err(mls)?;
    let verifiable = match MlsMessageIn::tls_deserialize_exact(to_bytes(&group_info)?)
        .map_err(mls)?
        .extract()
    {
        MlsMessageBodyIn::GroupInfo(gi) => gi,
        _ => {
            return Err(MlsBenchError::OpenMls(
                "exported GroupInfo is not one".into(),
            ));
        }
    };
    PublicGroup::from_external(
        &RustCrypto::default(),
        &bare_storage,
        group.export_ratchet_tree().into(),
        verifiable,
        ProposalStore::new(),
    )
    .map_err(mls)?;

    let request = commit(&mut group, &provider, &signer, Vec::new())?;
    let bare_state = bare_storage
        .values
        .read()
        .map_err(|_| MlsBenchError::OpenMls("storage lock poisoned".into()))?
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(Fixture {
        hub_state: hub_group.to_bytes()?,
        bare_state,
        group_id,
        request,
    })
}

/// A commit by the creator adding `key_packages` (or, with none, a self-update with a
/// path), merged into the creator's group, as the `ds.commit` bundle without Welcomes.
fn commit(
    group: &mut MlsGroup,
    provider: &OpenMlsRustCrypto,
    signer: &SignatureKeyPair,
    key_packages: Vec<KeyPackage>,
) -> Result<mimi_codec::CommitRequest, MlsBenchError> {
    let bundle = group
        .commit_builder()
        .propose_adds(key_packages)
        .force_self_update(true)
        .load_psks(provider.storage())
        .map_err(mls)?
        .build(provider.rand(), provider.crypto(), signer, |_| true)
        .map_err(mls)?
        .stage_commit(provider)
        .map_err(mls)?;
    let (commit, _welcome, group_info) = bundle.into_messages();
    let group_info =
        group_info.ok_or_else(|| MlsBenchError::OpenMls("no GroupInfo for the commit".into()))?;
    let request = mimi_codec::CommitRequest {
        commit: mls_bytes(&commit)?,
        group_info: mls_bytes(&group_info)?,
        welcomes: BoundedVec::new(Vec::new())?,
    };
    group.merge_pending_commit(provider).map_err(mls)?;
    Ok(request)
}

/// One timed iteration of the delivery service: stage and merge the commit.
fn time_ds(fixture: &Fixture) -> Result<Duration, MlsBenchError> {
    let mut hub = HubGroup::from_bytes(&fixture.hub_state)?;
    let start = Instant::now();
    let staged = hub.stage_commit(&fixture.request)?;
    hub.merge(staged)?;
    Ok(start.elapsed())
}

/// One timed iteration of bare openmls: parse, process and merge the same commit.
fn time_bare(fixture: &Fixture) -> Result<Duration, MlsBenchError> {
    let storage = MemoryStorage::default();
    storage
        .values
        .write()
        .map_err(|_| MlsBenchError::OpenMls("storage lock poisoned".into()))?
        .extend(fixture.bare_state.iter().cloned());
    let crypto = RustCrypto::default();
    let mut group = PublicGroup::load(&storage, &fixture.group_id)
        .map_err(mls)?
        .ok_or_else(|| MlsBenchError::OpenMls("stored group is incomplete".into()))?;
    let start = Instant::now();
    let message = MlsMessageIn::tls_deserialize_exact(fixture.request.commit.as_slice())
        .map_err(mls)?
        .try_into_protocol_message()
        .map_err(mls)?;
    let processed = group.process_message(&crypto, message).map_err(mls)?;
    let staged = match processed.into_content() {
        ProcessedMessageContent::StagedCommitMessage(staged) => *staged,
        _ => return Err(MlsBenchError::OpenMls("not a commit".into())),
    };
    group.merge_commit(&storage, staged).map_err(mls)?;
    Ok(start.elapsed())
}

/// DS and bare time per commit (mean over the run's commits), one pair per run.
fn measure_size(size: usize, runs: usize) -> Result<Vec<(f64, f64)>, MlsBenchError> {
    let fixture = fixture(size)?;
    let commits = (MEMBER_COMMITS_PER_RUN / size).max(1);
    // One unmeasured iteration of each warms caches and the allocator.
    time_ds(&fixture)?;
    time_bare(&fixture)?;
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (mut ds, mut bare) = (Duration::ZERO, Duration::ZERO);
        // Interleaved, so that a noisy moment on the machine hits both.
        for _ in 0..commits {
            ds += time_ds(&fixture)?;
            bare += time_bare(&fixture)?;
        }
        let per = |d: Duration| d.as_secs_f64() * 1000.0 / commits as f64;
        samples.push((per(ds), per(bare)));
    }
    Ok(samples)
}

/// The MLS figures for each group size: DS commit handling, bare openmls, and their ratio
/// (computed per run, then summarised).
pub fn measure_mls(sizes: &[usize], runs: usize, target: &str) -> Result<Table, MlsBenchError> {
    let mut table = Table::new(
        "MLS at the hub: validate and apply a self-update commit, delivery service vs bare openmls PublicGroup",
    );
    for &size in sizes {
        let samples = measure_size(size, runs)?;
        let ds: Vec<f64> = samples.iter().map(|s| s.0).collect();
        let bare: Vec<f64> = samples.iter().map(|s| s.1).collect();
        let ratio: Vec<f64> = samples.iter().map(|s| s.0 / s.1).collect();
        let label = group_size_label(size);
        table.measured(
            Figure::from_samples(
                format!("mls: DS commit handling, {label} clients"),
                "ms",
                &ds,
            )?,
            None,
        );
        table.measured(
            Figure::from_samples(format!("mls: bare openmls, {label} clients"), "ms", &bare)?,
            None,
        );
        table.measured(
            Figure::from_samples(
                format!("mls: DS / bare openmls, {label} clients"),
                "ratio",
                &ratio,
            )?,
            (size == 1_000).then_some(target),
        );
    }
    Ok(table)
}

/// `10000` as `10,000`.
pub fn group_size_label(size: usize) -> String {
    let digits = size.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_labelled_with_thousands_separators() {
        assert_eq!(group_size_label(10), "10");
        assert_eq!(group_size_label(1_000), "1,000");
        assert_eq!(group_size_label(100_000), "100,000");
    }

    #[test]
    fn the_ds_and_bare_openmls_accept_the_same_commit() {
        let fixture = fixture(3).unwrap();
        let mut hub = HubGroup::from_bytes(&fixture.hub_state).unwrap();
        assert_eq!(hub.epoch(), 1);
        assert_eq!(hub.members().len(), 3);
        let staged = hub.stage_commit(&fixture.request).unwrap();
        assert_eq!(staged.new_epoch, 2);
        assert!(staged.proposals.is_empty());
        hub.merge(staged).unwrap();
        assert_eq!(hub.epoch(), 2);
        time_bare(&fixture).unwrap();
    }
}
