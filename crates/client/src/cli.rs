//! The `mimi` command line: argument parsing with `clap` ([`Args`], [`parse`]) and running
//! a command ([`run_to`], which writes each output line to an [`Output`] as it comes, as
//! text for people or as one JSON object per line for scripts). `docs/client.md` describes
//! every command, the exit codes and the JSON schema.

use std::io::{IsTerminal as _, Read as _, Write};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::{CommandFactory as _, Parser, Subcommand};
use mimi_codec::{JoinRule, ParticipationState, RoomId, UserId};
use serde_json::{Value, json};

use crate::api::{Api, RegisterRequest};
use crate::client::{Client, LISTEN_WAIT, Registration, SyncReport};
use crate::error::{ClientError, ErrorKind};
use crate::folder::{LOCK_TIMEOUT, StateLock};
use crate::http::{Endpoint, Https};
use crate::inbox::{Outcome, Skip};
use crate::messages::Compose;
use crate::store::{StoredKind, StoredMessage, message_id_hex};
use crate::view::{SHORT_ID_LEN, render_room};

/// Key packages published by default (at registration and by `publish-key-packages`).
pub const DEFAULT_KEY_PACKAGES: usize = 5;
/// How long a step runs before `mimi` says on a terminal's standard error that it waits.
pub const PROGRESS_AFTER: Duration = Duration::from_secs(1);
/// How many times in a row `listen` retries when its provider does not answer.
pub const LISTEN_RETRIES: u32 = 6;
/// The pause before `listen`'s first retry (doubled each time, at most 16 s).
pub const LISTEN_RETRY_PAUSE: Duration = Duration::from_millis(500);
/// The longest pause between two of `listen`'s retries.
pub const LISTEN_RETRY_MAX_PAUSE: Duration = Duration::from_secs(16);
/// Largest message read from standard input (`send ROOM -`).
pub const MAX_STDIN_MESSAGE: u64 = 1024 * 1024;

fn short(id: &str) -> &str {
    id.get(..SHORT_ID_LEN).unwrap_or(id)
}

// ---------------------------------------------------------------------------------------
// Arguments.

