//! The chaos suite (`mimi-interop chaos [--quick]`, `cargo xtask chaos [--quick]`): three
//! real `mimi-hub` processes (the [`crate::harness`]), a room hosted at A with members at
//! A, B and C, senders at A and B that record every message their provider acknowledged,
//! and faults while they send: `kill -9` of the hub (restarted on the same storage),
//! `kill -9` of a follower, a follower stopped for a while, answers lost between B and the
//! hub (a TCP proxy this suite runs, named in B's `[peers]`), and a damaged, truncated or
//! missing database at start. Afterwards every receiving client (one per provider) syncs
//! its inbox until it holds every acknowledged message, and the suite counts, per
//! scenario: acknowledged, lost, duplicated, out of order, undecryptable, and the time to
//! catch up. It ends with `N passed, N failed`.
//!
//! Processes are stopped by their handle, never by name.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mimi_client::inbox::Outcome;
use mimi_client::messages::Compose;
use mimi_codec::{JoinRule, RoomId, UserId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::harness::{Network, NetworkOptions, PROVIDER_NAMES};
use crate::scenarios::Summary;
use crate::world::{Device, Failure, POLL_INTERVAL, StepExt, World};

/// How long receivers may take to catch up once the faults are over.
pub const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(120);
/// Pause between two messages of one sender.
pub const SEND_INTERVAL: Duration = Duration::from_millis(100);
/// Share of the hub's answers (per cent) the proxy drops in the lost-answers scenario.
pub const DROP_PERCENT: u64 = 20;

/// How hard a run is.
#[derive(Debug, Clone, Copy)]
pub struct Intensity {
    /// How long the senders send in each scenario.
    pub load: Duration,
    /// `kill -9` of the hub during the load.
    pub hub_kills: u32,
    /// `kill -9` of a follower during the load.
    pub follower_kills: u32,
    /// How long the stopped follower stays down.
    pub follower_down: Duration,
}

/// `--quick` (CI): a few minutes in all.
pub const QUICK: Intensity = Intensity {
    load: Duration::from_secs(10),
    hub_kills: 2,
    follower_kills: 2,
    follower_down: Duration::from_secs(5),
};

/// The full run recorded in docs/reliability.md.
pub const FULL: Intensity = Intensity {
    load: Duration::from_secs(60),
    hub_kills: 10,
    follower_kills: 6,
    follower_down: Duration::from_secs(60),
};

/// The counts of one scenario.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Messages the senders' providers acknowledged.
    pub acknowledged: usize,
    /// Acknowledged messages missing at a receiver (summed over receivers).
    pub lost: usize,
    /// Extra copies of a message at a receiver.
    pub duplicated: usize,
    /// Messages received after a later one of the same sender.
    pub out_of_order: usize,
    /// Inbox items a receiver could not decrypt or apply (a resent event stored twice
    /// shows up here: its secret was already used).
    pub undecryptable: usize,
    /// From the end of the faults until every receiver held every acknowledged message.
    pub catch_up: Option<Duration>,
    /// When the last message of the hub's own user (Alice, at A) was acknowledged.
    pub last_ack: Option<Instant>,
    /// Whether the system acknowledged messages again after the fault (full disk).
    pub recovered: bool,
    /// Anything else to report.
    pub notes: Vec<String>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            acknowledged: 0,
            lost: 0,
            duplicated: 0,
            out_of_order: 0,
            undecryptable: 0,
            catch_up: None,
            last_ack: None,
            recovered: true,
            notes: Vec::new(),
        }
    }
}

impl Tally {
    fn clean(&self) -> bool {
        self.recovered
            && self.acknowledged > 0
            && self.lost == 0
            && self.duplicated == 0
            && self.out_of_order == 0
            && self.undecryptable == 0
            && self.catch_up.is_some()
    }
}

/// What a scenario came to.
#[derive(Debug)]
enum Verdict {
    Done(Tally),
    Skipped(String),
}

/// The faults of a scenario, run on the network during the load; their notes.
type FaultFuture<'n> = std::pin::Pin<Box<dyn Future<Output = Result<Vec<String>, Failure>> + 'n>>;

type ChaosFuture<'a> = std::pin::Pin<Box<dyn Future<Output = Result<Verdict, Failure>> + 'a>>;

struct Chaos {
    name: &'static str,
    run: for<'a> fn(&'a Path, Intensity) -> ChaosFuture<'a>,
}

