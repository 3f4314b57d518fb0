//! What a scenario works with: the running [`Network`], real clients registered at its
//! providers (state folders in the network's temporary folder), the narration a person can
//! follow, and the checks that turn a wrong outcome into a [`Failure`].

use std::fmt::Display;
use std::path::PathBuf;
use std::time::Duration;

use mimi_client::api::{Api, Discovered, RegisterRequest};
use mimi_client::http::{Endpoint, Https};
use mimi_client::inbox::Outcome;
use mimi_client::{Client, ClientError, Registration};
use mimi_codec::{
    ErrorCode, Event, MessageBody, ParticipationState, ParticipationStateChange, RoomId, RoomState,
    UserEvent, UserId,
};

use crate::harness::{HarnessError, Network, PROVIDER_NAMES};

/// How long a client waits for the hub's fan-out to reach its provider.
pub const FANOUT_TIMEOUT: Duration = Duration::from_secs(20);
/// How often a waiting client polls its inbox.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Key packages each new client publishes (plus one last-resort package).
pub const KEY_PACKAGES_PER_CLIENT: usize = 4;

/// Why a scenario failed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The harness could not run the providers.
    #[error("harness: {0}")]
    Harness(#[from] HarnessError),
    /// A client operation that should have succeeded failed.
    #[error("{step}: {source}")]
    Client {
        /// What was being done.
        step: String,
        /// The client's error.
        #[source]
        source: ClientError,
    },
    /// An outcome differs from the expected one.
    #[error("{what}: expected {expected}, got {actual}")]
    Mismatch {
        /// What was checked.
        what: String,
        /// The expected outcome.
        expected: String,
        /// The actual outcome.
        actual: String,
    },
    /// An inbox item failed MLS or content checks at a client.
    #[error("{device} could not process an inbox item: {detail}")]
    Inbox {
        /// The device.
        device: String,
        /// The client's error.
        detail: String,
    },
    /// Something that should have happened did not, within [`FANOUT_TIMEOUT`].
    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        timeout: Duration,
    },
}

/// Attach what was being done to a client error.
pub trait StepExt<T> {
    /// `Err(e)` becomes [`Failure::Client`] naming `step`.
    fn step(self, step: impl Display) -> Result<T, Failure>;
}

impl<T> StepExt<T> for Result<T, ClientError> {
    fn step(self, step: impl Display) -> Result<T, Failure> {
        self.map_err(|source| Failure::Client {
            step: step.to_string(),
            source,
        })
    }
}

/// Check `actual == expected`.
pub fn expect_eq<T: PartialEq + std::fmt::Debug>(
    what: impl Display,
    actual: T,
    expected: T,
) -> Result<(), Failure> {
    if actual == expected {
        Ok(())
    } else {
        Err(Failure::Mismatch {
            what: what.to_string(),
            expected: format!("{expected:?}"),
            actual: format!("{actual:?}"),
        })
    }
}

/// Check that the room's hub (or the invitee's server, through it) refused with exactly
/// `code`, and, when `rule` is given, that the refusal names that rule first.
pub fn expect_refused<T: std::fmt::Debug>(
    what: impl Display,
    result: Result<T, ClientError>,
    code: ErrorCode,
    rule: Option<&str>,
) -> Result<String, Failure> {
    let expected = match rule {
        Some(r) => format!("refused with {code:?} ({r})"),
        None => format!("refused with {code:?}"),
    };
    match result {
        Err(ClientError::Refused(e))
            if e.code == code && rule.is_none_or(|r| e.detail.as_str().starts_with(r)) =>
        {
            Ok(e.detail.as_str().to_owned())
        }
        other => Err(Failure::Mismatch {
            what: what.to_string(),
            expected,
            actual: format!("{other:?}"),
        }),
    }
}

/// A person's device: a registered [`Client`] and a short label for the narration.
#[derive(Debug)]
pub struct Device {
    /// The client.
    pub client: Client,
    /// `alice@a` or `bob@b/phone`.
    pub label: String,
    /// Its state folder.
    pub dir: PathBuf,
}