/// `mimi`'s arguments, as `clap` parses them.
#[derive(Debug, Parser)]
#[command(
    name = "mimi",
    version,
    about = "The MIMI command-line client: rooms and messages, end-to-end encrypted with MLS",
    after_help = "Exit codes: 0 ok, 1 other failure, 2 usage, 3 refused by the room's rules, \
                  4 not found, 5 network, 6 local state. See docs/client.md."
)]
pub struct Args {
    /// The client's state folder [default: the user's data directory, e.g. ~/.local/share/mimi]
    #[arg(long, global = true, env = "MIMI_DIR", value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Print one JSON object per line (schema in docs/client.md)
    #[arg(long, global = true)]
    pub json: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// A command, as `clap` parses it and [`run_to`] runs it (its doc comments are the help).
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Register a new user and this device (or a further device with --token-from)
    Register {
        /// The provider's client API, https://host[:port]
        #[arg(long, value_name = "URL")]
        api: String,
        /// The PEM file of the CA that signs the provider's certificate
        #[arg(long, value_name = "FILE")]
        ca: PathBuf,
        /// The user's localpart (alice in @alice:a.example)
        #[arg(long, value_name = "LOCALPART")]
        user: String,
        /// This device's name
        #[arg(long, value_name = "NAME")]
        device: String,
        /// A handle others can discover the user by
        #[arg(long)]
        handle: Option<String>,
        /// An email address others can discover the user by
        #[arg(long)]
        email: Option<String>,
        /// A phone number others can discover the user by
        #[arg(long)]
        phone: Option<String>,
        /// The state folder of one of the user's registered devices: adds this device
        #[arg(long, value_name = "DIR")]
        token_from: Option<PathBuf>,
        /// Dial HOST:PORT instead of the URL's host (which stays the TLS name)
        #[arg(long, value_name = "HOST:PORT")]
        connect: Option<String>,
        /// One-time key packages to publish (plus a last-resort one; 0: none)
        #[arg(long, value_name = "N", default_value_t = DEFAULT_KEY_PACKAGES, value_parser = key_package_count)]
        key_packages: usize,
    },
    /// Publish key packages, so that others can add this device
    PublishKeyPackages {
        /// How many one-time key packages (at most 100)
        #[arg(long, value_name = "N", default_value_t = DEFAULT_KEY_PACKAGES, value_parser = key_package_count)]
        count: usize,
        /// Also a last-resort key package
        #[arg(long)]
        last_resort: bool,
    },
    /// Ask a provider for a user: handle, nick, email, phone, partial_name or whole_profile
    Discover {
        /// The provider to ask (b.example)
        domain: String,
        /// The identifier type
        field: String,
        /// The value
        value: String,
    },
    /// Create a room (`--protocol 06`: a draft-ietf-mimi-protocol-06 room)
    CreateRoom {
        /// members_only, knock or public
        #[arg(long, default_value = "members_only", value_parser = join_rule_arg)]
        join_rule: JoinRule,
        /// The protocol version: 1 (the first version) or 06 (draft-ietf-mimi-protocol-06)
        #[arg(long, default_value = "1", value_parser = ["1", "06"])]
        protocol: String,
        /// For --protocol 06: the room's id (mimi://<provider>/r/<id>)
        #[arg(long, value_name = "ID", default_value = "room")]
        id: String,
        /// For --protocol 06: the room's name
        #[arg(long, value_name = "NAME", default_value = "")]
        name: String,
    },
    /// -06: grant a user consent to fetch this user's key material (--revoke: take it back)
    Consent06 {
        /// The requester (mimi://a.example/u/alice)
        requester: String,
        /// Only for this room
        #[arg(long, value_name = "ROOM")]
        room: Option<String>,
        /// Revoke instead of grant
        #[arg(long)]
        revoke: bool,
    },
    /// -06: add a user (key material through the room's hub, one commit)
    Add06 {
        /// The room (mimi://a.example/r/club)
        room: String,
        /// The user (mimi://b.example/u/bob)
        user: String,
        /// Their role: owner, member or guest
        #[arg(long, default_value = "member", value_parser = ["owner", "member", "guest"])]
        role: String,
    },
    /// -06: send a text message
    Send06 {
        /// The room
        room: String,
        /// The text
        text: String,
    },
    /// -06: read the room's new messages (joins from a Welcome for this device)
    Read06 {
        /// The room
        room: String,
    },
    /// Add a user: claims their key packages and commits; they are in at once
    Add {
        /// The room
        room: RoomId,
        /// The user (@bob:b.example)
        user: UserId,
    },
    /// Invite a user; they join with `mimi join`
    Invite {
        /// The room
        room: RoomId,
        /// The user
        user: UserId,
    },
    /// Join a room (after an invite, in a public room, or a further device)
    Join {
        /// The room
        room: RoomId,
    },
    /// Leave a room (or decline an invite, withdraw a knock)
    Leave {
        /// The room
        room: RoomId,
        /// Leave with the m.room.user leave only: the hub's removals remove the clients
        #[arg(long)]
        no_self_remove: bool,
    },
    /// Ask the room's hub to propose the removal of departed users' clients
    HubRemovals {
        /// The room
        room: RoomId,
    },
    /// Remove a user from the room
    Kick {
        /// The room
        room: RoomId,
        /// The user
        user: UserId,
    },
    /// Ban a user (also one who is not in the room)
    Ban {
        /// The room
        room: RoomId,
        /// The user
        user: UserId,
    },
    /// Lift a ban
    Unban {
        /// The room
        room: RoomId,
        /// The user
        user: UserId,
    },
    /// Knock on a room with the knock join rule
    Knock {
        /// The room
        room: RoomId,
    },
    /// Commit the proposals the room's hub holds
    Commit {
        /// The room
        room: RoomId,
    },
    /// Send a text message (`-` reads it from standard input; text starting with - goes after --)
    Send {
        /// The room
        room: RoomId,
        /// The text, or - for standard input
        text: String,
        /// Reply to this message (ID or unique prefix)
        #[arg(long, value_name = "MSG_ID")]
        reply_to: Option<String>,
    },
    /// React to a message
    React {
        /// The room
        room: RoomId,
        /// The message (ID or unique prefix)
        message: String,
        /// The reaction (an emoji)
        reaction: String,
    },
    /// Withdraw one of your reactions
    Unreact {
        /// The room
        room: RoomId,
        /// The message reacted to (ID or unique prefix)
        message: String,
        /// The reaction to withdraw
        reaction: String,
    },
    /// Give one of your messages a new text
    Edit {
        /// The room
        room: RoomId,
        /// Your message (ID or unique prefix)
        message: String,
        /// The new text
        text: String,
    },
    /// Delete (retract) one of your messages
    Delete {
        /// The room
        room: RoomId,
        /// Your message (ID or unique prefix)
        message: String,
    },
    /// Process the inbox once and print what arrived
    Sync,
    /// Print messages as they arrive, until interrupted
    Listen {
        /// Only this room
        room: Option<RoomId>,
    },
    /// The rooms this client knows
    Rooms,
    /// A room: participants, events and messages
    Show {
        /// The room
        room: RoomId,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
}

fn key_package_count(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if n > crate::MAX_KEY_PACKAGES_PER_PUBLISH {
        return Err(format!(
            "at most {} at once",
            crate::MAX_KEY_PACKAGES_PER_PUBLISH
        ));
    }
    Ok(n)
}

fn join_rule_arg(s: &str) -> Result<JoinRule, String> {
    parse_join_rule(s).map_err(|e| match e {
        ClientError::Usage(m) => m,
        e => e.to_string(),
    })
}

/// Parse a join rule name.
pub fn parse_join_rule(s: &str) -> Result<JoinRule, ClientError> {
    mimi_client_api::parse_join_rule(s).ok_or_else(|| {
        let names: Vec<&str> = mimi_client_api::encoding::JOIN_RULES
            .iter()
            .map(|(_, name)| *name)
            .collect();
        let listed = match names.split_last() {
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        };
        ClientError::Usage(format!("unknown join rule {s:?} ({listed})"))
    })
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cli {
    /// The client's state folder (absolute).
    pub dir: PathBuf,
    /// One JSON object per line instead of text.
    pub json: bool,
    /// The command.
    pub command: Command,
}

impl Cli {
    /// The command line of parsed arguments: the state folder is `--dir`, else `MIMI_DIR`
    /// (both read by clap), else [`crate::folder::default_dir`], made absolute.
    pub fn from_args(args: Args) -> Result<Cli, ClientError> {
        let dir = match args.dir {
            Some(dir) => dir,
            None => crate::folder::default_dir().ok_or_else(|| {
                ClientError::Usage(
                    "no state folder: give --dir DIR or set MIMI_DIR (this system has no data directory)"
                        .into(),
                )
            })?,
        };
        Ok(Cli {
            dir: crate::folder::absolute(&dir)?,
            json: args.json,
            command: args.command,
        })
    }
}

/// Parse the arguments after the program name ([`ClientError::Usage`] with clap's message
/// on bad usage, also for `--help` and `--version`).
pub fn parse(args: &[String]) -> Result<Cli, ClientError> {
    let argv = std::iter::once("mimi".to_owned()).chain(args.iter().cloned());
    let parsed = Args::try_parse_from(argv).map_err(|e| ClientError::Usage(e.to_string()))?;
    Cli::from_args(parsed)
}

// ---------------------------------------------------------------------------------------
// Output.

/// One output line: the text for people and the JSON object for scripts (either may be
/// absent: a line only one of the two shows).
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The text.
    pub text: Option<String>,
    /// The JSON object (with its `"type"`).
    pub json: Option<Value>,
}

impl Line {
    fn new(text: impl Into<String>, json: Value) -> Line {
        Line {
            text: Some(text.into()),
            json: Some(json),
        }
    }