const CHAOS: &[Chaos] = &[
    Chaos {
        name: "hub-kill",
        run: |b, i| Box::pin(hub_kill(b, i)),
    },
    Chaos {
        name: "follower-kill",
        run: |b, i| Box::pin(follower_kill(b, i)),
    },
    Chaos {
        name: "follower-stopped",
        run: |b, i| Box::pin(follower_stopped(b, i)),
    },
    Chaos {
        name: "lost-answers",
        run: |b, i| Box::pin(lost_answers(b, i)),
    },
    Chaos {
        name: "full-disk",
        run: |b, i| Box::pin(full_disk(b, i)),
    },
    Chaos {
        name: "damaged-database",
        run: |b, _| Box::pin(damaged_database(b)),
    },
];

/// Run every scenario; print one line per scenario and `N passed, N failed`.
pub async fn run_chaos(binary: &Path, intensity: Intensity) -> Summary {
    let mut summary = Summary::default();
    for chaos in CHAOS {
        let started = Instant::now();
        let outcome = (chaos.run)(binary, intensity).await;
        let took = started.elapsed().as_secs_f64();
        match outcome {
            Ok(Verdict::Done(t)) => {
                let line = format!(
                    "{}: acknowledged {}, lost {}, duplicated {}, out of order {}, undecryptable {}, catch-up {} ({took:.0} s){}",
                    chaos.name,
                    t.acknowledged,
                    t.lost,
                    t.duplicated,
                    t.out_of_order,
                    t.undecryptable,
                    t.catch_up
                        .map_or("never".to_owned(), |d| format!("{:.1} s", d.as_secs_f64())),
                    if t.notes.is_empty() {
                        String::new()
                    } else {
                        format!("; {}", t.notes.join("; "))
                    }
                );
                if t.clean() {
                    summary.passed += 1;
                    println!("PASS {line}");
                } else {
                    summary.failed += 1;
                    println!("FAIL {line}");
                }
            }
            Ok(Verdict::Skipped(why)) => println!("SKIP {}: {why}", chaos.name),
            Err(e) => {
                summary.failed += 1;
                println!("FAIL {}: {e} ({took:.0} s)", chaos.name);
            }
        }
    }
    println!("{} passed, {} failed", summary.passed, summary.failed);
    summary
}

/// Alice (A, the hub), Bob (B) and Cathy (C) in one room hosted at A.
struct Room {
    world: World,
    room: RoomId,
    alice: Device,
    bob: Device,
    cathy: Device,
}

async fn room(binary: &Path, options: &NetworkOptions) -> Result<Room, Failure> {
    let network = Network::start_with(binary, options).await?;
    let mut world = World::new(network, false);
    let mut alice = world.person(0, "alice", None).await?;
    let mut bob = world.person(1, "bob", None).await?;
    let mut cathy = world.person(2, "cathy", None).await?;
    let room = alice
        .client
        .create_room(JoinRule::MembersOnly)
        .await
        .step("alice creates the room")?;
    let mut epoch = 0;
    for user in [bob.user(), cathy.user()] {
        epoch = alice
            .client
            .add(&room, &user)
            .await
            .step(format!("alice adds {user}"))?;
    }
    world.wait_epoch(&mut bob, &room, epoch).await?;
    world.wait_epoch(&mut cathy, &room, epoch).await?;
    Ok(Room {
        world,
        room,
        alice,
        bob,
        cathy,
    })
}

/// What one sender did: the numbers of the messages its provider acknowledged, in order.
#[derive(Debug, Default)]
struct Sent {
    acknowledged: Vec<u64>,
    last_ack: Option<Instant>,
    refused: usize,
}

/// Send `tag-<k>` every [`SEND_INTERVAL`] until `stop`; record the acknowledged ones.
async fn sender(device: &mut Device, room: &RoomId, tag: &str, stop: &AtomicBool) -> Sent {
    let mut sent = Sent::default();
    let mut k = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let text = Compose::Text {
            text: format!("{tag}-{k}"),
            reply_to: None,
        };
        match device.client.send(room, &text).await {
            Ok(_) => {
                sent.acknowledged.push(k);
                sent.last_ack = Some(Instant::now());
            }
            Err(_) => sent.refused += 1,
        }
        k += 1;
        tokio::time::sleep(SEND_INTERVAL).await;
    }
    sent
}

