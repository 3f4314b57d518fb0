//! The `mimi` command line: argument parsing ([`parse`]) and running a command ([`run`]),
//! which returns the human-readable output. `docs/client.md` describes every command.

use std::path::PathBuf;

use mimi_codec::{JoinRule, RoomId, UserId};

use crate::api::RegisterRequest;
use crate::client::{Client, Registration};
use crate::error::ClientError;
use crate::inbox::{Outcome, Skip};
use crate::messages::Compose;
use crate::view::{SHORT_ID_LEN, render_room};

/// Key packages published by default.
pub const DEFAULT_KEY_PACKAGES: usize = 5;

/// The usage text.
pub const USAGE: &str = "\
usage: mimi --dir DIR <command>
  register --api URL --ca FILE --user LOCALPART --device NAME
           [--handle H] [--email E] [--phone P] [--token-from DIR] [--connect HOST:PORT]
  publish-key-packages [--count N] [--last-resort]
  discover DOMAIN FIELD VALUE        (FIELD: handle, nick, email, phone, partial_name, whole_profile)
  create-room [--join-rule members_only|knock|public]
  add ROOM USER | invite ROOM USER | kick ROOM USER | ban ROOM USER | unban ROOM USER
  join ROOM | leave ROOM [--no-self-remove] | knock ROOM | commit ROOM
  hub-removals ROOM
  send ROOM TEXT [--reply-to MSG_ID]
  react ROOM MSG_ID EMOJI
  edit ROOM MSG_ID TEXT
  sync | rooms | show ROOM";

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Register a client.
    Register(Registration),
    /// Publish key packages.
    PublishKeyPackages {
        /// How many one-time key packages.
        count: usize,
        /// Also a last-resort one.
        last_resort: bool,
    },
    /// Discover a user.
    Discover {
        /// The provider to ask.
        domain: String,
        /// The identifier type.
        field: String,
        /// The value.
        value: String,
    },
    /// Create a room.
    CreateRoom {
        /// Its join rule.
        join_rule: JoinRule,
    },
    /// Add a user.
    Add(RoomId, UserId),
    /// Invite a user.
    Invite(RoomId, UserId),
    /// Join a room.
    Join(RoomId),
    /// Leave a room.
    Leave(RoomId),
    /// Leave a room with the `m.room.user` leave only (`leave ROOM --no-self-remove`): the
    /// hub's removals (`hub-removals`) or a member's commit remove this user's clients.
    LeaveWithoutSelfRemove(RoomId),
    /// Ask the room's hub to propose the removal of departed users' clients.
    HubRemovals(RoomId),
    /// Kick a user.
    Kick(RoomId, UserId),
    /// Ban a user.
    Ban(RoomId, UserId),
    /// Unban a user.
    Unban(RoomId, UserId),
    /// Knock on a room.
    Knock(RoomId),
    /// Commit the pending proposals.
    Commit(RoomId),
    /// Send a text message.
    Send {
        /// The room.
        room: RoomId,
        /// The text.
        text: String,
        /// The message replied to (ID or prefix).
        reply_to: Option<String>,
    },
    /// React to a message.
    React {
        /// The room.
        room: RoomId,
        /// The message (ID or prefix).
        message: String,
        /// The reaction.
        reaction: String,
    },
    /// Edit one of this user's messages.
    Edit {
        /// The room.
        room: RoomId,
        /// The message (ID or prefix).
        message: String,
        /// The new text.
        text: String,
    },
    /// Process the inbox.
    Sync,
    /// Show a room.
    Show(RoomId),
    /// List the rooms.
    Rooms,
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cli {
    /// The client's state directory.
    pub dir: PathBuf,
    /// The command.
    pub command: Command,
}

fn usage(message: impl Into<String>) -> ClientError {
    ClientError::Usage(message.into())
}

/// Arguments after the command name: positionals and `--flag [value]` options.
struct Args {
    positional: Vec<String>,
    options: Vec<(String, Option<String>)>,
}

/// Flags that take no value.
const SWITCHES: &[&str] = &["--last-resort", "--no-self-remove"];