    /// The line as written in text mode or, with `json`, in JSON mode.
    pub fn render(&self, json: bool) -> Option<String> {
        if json {
            self.json.as_ref().map(Value::to_string)
        } else {
            self.text.clone()
        }
    }
}

/// Where a command writes its lines.
pub trait Output {
    /// Write one line; [`ClientError::OutputClosed`] when the reader is gone.
    fn line(&mut self, line: Line) -> Result<(), ClientError>;
}

/// Lines collected in memory.
#[derive(Debug, Default)]
pub struct Collected {
    /// The lines, in order.
    pub lines: Vec<Line>,
}

impl Output for Collected {
    fn line(&mut self, line: Line) -> Result<(), ClientError> {
        self.lines.push(line);
        Ok(())
    }
}

/// Lines to a writer (standard output), as text or JSON, flushed one by one. A closed
/// pipe is [`ClientError::OutputClosed`].
#[derive(Debug)]
pub struct Writer<W: Write> {
    out: W,
    json: bool,
}

impl<W: Write> Writer<W> {
    /// Text (or JSON if `json`) to `out`.
    pub fn new(out: W, json: bool) -> Self {
        Writer { out, json }
    }
}

impl<W: Write> Output for Writer<W> {
    fn line(&mut self, line: Line) -> Result<(), ClientError> {
        let Some(rendered) = line.render(self.json) else {
            return Ok(());
        };
        let written = writeln!(self.out, "{rendered}");
        match written.and_then(|()| self.out.flush()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(ClientError::OutputClosed),
            Err(e) => Err(ClientError::Io {
                path: PathBuf::from("standard output"),
                source: e,
            }),
        }
    }
}

/// A line on standard error, ignoring a closed standard error.
fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "mimi: {text}");
}

/// The JSON error object (`--json`) of an error.
pub fn error_json(e: &ClientError) -> Value {
    let kind = e.kind();
    json!({
        "type": "error",
        "error": kind.name(),
        "exit_code": kind.exit_code(),
        "message": e.to_string(),
    })
}

// ---------------------------------------------------------------------------------------
// Time.

/// The current time as RFC 3339 UTC, seconds precision (`2026-11-29T18:55:54Z`).
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

/// Seconds since the Unix epoch as RFC 3339 UTC.
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian; H. Hinnant's method).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

// ---------------------------------------------------------------------------------------
// Rendering.

fn state_name(state: ParticipationState) -> &'static str {
    match state {
        ParticipationState::Invite => "invited",
        ParticipationState::Join => "joined",
        ParticipationState::Ban => "banned",
        ParticipationState::Knock => "knocking",
    }
}

/// A message as one line of text, without time, room and sender: the text, a reply with
/// its quoted target, an edit, a deletion, a reaction or its withdrawal. `quote` finds the
/// text of a message by its hex ID.
pub fn render_arrival(m: &StoredMessage, quote: impl Fn(&str) -> Option<String>) -> String {
    let quoted = |id: &str| quote(id).map(|t| format!(" \"{t}\"")).unwrap_or_default();
    let text = m.text.as_deref().unwrap_or("(no text)");
    match &m.kind {
        StoredKind::Message => match &m.in_reply_to {
            Some(target) => format!("(reply to [{}]{}) {text}", short(target), quoted(target)),
            None => text.to_owned(),
        },
        StoredKind::Edit { original } => format!("(edited [{}]) {text}", short(original)),
        StoredKind::Delete { original } => format!("(deleted [{}])", short(original)),
        StoredKind::Reaction { target } => {
            let reactions = m.reactions.join(" ");
            match target {
                Some(t) => format!("(reacted {reactions} to [{}]{})", short(t), quoted(t)),
                None => format!("(reacted {reactions})"),
            }
        }
        StoredKind::Unreact { reaction } => {
            format!("(withdrew reaction [{}])", short(reaction))
        }
    }
}