/// Sync `device` until it holds every acknowledged message of every sender, at most
/// [`CATCH_UP_TIMEOUT`]; count what it holds into `tally`. Returns whether it caught up.
async fn check_receiver(
    device: &mut Device,
    room: &RoomId,
    senders: &[(&UserId, &str, &[u64])],
    tally: &mut Tally,
) -> Result<bool, Failure> {
    let deadline = Instant::now() + CATCH_UP_TIMEOUT;
    let mut undecryptable = 0;
    loop {
        // A sync may fail while a provider restarts: retry until the deadline.
        if let Ok(report) = device.client.sync().await {
            undecryptable += report
                .items
                .iter()
                .filter(|(_, o)| matches!(o, Outcome::Failed(_)))
                .count();
        }
        let messages = World::messages(device, room)?;
        let complete = senders.iter().all(|(user, tag, acked)| {
            let seen = numbers(&messages, user, tag);
            acked.iter().all(|k| seen.contains(k))
        });
        if complete || Instant::now() >= deadline {
            for (user, tag, acked) in senders {
                let (lost, duplicated, out_of_order) =
                    compare(acked, &numbers(&messages, user, tag));
                tally.lost += lost;
                tally.duplicated += duplicated;
                tally.out_of_order += out_of_order;
            }
            tally.undecryptable += undecryptable;
            return Ok(complete);
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// What a receiver `seen`, against what was `acked`: (lost, duplicated, out of order).
/// Lost: acknowledged and never seen; duplicated: copies beyond the first; out of order:
/// a message seen right after one sent later.
fn compare(acked: &[u64], seen: &[u64]) -> (usize, usize, usize) {
    let distinct: BTreeSet<u64> = seen.iter().copied().collect();
    let lost = acked.iter().filter(|k| !distinct.contains(k)).count();
    let duplicated = seen.len() - distinct.len();
    let out_of_order = seen.windows(2).filter(|w| w[1] < w[0]).count();
    (lost, duplicated, out_of_order)
}

/// The numbers of `tag-<k>` messages from `user`, in the order the device received them.
fn numbers(messages: &[(UserId, String)], user: &UserId, tag: &str) -> Vec<u64> {
    messages
        .iter()
        .filter(|(from, _)| from == user)
        .filter_map(|(_, text)| text.strip_prefix(tag)?.strip_prefix('-')?.parse().ok())
        .collect()
}

/// Alice (A) and Bob (B) send while `faults` runs (on the network) and for at least
/// `intensity.load`; then every member checks the other senders' messages.
async fn under_load<F>(
    mut r: Room,
    intensity: Intensity,
    faults: F,
) -> Result<(Tally, Network), Failure>
where
    F: for<'n> FnOnce(&'n mut Network) -> FaultFuture<'n>,
{
    let stop = AtomicBool::new(false);
    let network = &mut r.world.network;
    let (a, b, notes) = tokio::join!(
        sender(&mut r.alice, &r.room, "alice", &stop),
        sender(&mut r.bob, &r.room, "bob", &stop),
        async {
            let started = Instant::now();
            let notes = faults(network).await;
            let left = intensity.load.saturating_sub(started.elapsed());
            tokio::time::sleep(left).await;
            stop.store(true, Ordering::SeqCst);
            notes
        }
    );
    let healed = Instant::now();
    let mut tally = Tally {
        acknowledged: a.acknowledged.len() + b.acknowledged.len(),
        notes: notes?,
        last_ack: a.last_ack,
        ..Tally::default()
    };
    tally.notes.push(format!(
        "{} sends refused by the senders' providers",
        a.refused + b.refused
    ));
    let (alice, bob) = (r.alice.user(), r.bob.user());
    let from_alice = (&alice, "alice", a.acknowledged.as_slice());
    let from_bob = (&bob, "bob", b.acknowledged.as_slice());
    let mut caught_up = true;
    caught_up &= check_receiver(&mut r.alice, &r.room, &[from_bob], &mut tally).await?;
    caught_up &= check_receiver(&mut r.bob, &r.room, &[from_alice], &mut tally).await?;
    caught_up &= check_receiver(&mut r.cathy, &r.room, &[from_alice, from_bob], &mut tally).await?;
    if caught_up {
        tally.catch_up = Some(healed.elapsed());
    }
    Ok((tally, r.world.network))
}

async fn finish(tally: Tally, network: Network) -> Result<Verdict, Failure> {
    let mut tally = tally;
    let unclean = network.shutdown().await;
    if !unclean.is_empty() {
        tally
            .notes
            .push(format!("{unclean:?} did not stop cleanly on SIGTERM"));
    }
    Ok(Verdict::Done(tally))
}

/// A pause before the next fault: spread over the load.
fn spacing(intensity: Intensity, faults: u32) -> Duration {
    intensity.load / (faults + 1)
}

async fn hub_kill(binary: &Path, intensity: Intensity) -> Result<Verdict, Failure> {
    let r = room(binary, &NetworkOptions::default()).await?;
    let (tally, network) = under_load(r, intensity, |network| {
        Box::pin(async move {
            for _ in 0..intensity.hub_kills {
                tokio::time::sleep(spacing(intensity, intensity.hub_kills)).await;
                network.kill(PROVIDER_NAMES[0]).await?;
                network.restart(PROVIDER_NAMES[0]).await?;
            }
            Ok(vec![format!("hub killed {} times", intensity.hub_kills)])
        })
    })
    .await?;
    finish(tally, network).await
}

async fn follower_kill(binary: &Path, intensity: Intensity) -> Result<Verdict, Failure> {
    let r = room(binary, &NetworkOptions::default()).await?;
    let (tally, network) = under_load(r, intensity, |network| {
        Box::pin(async move {
            for i in 0..intensity.follower_kills {
                // Alternately the sending follower (B) and the receiving one (C).
                let victim = PROVIDER_NAMES[1 + (i as usize % 2)];
                tokio::time::sleep(spacing(intensity, intensity.follower_kills)).await;
                network.kill(victim).await?;
                network.restart(victim).await?;
            }
            Ok(vec![format!(
                "followers killed {} times",
                intensity.follower_kills
            )])
        })
    })
    .await?;
    finish(tally, network).await
}

async fn follower_stopped(binary: &Path, intensity: Intensity) -> Result<Verdict, Failure> {
    let r = room(binary, &NetworkOptions::default()).await?;
    let (tally, network) = under_load(r, intensity, |network| {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let clean = network.stop(PROVIDER_NAMES[2]).await?;
            tokio::time::sleep(intensity.follower_down).await;
            network.restart(PROVIDER_NAMES[2]).await?;
            Ok(vec![format!(
                "C stopped for {} s (clean exit: {clean})",
                intensity.follower_down.as_secs()
            )])
        })
    })
    .await?;
    finish(tally, network).await
}