impl Args {
    fn split(args: &[String]) -> Result<Args, ClientError> {
        let mut positional = Vec::new();
        let mut options = Vec::new();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            if let Some(name) = arg.strip_prefix("--").filter(|n| !n.is_empty()) {
                let name = format!("--{name}");
                if SWITCHES.contains(&name.as_str()) {
                    options.push((name, None));
                } else {
                    let value = it
                        .next()
                        .ok_or_else(|| usage(format!("{name} needs a value")))?;
                    options.push((name, Some(value.clone())));
                }
            } else {
                positional.push(arg.clone());
            }
        }
        Ok(Args {
            positional,
            options,
        })
    }

    fn take(&mut self, name: &str) -> Option<String> {
        let i = self.options.iter().position(|(n, _)| n == name)?;
        self.options.remove(i).1
    }

    fn switch(&mut self, name: &str) -> bool {
        match self.options.iter().position(|(n, _)| n == name) {
            Some(i) => {
                self.options.remove(i);
                true
            }
            None => false,
        }
    }

    fn required(&mut self, name: &str) -> Result<String, ClientError> {
        self.take(name)
            .ok_or_else(|| usage(format!("missing {name}")))
    }

    /// Exactly `n` positionals, and no option left over.
    fn finish(self, n: usize, command: &str) -> Result<Vec<String>, ClientError> {
        if let Some((name, _)) = self.options.first() {
            return Err(usage(format!("{command}: unknown option {name}")));
        }
        if self.positional.len() != n {
            return Err(usage(format!(
                "{command} takes {n} argument(s), got {}",
                self.positional.len()
            )));
        }
        Ok(self.positional)
    }
}

fn room(s: &str) -> Result<RoomId, ClientError> {
    s.parse()
        .map_err(|e| usage(format!("invalid room ID {s:?}: {e}")))
}

fn user(s: &str) -> Result<UserId, ClientError> {
    s.parse()
        .map_err(|e| usage(format!("invalid user ID {s:?}: {e}")))
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
        usage(format!("unknown join rule {s:?} ({listed})"))
    })
}

/// Parse the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Cli, ClientError> {
    let (dir, rest) = match args {
        [flag, dir, rest @ ..] if flag == "--dir" => (PathBuf::from(dir), rest),
        _ => return Err(usage("the first argument must be --dir DIR")),
    };
    let (name, rest) = rest.split_first().ok_or_else(|| usage("missing command"))?;
    let mut a = Args::split(rest)?;
    let one = |a: Args, f: fn(RoomId) -> Command| -> Result<Command, ClientError> {
        let p = a.finish(1, name)?;
        Ok(f(room(&p[0])?))
    };
    let two = |a: Args, f: fn(RoomId, UserId) -> Command| -> Result<Command, ClientError> {
        let p = a.finish(2, name)?;
        Ok(f(room(&p[0])?, user(&p[1])?))
    };
    let command = match name.as_str() {
        "register" => {
            let registration = Registration {
                api: a.required("--api")?,
                connect: a.take("--connect"),
                ca: PathBuf::from(a.required("--ca")?),
                request: RegisterRequest {
                    localpart: a.required("--user")?,
                    device: a.required("--device")?,
                    handle: a.take("--handle"),
                    email: a.take("--email"),
                    phone: a.take("--phone"),
                    display_name: None,
                },
                token_from: a.take("--token-from").map(PathBuf::from),
            };
            a.finish(0, name)?;
            Command::Register(registration)
        }
        "publish-key-packages" => {
            let count = match a.take("--count") {
                Some(n) => n
                    .parse()
                    .map_err(|_| usage(format!("--count {n:?} is not a number")))?,
                None => DEFAULT_KEY_PACKAGES,
            };
            let last_resort = a.switch("--last-resort");
            a.finish(0, name)?;
            Command::PublishKeyPackages { count, last_resort }
        }
        "discover" => {
            let mut p = a.finish(3, name)?.into_iter();
            let mut next = || p.next().unwrap_or_default();
            Command::Discover {
                domain: next(),
                field: next(),
                value: next(),
            }
        }
        "create-room" => {
            let join_rule = match a.take("--join-rule") {
                Some(r) => parse_join_rule(&r)?,
                None => JoinRule::MembersOnly,
            };
            a.finish(0, name)?;
            Command::CreateRoom { join_rule }
        }
        "add" => two(a, Command::Add)?,
        "invite" => two(a, Command::Invite)?,
        "kick" => two(a, Command::Kick)?,
        "ban" => two(a, Command::Ban)?,
        "unban" => two(a, Command::Unban)?,
        "join" => one(a, Command::Join)?,
        "leave" => {
            if a.switch("--no-self-remove") {
                one(a, Command::LeaveWithoutSelfRemove)?
            } else {
                one(a, Command::Leave)?
            }
        }
        "hub-removals" => one(a, Command::HubRemovals)?,
        "knock" => one(a, Command::Knock)?,
        "commit" => one(a, Command::Commit)?,
        "show" => one(a, Command::Show)?,
        "send" => {
            let reply_to = a.take("--reply-to");
            let p = a.finish(2, name)?;
            Command::Send {
                room: room(&p[0])?,
                text: p[1].clone(),
                reply_to,
            }
        }
        "react" | "edit" => {
            let p = a.finish(3, name)?;
            let (room, message, third) = (room(&p[0])?, p[1].clone(), p[2].clone());
            if name == "react" {
                Command::React {
                    room,
                    message,
                    reaction: third,
                }
            } else {
                Command::Edit {
                    room,
                    message,
                    text: third,
                }
            }
        }
        "sync" => {
            a.finish(0, name)?;
            Command::Sync
        }
        "rooms" => {
            a.finish(0, name)?;
            Command::Rooms
        }
        other => return Err(usage(format!("unknown command {other:?}"))),
    };
    Ok(Cli { dir, command })
}