/// The JSON object of a message (`"type": "message"`).
pub fn message_json(
    room: &RoomId,
    cursor: Option<u64>,
    time: Option<&str>,
    m: &StoredMessage,
) -> Value {
    let mut value = json!({
        "type": "message",
        "room": room.to_string(),
        "id": m.id,
        "sender": m.sender.to_string(),
        "sequence": m.sequence,
        "text": m.text,
        "in_reply_to": m.in_reply_to,
        "reactions": m.reactions,
    });
    if let Value::Object(map) = &mut value {
        let (kind, field) = match &m.kind {
            StoredKind::Message => ("message", None),
            StoredKind::Edit { original } => ("edit", Some(("original", Some(original)))),
            StoredKind::Delete { original } => ("delete", Some(("original", Some(original)))),
            StoredKind::Reaction { target } => ("reaction", Some(("target", target.as_ref()))),
            StoredKind::Unreact { reaction } => ("unreact", Some(("reaction", Some(reaction)))),
        };
        map.insert("kind".into(), kind.into());
        if let Some((name, id)) = field {
            map.insert(name.into(), json!(id));
        }
        if let Some(cursor) = cursor {
            map.insert("cursor".into(), cursor.into());
        }
        if let Some(time) = time {
            map.insert("time".into(), time.into());
        }
    }
    value
}

/// One line per inbox outcome (`sync`).
pub fn describe_outcome(cursor: u64, outcome: &Outcome) -> String {
    let what = match outcome {
        Outcome::RoomNoted => "room noted".to_owned(),
        Outcome::Participation(e) => format!("participation: {:?} {}", e.change, e.target),
        Outcome::ProposalsStored(n) => format!("{n} proposal(s) stored for the next commit"),
        Outcome::Joined { epoch } => format!("joined the group at epoch {epoch}"),
        Outcome::CommitMerged {
            epoch,
            self_removed: false,
        } => format!("commit merged, epoch {epoch}"),
        Outcome::CommitMerged {
            self_removed: true, ..
        } => "removed from the group".to_owned(),
        Outcome::Message(m) => format!(
            "message [{}] from {}: {}",
            short(&m.id),
            m.sender,
            render_arrival(m, |_| None)
        ),
        Outcome::Skipped(Skip::Own) => "skipped: own".to_owned(),
        Outcome::Skipped(Skip::PastEpoch { message, group }) => {
            format!("skipped: epoch {message} is before the group's {group}")
        }
        Outcome::Skipped(Skip::NotInGroup) => "skipped: not in the group".to_owned(),
        Outcome::Skipped(Skip::NotFanout | Skip::NotHistory) => "skipped".to_owned(),
        Outcome::Failed(e) => format!("FAILED: {e}"),
    };
    format!("#{cursor} {what}")
}

/// The event name of a non-message outcome in JSON (`"type": "event"`).
fn event_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::RoomNoted => "room_noted",
        Outcome::Participation(_) => "participation",
        Outcome::ProposalsStored(_) => "proposals_stored",
        Outcome::Joined { .. } => "joined",
        Outcome::CommitMerged {
            self_removed: false,
            ..
        } => "commit_merged",
        Outcome::CommitMerged {
            self_removed: true, ..
        } => "removed",
        Outcome::Message(_) => "message",
        Outcome::Skipped(_) => "skipped",
        Outcome::Failed(_) => "failed",
    }
}

/// Whether `listen` shows an outcome (messages and what changes the room for people).
fn worth_listening(outcome: &Outcome) -> bool {
    matches!(
        outcome,
        Outcome::Message(_)
            | Outcome::Participation(_)
            | Outcome::Joined { .. }
            | Outcome::CommitMerged {
                self_removed: true,
                ..
            }
            | Outcome::Failed(_)
    )
}