impl Device {
    /// The user.
    pub fn user(&self) -> UserId {
        self.client.user_id().clone()
    }

    /// The client API with this device's token, for the requests the client library does
    /// not make on its own (raw events, hub removals).
    pub fn api(&self) -> Result<(Api, Https), Failure> {
        let config = self.client.config();
        let endpoint =
            Endpoint::parse(&config.api, config.connect.as_deref()).step("client API endpoint")?;
        let https = Https::new(endpoint, &config.ca).step("client API TLS")?;
        Ok((Api::new(https.clone(), Some(config.token.clone())), https))
    }
}

/// The running providers and the scenario's narration.
#[derive(Debug)]
pub struct World {
    /// The three providers.
    pub network: Network,
    verbose: bool,
    devices: u32,
    /// (provider, room, sequence) of the fully-formed events already narrated.
    narrated: std::sync::Mutex<std::collections::BTreeSet<(String, RoomId, u64)>>,
}

/// The provider's short letter in labels (`a` for `a.mimi.test`).
fn letter(provider: &str) -> &str {
    provider.split('.').next().unwrap_or(provider)
}

impl World {
    /// A world over a started network; `verbose` prints every step.
    pub fn new(network: Network, verbose: bool) -> World {
        World {
            network,
            verbose,
            devices: 0,
            narrated: std::sync::Mutex::new(std::collections::BTreeSet::new()),
        }
    }

    /// Print a narration line (verbose mode).
    pub fn say(&self, line: impl Display) {
        if self.verbose {
            println!("  {line}");
        }
    }

