//! The provider's metrics, in the Prometheus/OpenMetrics text format, with the
//! `prometheus-client` crate: one [`Metrics`] per provider (in its [`crate::context::Context`]),
//! counters and histograms that the parts record as things happen, and gauges that
//! [`Metrics::encode`] reads from storage and the room engine at scrape time (outbox depth
//! and age, rooms loaded, open connections).
//!
//! Why `prometheus-client` and not `metrics` + `metrics-exporter-prometheus`: it keeps one
//! registry per provider (several providers live in one test process; the `metrics` facade
//! is one global recorder), and it encodes to a `String` on demand, so the admin listener
//! serves it without an exporter's own HTTP server.
//!
//! Labels are bounded: peers are server names the transport authenticated, rule labels
//! are rule IDs (`DS-…`, `SIG-…`) or error-code names, endpoints are a fixed set.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mimi_codec::{EventError, ServerName};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::storage::{MAX_READ_LIMIT, Storage, StorageError};

/// The most outbox entries counted per destination at one scrape; a deeper queue reports
/// this number (the queue is at least this deep).
pub const OUTBOX_DEPTH_SCAN_MAX: u64 = 65_536;

/// Longest rule label kept; a longer prefix is not a rule ID.
const MAX_RULE_LABEL: usize = 32;