/// Write the items of a sync: every item (`sync`), or what people follow, with the time
/// of arrival (`listen`).
fn emit_report(
    client: &Client,
    report: &SyncReport,
    only: Option<&RoomId>,
    listening: bool,
    out: &mut dyn Output,
) -> Result<(), ClientError> {
    let time = now_rfc3339();
    for ((cursor, outcome), room) in report.items.iter().zip(&report.item_rooms) {
        if only.is_some_and(|r| r != room) || (listening && !worth_listening(outcome)) {
            continue;
        }
        let quote = |id: &str| {
            client
                .store()
                .room(room)
                .and_then(|log| log.messages.iter().find(|m| m.id == id))
                .and_then(|m| m.text.clone())
        };
        let line = match outcome {
            Outcome::Message(m) => {
                let text = if listening {
                    format!("{time} {room} {}: {}", m.sender, render_arrival(m, quote))
                } else {
                    format!(
                        "#{cursor} {room} [{}] {}: {}",
                        short(&m.id),
                        m.sender,
                        render_arrival(m, quote)
                    )
                };
                Line::new(text, message_json(room, Some(*cursor), Some(&time), m))
            }
            other => {
                let described = describe_outcome(*cursor, other);
                let what = described
                    .split_once(' ')
                    .map_or(described.as_str(), |(_, w)| w);
                let text = if listening {
                    format!("{time} {room} * {what}")
                } else {
                    format!("#{cursor} {room} {what}")
                };
                Line::new(
                    text,
                    json!({
                        "type": "event",
                        "event": event_name(other),
                        "room": room.to_string(),
                        "cursor": cursor,
                        "time": time,
                        "text": what,
                    }),
                )
            }
        };
        out.line(line)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Running.

/// Run `future`, saying on standard error every second after [`PROGRESS_AFTER`] what it
/// waits for, when `progress` (standard error is a terminal).
async fn with_progress<T>(
    progress: bool,
    waiting_for: &str,
    future: impl std::future::Future<Output = T>,
) -> T {
    if !progress {
        return future.await;
    }
    tokio::pin!(future);
    let start = tokio::time::Instant::now();
    let mut ticks = tokio::time::interval_at(start + PROGRESS_AFTER, Duration::from_secs(1));
    loop {
        tokio::select! {
            done = &mut future => return done,
            _ = ticks.tick() => note(&format!(
                "{waiting_for} not answering yet, waited {} s",
                start.elapsed().as_secs()
            )),
        }
    }
}

/// Take the folder's lock (saying so on a terminal if another command holds it), then
/// open the client.
async fn open_locked(
    cli_dir: &std::path::Path,
    progress: bool,
) -> Result<(StateLock, Client), ClientError> {
    if !crate::ClientConfig::path(cli_dir).is_file() {
        return Err(ClientError::NotRegistered(cli_dir.to_owned()));
    }
    let lock = StateLock::acquire(cli_dir, LOCK_TIMEOUT, || {
        if progress {
            note(&format!(
                "another mimi command is using {}; waiting for it to finish",
                cli_dir.display()
            ));
        }
    })
    .await?;
    let client = Client::open(cli_dir)?;
    Ok((lock, client))
}

/// Run a command and return its text output (lines joined; JSON lines with `cli.json`).
/// Not for `listen`, which runs until interrupted.
pub async fn run(cli: Cli) -> Result<String, ClientError> {
    let json = cli.json;
    let mut out = Collected::default();
    run_to(cli, &mut out, false).await?;
    let lines: Vec<String> = out
        .lines
        .into_iter()
        .filter_map(|l| l.render(json))
        .collect();
    Ok(lines.join("\n"))
}

/// Run a command, writing its lines to `out` as they come; `progress`: say on standard
/// error what a slow step waits for.
pub async fn run_to(cli: Cli, out: &mut dyn Output, progress: bool) -> Result<(), ClientError> {
    let Cli {
        dir,
        json: _,
        command,
    } = cli;
    match command {
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Args::command(), "mimi", &mut script);
            let text = String::from_utf8_lossy(&script);
            for line in text.lines() {
                out.line(Line::new(line, json!({"type": "completion", "line": line})))?;
            }
            Ok(())
        }
        Command::Register {
            api,
            ca,
            user,
            device,
            handle,
            email,
            phone,
            token_from,
            connect,
            key_packages,
        } => {
            let registration = Registration {
                api,
                connect,
                ca,
                request: RegisterRequest {
                    localpart: user,
                    device,
                    handle,
                    email,
                    phone,
                    display_name: None,
                },
                token_from,
            };
            if crate::ClientConfig::path(&dir).exists() {
                return Err(ClientError::AlreadyRegistered(dir));
            }
            crate::folder::create(&dir)?;
            let _lock = StateLock::acquire(&dir, LOCK_TIMEOUT, || {}).await?;
            let host = Endpoint::parse(&registration.api, None)?.host;
            let mut client =
                with_progress(progress, &host, Client::register(&dir, registration)).await?;
            let published = if key_packages > 0 {
                with_progress(
                    progress,
                    &host,
                    client.publish_key_packages(key_packages, true),
                )
                .await?
            } else {
                0
            };
            let c = client.config();
            out.line(Line::new(
                format!(
                    "registered {} as {} in {} ({published} key package(s) published)",
                    c.user_id,
                    c.client_id,
                    dir.display()
                ),
                json!({
                    "type": "registered",
                    "user_id": c.user_id.to_string(),
                    "client_id": c.client_id.to_string(),
                    "dir": dir.display().to_string(),
                    "key_packages": published,
                }),
            ))
        }
        Command::Listen { room } => listen(&dir, room, out, progress).await,
        command => {
            let (_lock, mut client) = open_locked(&dir, progress).await?;
            let host = Endpoint::parse(&client.config().api, None)
                .map(|e| e.host)
                .unwrap_or_else(|_| "the provider".into());
            let waiting_for = match &command {
                Command::Discover { domain, .. } => domain.clone(),
                Command::Add { user, .. } | Command::Invite { user, .. } => {
                    user.server().to_string()
                }
                _ => host,
            };
            with_progress(progress, &waiting_for, run_open(&mut client, command, out)).await
        }
    }
}

fn done(
    action: &str,
    room: &RoomId,
    user: Option<&UserId>,
    epoch: Option<u64>,
    text: String,
) -> Line {
    Line::new(
        text,
        json!({
            "type": "done",
            "action": action,
            "room": room.to_string(),
            "user": user.map(ToString::to_string),
            "epoch": epoch,
        }),
    )
}