async fn lost_answers(binary: &Path, intensity: Intensity) -> Result<Verdict, Failure> {
    let proxy = AnswerDropper::bind().await?;
    let mut options = NetworkOptions::default();
    options.peer_addresses.insert(
        (PROVIDER_NAMES[1].to_owned(), PROVIDER_NAMES[0].to_owned()),
        proxy.addr,
    );
    let r = room(binary, &options).await;
    let r = match r {
        Ok(r) => r,
        Err(e) => {
            proxy.task.abort();
            return Err(e);
        }
    };
    let target = r
        .world
        .network
        .provider(PROVIDER_NAMES[0])?
        .federation_addr();
    // Set-up went through the proxy without dropping; now it drops.
    proxy.start_dropping(target);
    let dropped = proxy.dropped.clone();
    let outcome = under_load(r, intensity, |_| Box::pin(async { Ok(Vec::new()) })).await;
    proxy.task.abort();
    let (mut tally, network) = outcome?;
    tally.notes.push(format!(
        "{} of the hub's answers to B dropped after the request was forwarded",
        dropped.load(Ordering::SeqCst)
    ));
    finish(tally, network).await
}

/// A TCP proxy in front of the hub's federation port: it forwards every request and, once
/// dropping, cuts a connection instead of forwarding the hub's bytes [`DROP_PERCENT`] per
/// cent of the time (the request reached the hub; its answer is lost).
struct AnswerDropper {
    addr: std::net::SocketAddr,
    target: Arc<std::sync::OnceLock<std::net::SocketAddr>>,
    dropping: Arc<AtomicBool>,
    dropped: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl AnswerDropper {
    async fn bind() -> Result<AnswerDropper, Failure> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| harness_io("the proxy's listener", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| harness_io("the proxy's address", e))?;
        let target = Arc::new(std::sync::OnceLock::new());
        let dropping = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(proxy_loop(
            listener,
            target.clone(),
            dropping.clone(),
            dropped.clone(),
        ));
        Ok(AnswerDropper {
            addr,
            target,
            dropping,
            dropped,
            task,
        })
    }