/// One line per inbox outcome.
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
            "message [{}] from {}",
            m.id.get(..SHORT_ID_LEN).unwrap_or(&m.id),
            m.sender
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

/// Run a command and return its output.
pub async fn run(cli: Cli) -> Result<String, ClientError> {
    let Cli { dir, command } = cli;
    if let Command::Register(registration) = command {
        let client = Client::register(&dir, registration).await?;
        let c = client.config();
        return Ok(format!("registered {} as {}", c.user_id, c.client_id));
    }
    let mut client = Client::open(&dir)?;
    let out = match command {
        Command::Register(_) => String::new(),
        Command::PublishKeyPackages { count, last_resort } => {
            let stored = client.publish_key_packages(count, last_resort).await?;
            format!("{stored} key package(s) stored")
        }
        Command::Discover {
            domain,
            field,
            value,
        } => {
            let found = client.discover(&domain, &field, &value).await?;
            match found.user_id {
                Some(user) => format!("{}: {user}", found.code),
                None => found.code.to_string(),
            }
        }
        Command::CreateRoom { join_rule } => {
            let room = client.create_room(join_rule).await?;
            format!("created {room}")
        }
        Command::Add(room, user) => {
            let epoch = client.add(&room, &user).await?;
            format!("added {user} to {room} (epoch {epoch})")
        }
        Command::Invite(room, user) => {
            client.invite(&room, &user).await?;
            format!("invited {user} to {room}; a member's next commit includes it")
        }
        Command::Join(room) => {
            let epoch = client.join(&room).await?;
            format!("joined {room} (epoch {epoch})")
        }
        Command::Leave(room) => {
            client.leave(&room).await?;
            format!("left {room}")
        }
        Command::LeaveWithoutSelfRemove(room) => {
            client.leave_without_self_remove(&room).await?;
            format!(
                "left {room}; the hub's removals or a member's commit remove this user's clients"
            )
        }
        Command::HubRemovals(room) => {
            if client.request_hub_removals(&room).await? {
                format!("the hub of {room} proposed removals; a member's next commit includes them")
            } else {
                format!("the hub of {room} has no clients to remove")
            }
        }
        Command::Kick(room, user) => {
            let epoch = client.kick(&room, &user).await?;
            format!("kicked {user} from {room} (epoch {epoch})")
        }
        Command::Ban(room, user) => {
            let epoch = client.ban(&room, &user).await?;
            format!("banned {user} from {room} (epoch {epoch})")
        }
        Command::Unban(room, user) => {
            let epoch = client.unban(&room, &user).await?;
            format!("unbanned {user} in {room} (epoch {epoch})")
        }
        Command::Knock(room) => {
            client.knock(&room).await?;
            format!("knocked on {room}")
        }
        Command::Commit(room) => {
            let epoch = client.commit(&room).await?;
            format!("committed in {room} (epoch {epoch})")
        }
        Command::Send {
            room,
            text,
            reply_to,
        } => {
            let reply_to = match reply_to {
                Some(id) => Some(client.find_message(&room, &id)?),
                None => None,
            };
            let sent = client
                .send(&room, &Compose::Text { text, reply_to })
                .await?;
            format!("sent [{}]", sent.id.get(..SHORT_ID_LEN).unwrap_or(&sent.id))
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
            format!(
                "reacted [{}]",
                sent.id.get(..SHORT_ID_LEN).unwrap_or(&sent.id)
            )
        }
        Command::Edit {
            room,
            message,
            text,
        } => {
            let original = client.find_message(&room, &message)?;
            let sent = client
                .send(&room, &Compose::Edit { original, text })
                .await?;
            format!(
                "edited [{}]",
                sent.id.get(..SHORT_ID_LEN).unwrap_or(&sent.id)
            )
        }
        Command::Sync => {
            let report = client.sync().await?;
            let mut lines: Vec<String> = report
                .items
                .iter()
                .map(|(c, o)| describe_outcome(*c, o))
                .collect();
            lines.push(format!("{} item(s) processed", report.items.len()));
            lines.join("\n")
        }
        Command::Show(room) => render_room(&client.room_view(&room)?),
        Command::Rooms => {
            let rooms = client.rooms()?;
            if rooms.is_empty() {
                "no rooms".to_owned()
            } else {
                rooms
                    .iter()
                    .map(|(r, e)| match e {
                        Some(epoch) => format!("{r}  in group, epoch {epoch}"),
                        None => format!("{r}  not in group"),
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        }
    };
    Ok(out)
}