fn sent_line(action: &str, room: &RoomId, sent: &StoredMessage) -> Line {
    Line::new(
        format!("{action} [{}]", short(&sent.id)),
        json!({
            "type": "sent",
            "action": action,
            "room": room.to_string(),
            "id": sent.id,
        }),
    )
}

/// The stored message `prefix` names, checked to be by this user (edit, delete).
///
/// Rule CL-EDIT-1 (docs/protocol-coverage.md).
fn own_message(
    client: &Client,
    room: &RoomId,
    prefix: &str,
    what: &'static str,
) -> Result<mimi_content::MessageId, ClientError> {
    let id = client.find_message(room, prefix)?;
    let hex = message_id_hex(&id);
    let stored = client
        .store()
        .room(room)
        .and_then(|log| log.messages.iter().find(|m| m.id == hex));
    match stored {
        Some(m) if m.sender != *client.user_id() => Err(ClientError::NotOwnMessage {
            id: short(&hex).to_owned(),
            sender: m.sender.clone(),
            what,
        }),
        _ => Ok(id),
    }
}

fn read_stdin_message() -> Result<String, ClientError> {
    let mut text = String::new();
    std::io::stdin()
        .take(MAX_STDIN_MESSAGE + 1)
        .read_to_string(&mut text)
        .map_err(ClientError::io("standard input"))?;
    if text.len() as u64 > MAX_STDIN_MESSAGE {
        return Err(ClientError::Usage(format!(
            "the message on standard input is longer than {MAX_STDIN_MESSAGE} bytes"
        )));
    }
    let trimmed = text.strip_suffix('\n').unwrap_or(&text);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Err(ClientError::Usage(
            "the message on standard input is empty".into(),
        ));
    }
    Ok(trimmed.to_owned())
}