    /// The server name of provider `index` (0 = A, 1 = B, 2 = C).
    pub fn provider_name(index: usize) -> &'static str {
        PROVIDER_NAMES[index % PROVIDER_NAMES.len()]
    }

    /// Register `localpart`'s first device at provider `index` with a discovery handle,
    /// and publish its key packages.
    pub async fn person(
        &mut self,
        index: usize,
        localpart: &str,
        handle: Option<&str>,
    ) -> Result<Device, Failure> {
        self.device(index, localpart, "laptop", handle, None).await
    }

    /// Register a further device of the user of `existing` (authorized by its token).
    pub async fn second_device(
        &mut self,
        existing: &Device,
        device: &str,
    ) -> Result<Device, Failure> {
        let user = existing.user();
        let server = user.server();
        let index = PROVIDER_NAMES
            .iter()
            .position(|n| *n == server.as_str())
            .unwrap_or(0);
        // `@localpart:server`
        let localpart = user
            .as_str()
            .trim_start_matches('@')
            .split(':')
            .next()
            .unwrap_or_default()
            .to_owned();
        self.device(index, &localpart, device, None, Some(existing.dir.clone()))
            .await
    }

    async fn device(
        &mut self,
        index: usize,
        localpart: &str,
        device: &str,
        handle: Option<&str>,
        token_from: Option<PathBuf>,
    ) -> Result<Device, Failure> {
        let provider = self.network.provider(Self::provider_name(index))?;
        self.devices += 1;
        let dir = self
            .network
            .dir()
            .join("clients")
            .join(format!("{}-{localpart}-{device}", self.devices));
        let registration = Registration {
            api: provider.api_url(),
            connect: Some(provider.api_addr().to_string()),
            ca: self.network.ca_path().to_owned(),
            request: RegisterRequest {
                localpart: localpart.to_owned(),
                device: device.to_owned(),
                handle: handle.map(str::to_owned),
                ..RegisterRequest::default()
            },
            token_from: token_from.clone(),
        };
        let name = provider.name().to_string();
        let label = match token_from {
            Some(_) => format!("{localpart}@{}/{device}", letter(&name)),
            None => format!("{localpart}@{}", letter(&name)),
        };
        let mut client = Client::register(&dir, registration)
            .await
            .step(format!("register {label} at {name}"))?;
        let stored = client
            .publish_key_packages(KEY_PACKAGES_PER_CLIENT, true)
            .await
            .step(format!("{label} publishes key packages"))?;
        expect_eq(
            format!("key packages stored for {label}"),
            stored,
            KEY_PACKAGES_PER_CLIENT + 1,
        )?;
        self.say(format!(
            "{label} registered at {name} as {} ({} key packages published)",
            client.config().client_id,
            stored
        ));
        Ok(Device { client, label, dir })
    }

    /// Register a user at provider `index` without a client state folder (a directory
    /// entry for discovery), with a display name.
    pub async fn directory_user(
        &self,
        index: usize,
        localpart: &str,
        handle: Option<&str>,
        display_name: &str,
    ) -> Result<UserId, ClientError> {
        let provider = self
            .network
            .provider(Self::provider_name(index))
            .map_err(|_| ClientError::UnexpectedResponse("no such provider"))?;
        let endpoint =
            Endpoint::parse(&provider.api_url(), Some(&provider.api_addr().to_string()))?;
        let api = Api::new(Https::new(endpoint, self.network.ca_path())?, None);
        let registered = api
            .register(&RegisterRequest {
                localpart: localpart.to_owned(),
                device: "laptop".to_owned(),
                handle: handle.map(str::to_owned),
                display_name: Some(display_name.to_owned()),
                ..RegisterRequest::default()
            })
            .await?;
        self.say(format!(
            "{} registered at {} with display name {display_name:?}",
            registered.user_id,
            provider.name()
        ));
        Ok(registered.user_id)
    }

    /// Narrate the fully-formed events `device`'s provider received and has not yet
    /// handed to it (each event once per provider).
    async fn narrate_inbox(&self, device: &Device) -> Result<(), Failure> {
        let (api, _) = device.api()?;
        let items = api
            .inbox(device.client.config().cursor, mimi_client::api::INBOX_PAGE)
            .await
            .step(format!("{} reads its inbox", device.label))?;
        let server = device.client.user_id().server().to_string();
        for item in items {
            let message = item
                .decode_message()
                .map_err(ClientError::from)
                .step("decode an inbox item")?;
            let MessageBody::Fanout(fanout) = &message.body else {
                continue;
            };
            let key = (server.clone(), message.room_id.clone(), fanout.sequence);
            let fresh = self
                .narrated
                .lock()
                .map(|mut seen| seen.insert(key))
                .unwrap_or(false);
            if !fresh {
                continue;
            }
            let extra = match &fanout.event {
                Event::DsCommit(c) if !c.welcomes.is_empty() => {
                    format!(" with {} Welcome(s) for its clients", c.welcomes.len())
                }
                _ => String::new(),
            };
            let hub = message.room_id.server();
            let how = if hub.as_str() == server {
                format!("{server} (hub) sequenced")
            } else {
                format!("{server} (follower) received from {hub}")
            };
            self.say(format!(
                "{how} event #{} {} by {}{extra}",
                fanout.sequence,
                fanout.event.event_type(),
                message.sender,
            ));
        }
        Ok(())
    }

    /// Fetch and process `device`'s inbox once, narrating what it decrypted or joined.
    pub async fn sync(&self, device: &mut Device) -> Result<(), Failure> {
        if self.verbose {
            self.narrate_inbox(device).await?;
        }
        let report = device
            .client
            .sync()
            .await
            .step(format!("{} syncs", device.label))?;
        for (_, outcome) in &report.items {
            match outcome {
                Outcome::Message(m) => self.say(format!(
                    "{} decrypted from {}: {:?}",
                    device.label,
                    m.sender,
                    m.text.as_deref().unwrap_or("")
                )),
                Outcome::Joined { epoch } => self.say(format!(
                    "{} joined the MLS group from its Welcome (epoch {epoch})",
                    device.label
                )),
                Outcome::CommitMerged {
                    epoch,
                    self_removed: true,
                } => self.say(format!(
                    "{} processed the commit of epoch {epoch}: this client was removed",
                    device.label
                )),
                Outcome::Failed(e) => {
                    return Err(Failure::Inbox {
                        device: device.label.clone(),
                        detail: e.to_string(),
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Sync `device` until `done` holds (the hub's fan-out reaches followers
    /// asynchronously), at most [`FANOUT_TIMEOUT`].
    pub async fn wait_until(
        &self,
        device: &mut Device,
        what: impl Display,
        mut done: impl FnMut(&mut Client) -> Result<bool, ClientError>,
    ) -> Result<(), Failure> {
        let deadline = tokio::time::Instant::now() + FANOUT_TIMEOUT;
        loop {
            self.sync(device).await?;
            if done(&mut device.client).step(format!("{} checks {what}", device.label))? {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Failure::Timeout {
                    what: format!("{}: {what}", device.label),
                    timeout: FANOUT_TIMEOUT,
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Sync `device` until its group of `room` is at `epoch`.
    pub async fn wait_epoch(
        &self,
        device: &mut Device,
        room: &RoomId,
        epoch: u64,
    ) -> Result<(), Failure> {
        let r = room.clone();
        self.wait_until(device, format!("epoch {epoch} of {room}"), move |c| {
            Ok(c.room_view(&r)?.epoch == Some(epoch))
        })
        .await
    }

    /// Sync `device` until it has decrypted a message with `text` from `from`.
    pub async fn wait_message(
        &self,
        device: &mut Device,
        room: &RoomId,
        from: &UserId,
        text: &str,
    ) -> Result<(), Failure> {
        let (r, f, t) = (room.clone(), from.clone(), text.to_owned());
        self.wait_until(
            device,
            format!("the message {text:?} from {from}"),
            move |c| {
                Ok(c.room_view(&r)?
                    .messages
                    .iter()
                    .any(|m| m.sender == f && m.text.as_deref() == Some(t.as_str())))
            },
        )
        .await
    }

    /// Sync `device` until its provider's copy of the room shows `user` in `state`
    /// (`None`: not on the participant list).
    pub async fn wait_participant(
        &self,
        device: &mut Device,
        room: &RoomId,
        user: &UserId,
        state: Option<ParticipationState>,
    ) -> Result<(), Failure> {
        let deadline = tokio::time::Instant::now() + FANOUT_TIMEOUT;
        loop {
            let (api, _) = device.api()?;
            let current = match api.room_state(room).await {
                Ok(s) => participant_state(&s, user),
                // A provider shows the room only to participants (and anyone, if public).
                Err(ClientError::Api { status: 403, .. }) if *user == device.user() => None,
                Err(e) => {
                    return Err(Failure::Client {
                        step: format!("{} reads the room state", device.label),
                        source: e,
                    });
                }
            };
            if current == state {
                return self.sync(device).await;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Failure::Mismatch {
                    what: format!(
                        "{user} at {} after {FANOUT_TIMEOUT:?}",
                        device.client.user_id().server()
                    ),
                    expected: format!("{state:?}"),
                    actual: format!("{current:?}"),
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// [`Self::wait_participant`] for `device`'s own user.
    pub async fn wait_own_state(
        &self,
        device: &mut Device,
        room: &RoomId,
        state: Option<ParticipationState>,
    ) -> Result<(), Failure> {
        let user = device.user();
        self.wait_participant(device, room, &user, state).await
    }

    /// The messages `device` decrypted in `room`: (sender, text).
    pub fn messages(device: &mut Device, room: &RoomId) -> Result<Vec<(UserId, String)>, Failure> {
        let view = device
            .client
            .room_view(room)
            .step(format!("{} reads its room log", device.label))?;
        Ok(view
            .messages
            .into_iter()
            .map(|m| (m.sender, m.text.unwrap_or_default()))
            .collect())
    }

    /// Print what the provider of `device` holds for `room` (its hub copy or follower
    /// replica): the participant list and the latest sequence number.
    pub async fn show_provider(&self, device: &Device, room: &RoomId) -> Result<(), Failure> {
        if !self.verbose {
            return Ok(());
        }
        let (api, _) = device.api()?;
        let answer = api
            .room_state_and_sequence(room)
            .await
            .step(format!("{} reads the room state", device.label))?;
        let state = answer.room_state;
        let server = device.client.user_id().server();
        let role = if room.server() == server {
            "hub"
        } else {
            "follower"
        };
        self.say(format!(
            "{server} ({role}) holds events 0..={} of the room: {}",
            answer.sequence,
            describe_participants(&state)
        ));
        Ok(())
    }

    /// Submit an `m.room.user.unsigned` change about `device`'s own user straight to the
    /// client API (so that the hub, not the client's local check, judges it).
    pub async fn unsigned(
        &self,
        device: &Device,
        room: &RoomId,
        change: ParticipationStateChange,
    ) -> Result<(), ClientError> {
        let (api, _) = device
            .api()
            .map_err(|_| ClientError::UnexpectedResponse("the client API could not be set up"))?;
        let event = Event::RoomUserUnsigned(UserEvent {
            target: device.user(),
            change,
            reason: Default::default(),
            follower_server_certificate: None,
            role: None,
        });
        api.submit(room, &event).await.map(|_| ())
    }

    /// Discover a user at `domain` from `device`.
    pub async fn discover(
        &self,
        device: &Device,
        domain: &str,
        field: &str,
        value: &str,
    ) -> Result<Discovered, Failure> {
        device
            .client
            .discover(domain, field, value)
            .await
            .step(format!(
                "{} discovers {field} {value:?} at {domain}",
                device.label
            ))
    }

    /// Check the participant list of `device`'s provider's copy of the room.
    pub async fn expect_participants(
        &self,
        device: &Device,
        room: &RoomId,
        expected: &[(&UserId, ParticipationState)],
    ) -> Result<(), Failure> {
        let (api, _) = device.api()?;
        let state = api
            .room_state(room)
            .await
            .step(format!("{} reads the room state", device.label))?;
        let mut actual: Vec<(UserId, ParticipationState)> = state
            .participants
            .iter()
            .map(|p| (p.user_id.clone(), p.state))
            .collect();
        actual.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        let mut wanted: Vec<(UserId, ParticipationState)> =
            expected.iter().map(|(u, s)| ((*u).clone(), *s)).collect();
        wanted.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        expect_eq(
            format!(
                "participants of the room at {}",
                device.client.user_id().server()
            ),
            actual,
            wanted,
        )
    }

    /// The clients in `device`'s MLS group of `room`, sorted.
    pub fn group_members(device: &mut Device, room: &RoomId) -> Result<Vec<String>, Failure> {
        let mut members: Vec<String> = device
            .client
            .mls()
            .members(room)
            .map_err(|e| Failure::Client {
                step: format!("{} lists the group's members", device.label),
                source: ClientError::E2e(e),
            })?
            .into_iter()
            .map(|(_, c)| c.to_string())
            .collect();
        members.sort();
        Ok(members)
    }
}

/// `user`'s participation state in `state`.
pub fn participant_state(state: &RoomState, user: &UserId) -> Option<ParticipationState> {
    state
        .participants
        .iter()
        .find(|p| p.user_id == *user)
        .map(|p| p.state)
}

/// `alice@a.mimi.test joined (owner), bob@b.mimi.test invited (member)`.
pub fn describe_participants(state: &RoomState) -> String {
    state
        .participants
        .iter()
        .map(|p| {
            let s = match p.state {
                ParticipationState::Join => "joined",
                ParticipationState::Invite => "invited",
                ParticipationState::Ban => "banned",
                ParticipationState::Knock => "knocking",
            };
            format!("{} {s} ({})", p.user_id, p.role)
        })
        .collect::<Vec<_>>()
        .join(", ")
}