    fn start_dropping(&self, target: std::net::SocketAddr) {
        let _ = self.target.set(target);
        self.dropping.store(true, Ordering::SeqCst);
    }
}

fn harness_io(what: &str, source: std::io::Error) -> Failure {
    Failure::Harness(crate::harness::HarnessError::Io {
        path: what.into(),
        source,
    })
}

async fn proxy_loop(
    listener: TcpListener,
    target: Arc<std::sync::OnceLock<std::net::SocketAddr>>,
    dropping: Arc<AtomicBool>,
    dropped: Arc<AtomicUsize>,
) {
    let seed = AtomicU64::new(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 | 1),
    );
    let seed = Arc::new(seed);
    while let Ok((client, _)) = listener.accept().await {
        // Before the hub's address is known (set-up), connections wait for it.
        let target = target.clone();
        let (dropping, dropped, seed) = (dropping.clone(), dropped.clone(), seed.clone());
        tokio::spawn(async move {
            let addr = loop {
                if let Some(addr) = target.get() {
                    break *addr;
                }
                tokio::time::sleep(POLL_INTERVAL).await;
            };
            let Ok(server) = TcpStream::connect(addr).await else {
                return;
            };
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let upstream = tokio::spawn(async move {
                let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                let _ = server_write.shutdown().await;
            });
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match server_read.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if dropping.load(Ordering::SeqCst) && random(&seed) % 100 < DROP_PERCENT {
                    dropped.fetch_add(1, Ordering::SeqCst);
                    break;
                }
                if client_write.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            upstream.abort();
        });
    }
}

/// xorshift64: enough to pick which answers to drop.
fn random(state: &AtomicU64) -> u64 {
    let mut x = state.load(Ordering::SeqCst);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    state.store(x, Ordering::SeqCst);
    x
}

/// Size of the filesystem the full-disk scenario puts the hub's database on.
pub const SMALL_DISK: &str = "size=64m";

/// The hub's database on a small tmpfs (mounted when running as root; otherwise the
/// scenario is skipped): during the load the disk is filled until a write fails with
/// `ENOSPC`, kept full for a while, then freed; the hub must go on acknowledging without a
/// restart, and nothing acknowledged may be lost.
async fn full_disk(binary: &Path, intensity: Intensity) -> Result<Verdict, Failure> {
    let mount_point = std::env::temp_dir().join(format!("mimi-chaos-disk-{}", std::process::id()));
    std::fs::create_dir_all(&mount_point).map_err(|e| harness_io("the small disk's folder", e))?;
    let mounted = tokio::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", SMALL_DISK, "tmpfs"])
        .arg(&mount_point)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success());
    if !mounted {
        let _ = std::fs::remove_dir(&mount_point);
        return Ok(Verdict::Skipped(
            "cannot mount a small tmpfs (not running as root?)".into(),
        ));
    }
    let outcome = full_disk_on(binary, intensity, &mount_point).await;
    let _ = tokio::process::Command::new("umount")
        .arg(&mount_point)
        .status()
        .await;
    let _ = std::fs::remove_dir(&mount_point);
    outcome
}

async fn full_disk_on(
    binary: &Path,
    intensity: Intensity,
    disk: &Path,
) -> Result<Verdict, Failure> {
    let mut options = NetworkOptions::default();
    options
        .storage_dirs
        .insert(PROVIDER_NAMES[0].to_owned(), disk.to_owned());
    let r = room(binary, &options).await?;
    let filler = disk.join("filler");
    let freed_at = Arc::new(std::sync::Mutex::new(None));
    let freed = freed_at.clone();
    let (mut tally, network) = under_load(r, intensity, |_| {
        Box::pin(async move {
            tokio::time::sleep(intensity.load / 4).await;
            let filled = fill(&filler).map_err(|e| harness_io("filling the disk", e))?;
            tokio::time::sleep(intensity.load / 4).await;
            std::fs::remove_file(&filler).map_err(|e| harness_io("freeing the disk", e))?;
            if let Ok(mut at) = freed.lock() {
                *at = Some(Instant::now());
            }
            Ok(vec![format!(
                "disk full (ENOSPC after {} MiB of filler) for {} s",
                filled >> 20,
                (intensity.load / 4).as_secs()
            )])
        })
    })
    .await?;
    let freed = freed_at.lock().ok().and_then(|at| *at);
    match (freed, tally.last_ack) {
        (Some(freed), Some(last)) if last > freed => {}
        _ => {
            tally.recovered = false;
            tally.notes.push(
                "the hub acknowledged nothing of its own user after the disk was freed".into(),
            );
        }
    }
    finish(tally, network).await
}