async fn run_open(
    client: &mut Client,
    command: Command,
    out: &mut dyn Output,
) -> Result<(), ClientError> {
    let line = match command {
        Command::Register { .. } | Command::Listen { .. } | Command::Completions { .. } => {
            return Err(ClientError::Usage("not a command on an open client".into()));
        }
        Command::PublishKeyPackages { count, last_resort } => {
            let stored = client.publish_key_packages(count, last_resort).await?;
            Line::new(
                format!("{stored} key package(s) stored"),
                json!({"type": "key_packages", "stored": stored}),
            )
        }
        Command::Discover {
            domain,
            field,
            value,
        } => {
            let found = client.discover(&domain, &field, &value).await?;
            match found.user_id {
                Some(user) if found.code == crate::api::DiscoveryCode::Success => Line::new(
                    format!("{}: {user}", found.code),
                    json!({"type": "discovered", "code": found.code.to_string(), "user_id": user.to_string()}),
                ),
                _ => {
                    return Err(ClientError::NotFound(format!(
                        "{domain} answered {} for {field} {value:?}",
                        found.code
                    )));
                }
            }
        }
        Command::CreateRoom {
            protocol, id, name, ..
        } if protocol == "06" => {
            let room = client.create_room06(&id, &name).await?;
            Line::new(
                format!("created {room}"),
                json!({"type": "created", "room": room.as_str(), "protocol": "06"}),
            )
        }
        Command::CreateRoom { join_rule, .. } => {
            let room = client.create_room(join_rule).await?;
            Line::new(
                format!("created {room}"),
                json!({
                    "type": "created",
                    "room": room.to_string(),
                    "join_rule": mimi_client_api::encoding::join_rule_name(join_rule),
                }),
            )
        }
        Command::Add { room, user } => {
            let epoch = client.add(&room, &user).await?;
            let text = format!("added {user} to {room} (epoch {epoch})");
            done("add", &room, Some(&user), Some(epoch), text)
        }
        Command::Invite { room, user } => {
            client.invite(&room, &user).await?;
            let text = format!(
                "invited {user} to {room}; a member's next commit (or message) includes it"
            );
            done("invite", &room, Some(&user), None, text)
        }
        Command::Join { room } => {
            let epoch = client.join(&room).await?;
            done(
                "join",
                &room,
                None,
                Some(epoch),
                format!("joined {room} (epoch {epoch})"),
            )
        }
        Command::Leave {
            room,
            no_self_remove: false,
        } => {
            client.leave(&room).await?;
            done("leave", &room, None, None, format!("left {room}"))
        }
        Command::Leave {
            room,
            no_self_remove: true,
        } => {
            client.leave_without_self_remove(&room).await?;
            let text = format!(
                "left {room}; the hub's removals or a member's commit remove this user's clients"
            );
            done("leave", &room, None, None, text)
        }
        Command::HubRemovals { room } => {
            let proposed = client.request_hub_removals(&room).await?;
            let text = if proposed {
                format!("the hub of {room} proposed removals; a member's next commit includes them")
            } else {
                format!("the hub of {room} has no clients to remove")
            };
            Line::new(
                text,
                json!({"type": "done", "action": "hub_removals", "room": room.to_string(), "proposed": proposed}),
            )
        }
        Command::Kick { room, user } => {
            let epoch = client.kick(&room, &user).await?;
            let text = format!("kicked {user} from {room} (epoch {epoch})");
            done("kick", &room, Some(&user), Some(epoch), text)
        }
        Command::Ban { room, user } => {
            let epoch = client.ban(&room, &user).await?;
            let text = format!("banned {user} from {room} (epoch {epoch})");
            done("ban", &room, Some(&user), Some(epoch), text)
        }
        Command::Unban { room, user } => {
            let epoch = client.unban(&room, &user).await?;
            let text = format!("unbanned {user} in {room} (epoch {epoch})");
            done("unban", &room, Some(&user), Some(epoch), text)
        }
        Command::Knock { room } => {
            client.knock(&room).await?;
            done("knock", &room, None, None, format!("knocked on {room}"))
        }
        Command::Commit { room } => {
            let epoch = client.commit(&room).await?;
            let text = format!("committed in {room} (epoch {epoch})");
            done("commit", &room, None, Some(epoch), text)
        }
        Command::Send {
            room,
            text,
            reply_to,
        } => {
            let text = if text == "-" {
                read_stdin_message()?
            } else {
                text
            };
            let reply_to = match reply_to {
                Some(id) => Some(client.find_message(&room, &id)?),
                None => None,
            };
            let sent = client
                .send(&room, &Compose::Text { text, reply_to })
                .await?;
            sent_line("sent", &room, &sent)
        }
        Command::React {
            room,
            message,
            reaction,
        } => {
            let target = client.find_message(&room, &message)?;
            let sent = client
                .send(&room, &Compose::React { target, reaction })
                .await?;
            sent_line("reacted", &room, &sent)
        }
        Command::Unreact {
            room,
            message,
            reaction,
        } => {
            let target = client.find_message(&room, &message)?;
            let reaction_id = own_reaction(client, &room, &target, &reaction)?;
            let sent = client
                .send(
                    &room,
                    &Compose::Unreact {
                        reaction: reaction_id,
                        reacted_to: Some(target),
                    },
                )
                .await?;
            sent_line("unreacted", &room, &sent)
        }
        Command::Edit {
            room,
            message,
            text,
        } => {
            let original = own_message(client, &room, &message, "edit")?;
            let sent = client
                .send(&room, &Compose::Edit { original, text })
                .await?;
            sent_line("edited", &room, &sent)
        }
        Command::Delete { room, message } => {
            let original = own_message(client, &room, &message, "delete")?;
            let sent = client.send(&room, &Compose::Delete { original }).await?;
            sent_line("deleted", &room, &sent)
        }
        Command::Consent06 {
            requester,
            room,
            revoke,
        } => {
            let grant = !revoke;
            client.consent06(&requester, room.as_deref(), grant).await?;
            let what = if grant { "granted" } else { "revoked" };
            Line::new(
                format!("{what} consent to {requester}"),
                json!({"type": "consent", "requester": requester, "grant": grant, "room": room}),
            )
        }
        Command::Add06 { room, user, role } => {
            let role = match role.as_str() {
                "owner" => mimi_e2e::binding06::roles::OWNER,
                "guest" => mimi_e2e::binding06::roles::GUEST,
                _ => mimi_e2e::binding06::roles::MEMBER,
            };
            let epoch = client.add06(&room, &user, role).await?;
            Line::new(
                format!("added {user} to {room} (epoch {epoch})"),
                json!({"type": "added", "room": room, "user": user, "epoch": epoch}),
            )
        }
        Command::Send06 { room, text } => {
            let accepted = client.send06(&room, &text).await?;
            Line::new(
                format!("sent to {room}"),
                json!({"type": "sent", "room": room, "accepted": accepted}),
            )
        }
        Command::Read06 { room } => {
            let messages = client.read06(&room).await?;
            let count = messages.len();
            for m in messages {
                out.line(Line::new(
                    format!("{}: {}", m.sender, m.text),
                    json!({"type": "message", "room": room, "sender": m.sender.to_string(), "text": m.text, "timestamp": m.timestamp}),
                ))?;
            }
            Line::new(
                format!("{count} new message(s)"),
                json!({"type": "read", "room": room, "count": count}),
            )
        }
        Command::Sync => {
            let report = client.sync().await?;
            emit_report(client, &report, None, false, out)?;
            Line::new(
                format!("{} item(s) processed", report.items.len()),
                json!({"type": "synced", "items": report.items.len(), "cursor": client.config().cursor}),
            )
        }
        Command::Show { room } => return show(client, &room, out),
        Command::Rooms => {
            let rooms = client.rooms()?;
            if rooms.is_empty() {
                Line {
                    text: Some("no rooms".into()),
                    json: None,
                }
            } else {
                for (r, e) in &rooms {
                    let text = match e {
                        Some(epoch) => format!("{r}  in group, epoch {epoch}"),
                        None => format!("{r}  not in group"),
                    };
                    out.line(Line::new(
                        text,
                        json!({"type": "room", "room": r.to_string(), "in_group": e.is_some(), "epoch": e}),
                    ))?;
                }
                return Ok(());
            }
        }
    };
    out.line(line)
}