type Labels = Vec<(&'static str, String)>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.25 ms to about 8 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// What the provider measures (see the module documentation).
///
/// Rule HUB-OBS-1 (docs/protocol-coverage.md).
pub struct Metrics {
    registry: Registry,
    events_accepted: Family<Labels, Counter>,
    events_refused: Family<Labels, Counter>,
    request_seconds: HistogramFamily,
    deliveries: Family<Labels, Counter>,
    retries: Family<Labels, Counter>,
    storage_commit_seconds: Histogram,
    outbox_depth: Family<Labels, Gauge>,
    outbox_oldest_seconds: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    rooms_loaded: Gauge,
    open_connections: Family<Labels, Gauge>,
    /// Per destination seen with a backlog: the oldest entry's id and when this process
    /// first saw it at the head of the queue.
    heads: Mutex<BTreeMap<ServerName, (u64, Instant)>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// The outbox of one destination, as [`Metrics::outbox`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxStatus {
    /// The destination.
    pub destination: ServerName,
    /// Entries waiting (at most [`OUTBOX_DEPTH_SCAN_MAX`]).
    pub depth: u64,
    /// The oldest waiting entry's id.
    pub oldest_id: Option<u64>,
    /// How long this process has seen that entry at the head of the queue.
    pub oldest_age: Duration,
}

impl Metrics {
    /// Every metric, registered, at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let m = Metrics {
            events_accepted: Family::default(),
            events_refused: Family::default(),
            request_seconds: Family::new_with_constructor(latency_histogram),
            deliveries: Family::default(),
            retries: Family::default(),
            storage_commit_seconds: latency_histogram(),
            outbox_depth: Family::default(),
            outbox_oldest_seconds: Family::default(),
            rooms_loaded: Gauge::default(),
            open_connections: Family::default(),
            heads: Mutex::new(BTreeMap::new()),
            registry: Registry::default(),
        };
        registry.register(
            "mimi_events_accepted",
            "Events this server accepted as a room's hub, by the sender's server",
            m.events_accepted.clone(),
        );
        registry.register(
            "mimi_events_refused",
            "Events this server refused as a room's hub, by rule ID (or error code) and sender's server",
            m.events_refused.clone(),
        );
        registry.register(
            "mimi_request_duration_seconds",
            "Time to answer a request, by listener and endpoint",
            m.request_seconds.clone(),
        );
        registry.register(
            "mimi_outbox_deliveries",
            "Outbox entries the destination answered",
            m.deliveries.clone(),
        );
        registry.register(
            "mimi_outbox_retries",
            "Outbox sends that did not reach the destination (retried later)",
            m.retries.clone(),
        );
        registry.register(
            "mimi_storage_commit_duration_seconds",
            "Time from submitting an accepted event's storage batch until it is durable",
            m.storage_commit_seconds.clone(),
        );
        registry.register(
            "mimi_outbox_depth",
            "Outbox entries waiting, per destination",
            m.outbox_depth.clone(),
        );
        registry.register(
            "mimi_outbox_oldest_age_seconds",
            "How long the oldest waiting outbox entry has been at the head of its destination's queue",
            m.outbox_oldest_seconds.clone(),
        );
        registry.register(
            "mimi_rooms_loaded",
            "Rooms held in memory by the room engine",
            m.rooms_loaded.clone(),
        );
        registry.register(
            "mimi_open_connections",
            "Established TCP connections on each listener",
            m.open_connections.clone(),
        );
        Metrics { registry, ..m }
    }

    /// An event accepted by this server as the room's hub.
    pub fn event_accepted(&self, peer: &ServerName) {
        self.events_accepted
            .get_or_create(&vec![("peer", peer.to_string())])
            .inc();
    }

    /// An event refused by this server as the room's hub.
    pub fn event_refused(&self, peer: &ServerName, error: &EventError) {
        self.events_refused
            .get_or_create(&vec![
                ("rule", rule_label(error)),
                ("peer", peer.to_string()),
            ])
            .inc();
    }

    /// A request answered on `listener` (`federation`, `api`) by `endpoint`.
    pub fn request(&self, listener: &'static str, endpoint: &str, took: Duration) {
        self.request_seconds
            .get_or_create(&vec![
                ("listener", listener.to_string()),
                ("endpoint", endpoint.to_string()),
            ])
            .observe(took.as_secs_f64());
    }

    /// An outbox entry the destination answered.
    pub fn delivered(&self, dest: &ServerName) {
        self.deliveries
            .get_or_create(&vec![("destination", dest.to_string())])
            .inc();
    }

    /// An outbox send that did not reach the destination.
    pub fn delivery_failed(&self, dest: &ServerName) {
        self.retries
            .get_or_create(&vec![("destination", dest.to_string())])
            .inc();
    }

    /// A storage batch became durable `took` after it was submitted.
    pub fn storage_commit(&self, took: Duration) {
        self.storage_commit_seconds.observe(took.as_secs_f64());
    }

    /// The outbox per destination: what is queued, read from storage (a destination whose
    /// queue emptied since the last look reports zero once).
    pub fn outbox(&self, storage: &dyn Storage) -> Result<Vec<OutboxStatus>, StorageError> {
        let now = Instant::now();
        let mut out = Vec::new();
        let destinations = storage.outbox_destinations()?;
        let mut heads = self.heads.lock().unwrap_or_else(|p| p.into_inner());
        for dest in &destinations {
            let mut depth = 0u64;
            let mut after = 0u64;
            let mut oldest = None;
            loop {
                let page = storage.outbox_after(dest, after, MAX_READ_LIMIT)?;
                if oldest.is_none() {
                    oldest = page.first().map(|e| e.id);
                }
                depth += page.len() as u64;
                match page.last() {
                    Some(last) if page.len() == MAX_READ_LIMIT && depth < OUTBOX_DEPTH_SCAN_MAX => {
                        after = last.id;
                    }
                    _ => break,
                }
            }
            let age = match oldest {
                Some(id) => {
                    let seen = heads.entry(dest.clone()).or_insert((id, now));
                    if seen.0 != id {
                        *seen = (id, now);
                    }
                    now.duration_since(seen.1)
                }
                None => Duration::ZERO,
            };
            out.push(OutboxStatus {
                destination: dest.clone(),
                depth,
                oldest_id: oldest,
                oldest_age: age,
            });
        }
        let emptied: Vec<ServerName> = heads
            .keys()
            .filter(|d| !destinations.contains(d))
            .cloned()
            .collect();
        for dest in emptied {
            heads.remove(&dest);
            out.push(OutboxStatus {
                destination: dest,
                depth: 0,
                oldest_id: None,
                oldest_age: Duration::ZERO,
            });
        }
        out.sort_by(|a, b| a.destination.cmp(&b.destination));
        Ok(out)
    }

    /// Update the scrape-time gauges and encode every metric in the OpenMetrics text
    /// format.
    pub fn encode(
        &self,
        outbox: &[OutboxStatus],
        rooms_loaded: usize,
        connections: &[(&'static str, Option<u64>)],
    ) -> String {
        for status in outbox {
            let labels = vec![("destination", status.destination.to_string())];
            self.outbox_depth
                .get_or_create(&labels)
                .set(i64::try_from(status.depth).unwrap_or(i64::MAX));
            self.outbox_oldest_seconds
                .get_or_create(&labels)
                .set(status.oldest_age.as_secs_f64());
        }
        self.rooms_loaded
            .set(i64::try_from(rooms_loaded).unwrap_or(i64::MAX));
        for (listener, count) in connections {
            if let Some(count) = count {
                self.open_connections
                    .get_or_create(&vec![("listener", (*listener).to_string())])
                    .set(i64::try_from(*count).unwrap_or(i64::MAX));
            }
        }
        let mut text = String::new();
        // Writing to a String does not fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// The rule label of a refusal: the rule ID its detail starts with (`DS-MLS-1: …`,
/// `SIG-…: …`), or else `code:<error code>`.
pub fn rule_label(error: &EventError) -> String {
    let detail = error.detail.as_str();
    if let Some((prefix, _)) = detail.split_once(':')
        && prefix.len() <= MAX_RULE_LABEL
        && prefix.contains('-')
        && prefix
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-')
    {
        return prefix.to_string();
    }
    format!("code:{:?}", error.code)
}

/// The established TCP connections whose local port is `port`, from the kernel's tables
/// (`/proc/net/tcp` and `/proc/net/tcp6`); `None` where they cannot be read (not Linux).
pub fn established_connections(port: u16) -> Option<u64> {
    const ESTABLISHED: &str = "01";
    let mut count = 0u64;
    let mut read_any = false;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        read_any = true;
        for line in text.lines().skip(1) {
            let mut fields = line.split_whitespace();
            let (Some(_), Some(local), Some(_), Some(state)) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let local_port = local
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) && state == ESTABLISHED {
                count += 1;
            }
        }
    }
    read_any.then_some(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mimi_codec::ErrorCode;

    #[test]
    fn rule_labels_are_rule_ids_or_codes() {
        let e = EventError::new(ErrorCode::ForbiddenByPolicy, "DS-RM-2: not allowed");
        assert_eq!(rule_label(&e), "DS-RM-2");
        let e = EventError::new(ErrorCode::NotHub, "a.example is not the hub: of x");
        assert_eq!(rule_label(&e), "code:NotHub");
    }
}