/// Write to `path` until the filesystem is full; the bytes written.
fn fill(path: &Path) -> std::io::Result<u64> {
    use std::io::Write;
    let mut file = std::fs::File::create(path)?;
    let chunk = vec![0x5Au8; 1 << 20];
    let mut written = 0u64;
    loop {
        match file.write(&chunk) {
            Ok(0) => return Ok(written),
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => return Ok(written),
            Err(e) => return Err(e),
        }
    }
}

/// A way to damage a database file, given its intact bytes.
type Damage = fn(&Path, &[u8]) -> std::io::Result<()>;

/// Stop the hub, damage its database three ways (truncated, header overwritten, deleted
/// beside its hub key) and check that each time it refuses to start with a message and
/// without a panic; then the intact database starts again.
async fn damaged_database(binary: &Path) -> Result<Verdict, Failure> {
    let r = room(binary, &NetworkOptions::default()).await?;
    let mut network = r.world.network;
    let hub = PROVIDER_NAMES[0];
    network.stop(hub).await?;
    let storage = network.provider(hub)?.storage_path().to_owned();
    let log = network.provider(hub)?.log_path().to_owned();
    let intact = std::fs::read(&storage).map_err(|e| harness_io("the hub's database", e))?;
    let mut tally = Tally::default();
    let cases: [(&str, Damage); 3] = [
        ("truncated", |p, bytes| {
            std::fs::write(p, &bytes[..bytes.len() / 2])
        }),
        ("header overwritten", |p, bytes| {
            let mut damaged = bytes.to_vec();
            for b in damaged.iter_mut().take(4096) {
                *b = 0xA5;
            }
            std::fs::write(p, damaged)
        }),
        ("missing", |p, _| std::fs::remove_file(p)),
    ];
    for (what, damage) in cases {
        damage(&storage, &intact).map_err(|e| harness_io("damaging the database", e))?;
        let before = std::fs::read_to_string(&log).map_or(0, |t| t.len());
        let started = network.restart(hub).await;
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let new = text.get(before..).unwrap_or_default();
        let last = new.lines().last().unwrap_or_default().trim().to_owned();
        match started {
            Ok(()) => {
                tally.lost += 1;
                tally
                    .notes
                    .push(format!("{what}: the hub STARTED on it (it must refuse)"));
                let _ = network.stop(hub).await;
            }
            Err(_) if new.contains("panicked") => {
                tally.lost += 1;
                tally.notes.push(format!("{what}: refused with a PANIC"));
            }
            Err(_) => tally.notes.push(format!("{what}: refused: {last}")),
        }
        std::fs::write(&storage, &intact).map_err(|e| harness_io("restoring the database", e))?;
    }
    let restart = Instant::now();
    network.restart(hub).await?;
    tally.catch_up = Some(restart.elapsed());
    // Nothing is sent in this scenario; "acknowledged" counts the three refusals checked.
    tally.acknowledged = 3;
    finish(tally, network).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receivers_are_compared_with_what_was_acknowledged() {
        assert_eq!(compare(&[0, 1, 2], &[0, 1, 2]), (0, 0, 0));
        // Unacknowledged messages that arrived anyway are no fault.
        assert_eq!(compare(&[0, 2], &[0, 1, 2]), (0, 0, 0));
        assert_eq!(compare(&[0, 1, 2], &[0, 2]), (1, 0, 0));
        assert_eq!(compare(&[0, 1, 2], &[0, 1, 1, 2]), (0, 1, 0));
        assert_eq!(compare(&[0, 1, 2], &[0, 2, 1]), (0, 0, 1));
    }

    #[test]
    fn only_the_senders_tagged_messages_count() {
        let alice: UserId = "@alice:a.mimi.test".parse().unwrap();
        let bob: UserId = "@bob:b.mimi.test".parse().unwrap();
        let messages = vec![
            (alice.clone(), "alice-0".to_owned()),
            (bob.clone(), "alice-1".to_owned()),
            (alice.clone(), "alice-x".to_owned()),
            (alice.clone(), "alicex-2".to_owned()),
            (alice.clone(), "alice-3".to_owned()),
        ];
        assert_eq!(numbers(&messages, &alice, "alice"), vec![0, 3]);
    }
}