/// This user's reaction `reaction` to `target` that is not withdrawn yet.
fn own_reaction(
    client: &Client,
    room: &RoomId,
    target: &mimi_content::MessageId,
    reaction: &str,
) -> Result<mimi_content::MessageId, ClientError> {
    let target_hex = message_id_hex(target);
    let me = client.user_id();
    let messages = client
        .store()
        .room(room)
        .map(|log| log.messages.as_slice())
        .unwrap_or_default();
    let withdrawn: Vec<&str> = messages
        .iter()
        .filter(|m| m.sender == *me)
        .filter_map(|m| match &m.kind {
            StoredKind::Unreact { reaction } => Some(reaction.as_str()),
            _ => None,
        })
        .collect();
    let found = messages.iter().rev().find(|m| {
        m.sender == *me
            && m.kind
                == StoredKind::Reaction {
                    target: Some(target_hex.clone()),
                }
            && m.reactions.iter().any(|r| r == reaction)
            && !withdrawn.contains(&m.id.as_str())
    });
    match found {
        Some(m) => client.find_message(room, &m.id),
        None => Err(ClientError::NoSuchReaction {
            id: short(&target_hex).to_owned(),
            reaction: reaction.to_owned(),
        }),
    }
}

/// `show ROOM`: the room view's lines; an unknown room is an error.
fn show(client: &mut Client, room: &RoomId, out: &mut dyn Output) -> Result<(), ClientError> {
    let view = client.room_view(room)?;
    if client.store().room(room).is_none() && view.epoch.is_none() {
        return Err(ClientError::UnknownRoom(room.clone()));
    }
    let participants: Vec<Value> = view
        .state
        .iter()
        .flat_map(|s| s.participants.iter())
        .map(|p| {
            json!({
                "user": p.user_id.to_string(),
                "role": p.role.to_string(),
                "state": state_name(p.state),
            })
        })
        .collect();
    let text = render_room(&view);
    let mut lines = text.lines();
    out.line(Line::new(
        lines.next().unwrap_or_default(),
        json!({
            "type": "room",
            "room": room.to_string(),
            "in_group": view.epoch.is_some(),
            "epoch": view.epoch,
            "join_rule": view.state.as_ref().map(|s| mimi_client_api::encoding::join_rule_name(s.policy.join_rule)),
            "participants": participants,
        }),
    ))?;
    // The text lines after the first; JSON: the notes and messages as objects.
    let mut json_lines: Vec<Value> = view
        .notes
        .iter()
        .map(|(sequence, note)| {
            json!({"type": "note", "room": room.to_string(), "sequence": sequence, "text": note})
        })
        .collect();
    json_lines.extend(
        view.messages
            .iter()
            .map(|m| message_json(room, None, None, m)),
    );
    let text_lines: Vec<&str> = lines.collect();
    let n = text_lines.len().max(json_lines.len());
    // Text and JSON differ in line count: each mode skips the other's extra lines.
    for i in 0..n {
        out.line(Line {
            text: text_lines.get(i).map(|s| (*s).to_owned()),
            json: json_lines.get(i).cloned(),
        })?;
    }
    Ok(())
}

/// `listen [ROOM]`: sync, print what arrived, then wait for the next item with a long
/// poll, holding the folder's lock only while processing (other commands on the folder
/// run in between); until interrupted (Ctrl-C) or standard output closes. A provider that
/// does not answer is retried [`LISTEN_RETRIES`] times in a row, then the error ends it.
async fn listen(
    dir: &std::path::Path,
    only: Option<RoomId>,
    out: &mut dyn Output,
    progress: bool,
) -> Result<(), ClientError> {
    let follow = async {
        let mut failures = 0u32;
        let mut first = true;
        let mut host = String::from("the provider");
        loop {
            let step = async {
                let (lock, mut client) = open_locked(dir, progress).await?;
                if first
                    && let Some(room) = &only
                    && client.store().room(room).is_none()
                {
                    return Err(ClientError::UnknownRoom(room.clone()));
                }
                let c = client.config().clone();
                let endpoint = Endpoint::parse(&c.api, c.connect.as_deref())?;
                host.clone_from(&endpoint.host);
                let report = client.sync().await?;
                emit_report(&client, &report, only.as_ref(), true, out)?;
                let cursor = client.config().cursor;
                drop(client);
                drop(lock);
                let api = Api::new(Https::new(endpoint, &c.ca)?, Some(c.token.clone()));
                api.inbox_wait(cursor, 1, LISTEN_WAIT).await?;
                Ok::<(), ClientError>(())
            };
            match step.await {
                Ok(()) => {
                    failures = 0;
                    first = false;
                }
                Err(e) if e.kind() == ErrorKind::Network && failures < LISTEN_RETRIES => {
                    failures += 1;
                    if progress {
                        note(&format!(
                            "{host} not answering, retry {failures} of {LISTEN_RETRIES} ({e})"
                        ));
                    }
                    let pause = LISTEN_RETRY_PAUSE * 2u32.pow(failures - 1);
                    tokio::time::sleep(pause.min(LISTEN_RETRY_MAX_PAUSE)).await;
                }
                Err(e) => return Err(e),
            }
        }
    };
    tokio::select! {
        result = follow => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

/// Whether standard error is a terminal (progress lines are for people).
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}
