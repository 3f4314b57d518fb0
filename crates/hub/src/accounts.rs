//! Accounts and the directory: registration of this provider's users and clients, their
//! bearer tokens (and the cache of token hashes that spares a storage read per request),
//! their key packages (publishing, claiming them locally or at the user's provider with
//! `ds.fetch_key_packages`, and answering that request from peers), and identifier
//! discovery (answering for this server's directory, asking peers for theirs). It owns the
//! token cache and the cache of each user's clients (which inboxes an event goes to); it
//! knows nothing of rooms.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use mimi_codec::mls_ids::DEFAULT_CIPHER_SUITE;
use mimi_codec::{
    BoundedVec, ClientId, ErrorCode, Event, EventError, EventResponse, IdentifierDiscoveryCode,
    IdentifierQuery, IdentifierRequest, IdentifierResponse, KeyPackageEntry, KeyPackageType,
    KeyPackagesRequest, KeyPackagesResponse, MessageBody, MimiMessage, MlsBytes, RoomId, Sender,
    ServerName, Text, UserId,
};
use mimi_transport::TransportError;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::context::Context;
use crate::error::ApiError;
use crate::peers::Attempts;
use crate::storage::{ClientRecord, DirectoryField, StoredKeyPackage, UserRecord};

/// Most clients whose token hash [`Accounts::authenticate`] keeps in memory; beyond it the
/// cache starts again empty.
pub const AUTH_CACHE_MAX: usize = 100_000;

/// Most users whose clients [`Accounts::clients_of`] keeps in memory; beyond it the cache
/// starts again empty.
pub const CLIENTS_CACHE_MAX: usize = 100_000;

/// A new client's registration: the client API's `POST /v1/register` request, defined once
/// in `mimi-client-api`.
pub use mimi_client_api::register::Request as Registration;

/// A registered client and its bearer token (shown once): the client API's answer.
pub use mimi_client_api::register::Response as Registered;

/// Values read from storage, by key, kept until what they were read from is written: the
/// token hashes ([`Accounts::authenticate`]) and each user's clients
/// ([`Accounts::clients_of`]).
///
/// `generation` grows whenever the cache forgets (a write), and a reader keeps what it read
/// only if the generation is still the one it noted before reading ([`Self::keep`]): a value
/// read before a write is never cached after it. At most `max` entries: keeping more
/// empties the cache first.
#[derive(Debug)]
struct GenerationCache<K, V> {
    generation: u64,
    map: HashMap<K, V>,
    max: usize,
}

impl<K: Eq + Hash, V: Clone> GenerationCache<K, V> {
    fn new(max: usize) -> Self {
        GenerationCache {
            generation: 0,
            map: HashMap::new(),
            max,
        }
    }

    /// The generation to note before reading what is not cached.
    fn generation(&self) -> u64 {
        self.generation
    }

    fn get(&self, key: &K) -> Option<V> {
        self.map.get(key).cloned()
    }

    /// Keep `entries`, read from storage after [`Self::generation`] was `read_at`; nothing
    /// if the cache forgot anything since (their source may have been written).
    fn keep<I>(&mut self, read_at: u64, entries: I)
    where
        I: IntoIterator<Item = (K, V)>,
        I::IntoIter: ExactSizeIterator,
    {
        if self.generation != read_at {
            return;
        }
        let entries = entries.into_iter();
        if self.map.len() + entries.len() > self.max {
            self.map.clear();
        }
        self.map.extend(entries);
    }

    /// Forget `key` (its source is being written).
    fn forget(&mut self, key: &K) {
        self.generation = self.generation.wrapping_add(1);
        self.map.remove(key);
    }

    /// Forget everything (another instance wrote something).
    fn forget_all(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        self.map.clear();
    }
}

/// Lock a cache: one whose lock was poisoned is still consistent (every change is one map
/// operation after the generation's increment), so it is used as it is.
fn lock<T>(cache: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    cache.lock().unwrap_or_else(|p| p.into_inner())
}

/// A user's registered clients, shared between the cache and its readers.
type ClientList = Arc<[ClientId]>;

/// The accounts part (see the module documentation).
#[derive(Debug)]
pub struct Accounts {
    ctx: Arc<Context>,
    /// Each client's token hash.
    auth_cache: Mutex<GenerationCache<ClientId, [u8; 32]>>,
    /// Each user's clients.
    clients_cache: Mutex<GenerationCache<UserId, ClientList>>,
    /// Held while registering: two registrations of one name in this process do not
    /// interleave (across instances, `Storage::create_user`/`create_client` are atomic).
    registering: tokio::sync::Mutex<()>,
}

fn token_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn err(code: ErrorCode, detail: impl Into<String>) -> EventError {
    EventError::new(code, detail)
}

fn internal(e: impl std::fmt::Display) -> EventError {
    EventError::new(ErrorCode::Internal, e.to_string())
}

impl Accounts {
    /// The accounts over the shared context.
    pub fn new(ctx: Arc<Context>) -> Accounts {
        Accounts {
            ctx,
            auth_cache: Mutex::new(GenerationCache::new(AUTH_CACHE_MAX)),
            clients_cache: Mutex::new(GenerationCache::new(CLIENTS_CACHE_MAX)),
            registering: tokio::sync::Mutex::new(()),
        }
    }

    /// Forget every cached token hash and client list: another instance wrote a client's
    /// token (a revocation must take effect here too, and a new client must get its
    /// inbox items).
    ///
    /// Rule HUB-MULTI-4 (docs/protocol-coverage.md).
    pub fn forget_tokens(&self) {
        lock(&self.auth_cache).forget_all();
        lock(&self.clients_cache).forget_all();
    }

    /// Forget `user`'s cached client list (one of its clients is being written).
    fn forget_clients_of(&self, user: &UserId) {
        lock(&self.clients_cache).forget(user);
    }

    /// The registered clients of `users`, user by user in the order given: from memory for
    /// the users read before, the others in one storage trip (then kept, unless a client
    /// was written meanwhile). The inbox asks this for every event; a registration on this
    /// instance forgets the user's list before it answers, one on another instance
    /// ([`Accounts::forget_tokens`]) every list.
    ///
    /// Rule HUB-INBOX-2 (docs/protocol-coverage.md).
    pub async fn clients_of(
        &self,
        users: impl IntoIterator<Item = UserId>,
    ) -> Result<Vec<ClientId>, crate::storage::StorageError> {
        let (generation, known): (u64, Vec<(UserId, Option<ClientList>)>) = {
            let cache = lock(&self.clients_cache);
            let known = users
                .into_iter()
                .map(|u| {
                    let clients = cache.get(&u);
                    (u, clients)
                })
                .collect();
            (cache.generation(), known)
        };
        let missing: Vec<UserId> = known
            .iter()
            .filter(|(_, c)| c.is_none())
            .map(|(u, _)| u.clone())
            .collect();
        let mut read: HashMap<UserId, ClientList> = HashMap::new();
        if !missing.is_empty() {
            let lists = self
                .ctx
                .blocking(move |s| {
                    missing
                        .into_iter()
                        .map(|u| {
                            let clients = s.clients_of(&u)?;
                            Ok((u, clients))
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .await?;
            read.extend(
                lists
                    .into_iter()
                    .map(|(user, clients)| (user, ClientList::from(clients))),
            );
            lock(&self.clients_cache).keep(
                generation,
                read.iter().map(|(u, c)| (u.clone(), Arc::clone(c))),
            );
        }
        let mut out = Vec::new();
        for (user, clients) in known {
            if let Some(clients) = clients.or_else(|| read.get(&user).cloned()) {
                out.extend(clients.iter().cloned());
            }
        }
        Ok(out)
    }

    /// Authenticate a bearer token (`<client id>.<secret>`).
    ///
    /// Rule HUB-API-1 (docs/protocol-coverage.md).
    pub async fn authenticate(&self, token: &str) -> Result<ClientId, ApiError> {
        let (id, secret) = token.rsplit_once('.').ok_or(ApiError::Unauthorized)?;
        let client: ClientId = id.parse().map_err(|_| ApiError::Unauthorized)?;
        let (cached, generation) = {
            let cache = lock(&self.auth_cache);
            (cache.get(&client), cache.generation())
        };
        let stored = match cached {
            Some(hash) => hash,
            None => {
                let c = client.clone();
                let hash = self
                    .ctx
                    .blocking(move |s| s.client(&c))
                    .await?
                    .ok_or(ApiError::Unauthorized)?
                    .token_hash;
                lock(&self.auth_cache).keep(generation, [(client.clone(), hash)]);
                hash
            }
        };
        let given = token_hash(secret);
        // Constant-time comparison.
        let diff = given
            .iter()
            .zip(stored.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff == 0 {
            Ok(client)
        } else {
            Err(ApiError::Unauthorized)
        }
    }

    /// Register a client (and its user, if new). `by` is the authenticated client, needed to
    /// add a device to an existing user.
    pub async fn register(
        &self,
        registration: Registration,
        by: Option<ClientId>,
    ) -> Result<Registered, ApiError> {
        let open = self.ctx.settings.open_registration;
        self.register_with(registration, by, open).await
    }

    /// Create a user (and its first client) for the operator, whether or not registration
    /// is open (`mimi-hub admin create-user`).
    pub async fn create_user(&self, registration: Registration) -> Result<Registered, ApiError> {
        self.register_with(registration, None, true).await
    }

    /// Revoke `client`'s token: a new hash that no token has replaces the stored one, and
    /// the token cache forgets the client, so its very next request is refused (401).
    /// `false` if no such client is registered.
    ///
    /// Rule HUB-ADMIN-2 (docs/protocol-coverage.md).
    pub async fn revoke(&self, client: &ClientId) -> Result<bool, ApiError> {
        let c = client.clone();
        if self.ctx.blocking(move |s| s.client(&c)).await?.is_none() {
            return Ok(false);
        }
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let record = ClientRecord {
            client_id: client.clone(),
            token_hash: token_hash(&hex::encode(secret)),
        };
        let written = self.ctx.blocking(move |s| s.put_client(&record)).await;
        lock(&self.auth_cache).forget(client);
        self.forget_clients_of(&client.user());
        written?;
        tracing::info!(%client, "client revoked");
        Ok(true)
    }

    async fn register_with(
        &self,
        registration: Registration,
        by: Option<ClientId>,
        open_registration: bool,
    ) -> Result<Registered, ApiError> {
        let user_id = UserId::new(&registration.localpart, &self.ctx.server_name)?;
        let client_id = ClientId::new(&user_id, &registration.device)?;
        let _registering = self.registering.lock().await;
        let u = user_id.clone();
        let existing = self.ctx.blocking(move |s| s.user(&u)).await?;
        match (&existing, &by) {
            (Some(_), Some(by)) if by.user() == user_id => {}
            (Some(_), _) => return Err(ApiError::UserExists(user_id)),
            (None, _) if !open_registration => {
                return Err(ApiError::RegistrationClosed);
            }
            (None, _) => {}
        }
        let c = client_id.clone();
        if self.ctx.blocking(move |s| s.client(&c)).await?.is_some() {
            return Err(ApiError::ClientExists(client_id));
        }
        if existing.is_none() {
            let record = UserRecord {
                user_id: user_id.clone(),
                handle: registration.handle,
                email: registration.email,
                phone: registration.phone,
                display_name: registration.display_name,
            };
            // Another instance may have created the user since the look above.
            if !self.ctx.blocking(move |s| s.create_user(&record)).await? {
                return Err(ApiError::UserExists(user_id));
            }
        }
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let secret = hex::encode(secret);
        let record = ClientRecord {
            client_id: client_id.clone(),
            token_hash: token_hash(&secret),
        };
        let written = self.ctx.blocking(move |s| s.create_client(&record)).await;
        // Whether or not the write went through, no earlier read of this client's token
        // may stay cached.
        lock(&self.auth_cache).forget(&client_id);
        self.forget_clients_of(&user_id);
        if !written? {
            // Registered by another instance since the look above: its token stands.
            return Err(ApiError::ClientExists(client_id));
        }
        tracing::info!(client = %client_id, "client registered");
        Ok(Registered {
            token: format!("{client_id}.{secret}"),
            user_id,
            client_id,
        })
    }

    /// Publish key packages for `client` (DS-KP-1 on each).
    pub async fn publish_key_packages(
        &self,
        client: &ClientId,
        packages: Vec<Vec<u8>>,
    ) -> Result<usize, ApiError> {
        let mut stored = Vec::new();
        for bytes in packages {
            let kp = mimi_ds::validate_key_package(&bytes, client)
                .map_err(ApiError::InvalidKeyPackage)?;
            stored.push(StoredKeyPackage {
                cipher_suite: kp.cipher_suite,
                last_resort: kp.last_resort,
                hash_ref: kp.hash_ref,
                bytes: kp.bytes,
            });
        }
        let n = stored.len();
        let c = client.clone();
        self.ctx
            .blocking(move |s| s.publish_key_packages(&c, stored))
            .await?;
        Ok(n)
    }

    /// Answer `ds.fetch_key_packages` for one of this server's users (DS-KP-2): claim one
    /// key package per client.
    ///
    /// Rule HUB-KP-1 (docs/protocol-coverage.md).
    pub async fn key_packages_for(
        &self,
        request: KeyPackagesRequest,
    ) -> Result<EventResponse, EventError> {
        let name = &self.ctx.server_name;
        if request.user.server() != *name {
            return Err(err(
                ErrorCode::UnknownUser,
                format!("{} is not a user of {name}", request.user),
            ));
        }
        let user = request.user.clone();
        let known = self
            .ctx
            .blocking(move |s| s.user(&user))
            .await
            .map_err(internal)?;
        if known.is_none() {
            return Err(err(
                ErrorCode::UnknownUser,
                format!("no user {}", request.user),
            ));
        }
        let user = request.user.clone();
        let clients: Vec<ClientId> = request.clients.as_slice().to_vec();
        let suite = request.cipher_suite;
        let claimed = self
            .ctx
            .blocking(move |s| s.claim_key_packages(&user, &clients, suite))
            .await
            .map_err(internal)?;
        if claimed.is_empty() {
            return Err(err(
                ErrorCode::NoKeyPackages,
                format!("no key packages for {}", request.user),
            ));
        }
        let entries = claimed
            .into_iter()
            .map(|(client, bytes)| {
                Ok(KeyPackageEntry {
                    client,
                    kind: KeyPackageType::MlsKeyPackage,
                    key_package: MlsBytes::new(bytes)?,
                })
            })
            .collect::<Result<Vec<_>, mimi_codec::CodecError>>()
            .map_err(internal)?;
        Ok(EventResponse::KeyPackages(KeyPackagesResponse {
            key_packages: BoundedVec::new(entries).map_err(internal)?,
        }))
    }

    /// Claim key packages of `user`'s clients for use in `room` (locally, or at the user's
    /// server with `ds.fetch_key_packages`).
    ///
    /// Rule HUB-KP-1 (docs/protocol-coverage.md).
    pub async fn claim_key_packages(
        &self,
        requester: &ClientId,
        room: &RoomId,
        user: &UserId,
        clients: Vec<ClientId>,
    ) -> Result<Vec<KeyPackageEntry>, ApiError> {
        let request = KeyPackagesRequest {
            cipher_suite: DEFAULT_CIPHER_SUITE,
            user: user.clone(),
            clients: BoundedVec::new(clients)?,
        };
        let server = user.server();
        let response = if server == self.ctx.server_name {
            self.key_packages_for(request)
                .await
                .map_err(ApiError::Refused)?
        } else {
            let msg = MimiMessage::new(
                room.clone(),
                Sender::User(requester.user()),
                MessageBody::Event(Event::DsFetchKeyPackages(request)),
            );
            match self
                .ctx
                .peers
                .send(&server, &msg, Attempts::Transport)
                .await
            {
                Ok(out) => match out.response.map(|m| m.body) {
                    Some(MessageBody::Response(r)) => r,
                    _ => {
                        return Err(ApiError::PeerAnswer {
                            server,
                            what: "no key packages",
                        });
                    }
                },
                Err(TransportError::Refused { error: Some(e), .. }) => EventResponse::Error(e),
                Err(e) => return Err(ApiError::peer(&server, e)),
            }
        };
        match response {
            EventResponse::KeyPackages(k) => Ok(k.key_packages.into_vec()),
            EventResponse::Error(e) => Err(ApiError::Refused(e)),
            _ => Err(ApiError::PeerAnswer {
                server,
                what: "an unexpected response",
            }),
        }
    }

    /// Identifier discovery at `domain` (this server, or a peer over MIMI).
    ///
    /// Rule HUB-DISC-1 (docs/protocol-coverage.md).
    pub async fn discover(
        &self,
        domain: &ServerName,
        request: IdentifierRequest,
    ) -> Result<IdentifierResponse, ApiError> {
        if *domain == self.ctx.server_name {
            return Ok(self.discover_locally(&request).await?);
        }
        self.ctx
            .peers
            .identifier_discovery(domain, domain, &request)
            .await
            .map_err(|e| ApiError::peer(domain, e))
    }

    /// This server's answer to identifier discovery in its own directory. A storage failure
    /// is this server's error, not one of the seed's answers (`forbidden` would tell the
    /// requester it may not search): the caller reports it as internal (500).
    ///
    /// Rule HUB-DISC-2 (docs/protocol-coverage.md).
    pub async fn discover_locally(
        &self,
        request: &IdentifierRequest,
    ) -> Result<IdentifierResponse, crate::storage::StorageError> {
        let field = match request.query {
            IdentifierQuery::Handle => Some(DirectoryField::Handle),
            IdentifierQuery::Email => Some(DirectoryField::Email),
            IdentifierQuery::Phone => Some(DirectoryField::Phone),
            IdentifierQuery::Nick => Some(DirectoryField::DisplayName),
            _ => None,
        };
        let response = |code, uri: &str| IdentifierResponse {
            code,
            uri: Text::new(uri).unwrap_or_default(),
        };
        let Some(field) = field else {
            return Ok(response(IdentifierDiscoveryCode::UnsupportedField, ""));
        };
        let value = request.search_value.as_str().to_owned();
        let users = self
            .ctx
            .blocking(move |s| s.find_users(field, &value))
            .await?;
        Ok(match users.as_slice() {
            [] => response(IdentifierDiscoveryCode::NotFound, ""),
            [one] => response(IdentifierDiscoveryCode::Success, one.as_str()),
            _ => response(IdentifierDiscoveryCode::Ambiguous, ""),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_read_before_a_forget_is_not_kept() {
        let mut cache: GenerationCache<u32, &str> = GenerationCache::new(10);
        let before = cache.generation();
        cache.keep(before, [(1, "one")]);
        assert_eq!(cache.get(&1), Some("one"));
        // A reader notes the generation, another forgets (a write), the reader's value
        // comes back: it is not kept.
        let read_at = cache.generation();
        cache.forget(&2);
        cache.keep(read_at, [(2, "stale")]);
        assert_eq!(cache.get(&2), None);
        assert_eq!(cache.get(&1), Some("one"));
        let read_at = cache.generation();
        cache.forget_all();
        cache.keep(read_at, [(3, "stale")]);
        assert_eq!((cache.get(&1), cache.get(&3)), (None, None));
        // Read after the last forget: kept.
        let read_at = cache.generation();
        cache.keep(read_at, [(3, "three"), (4, "four")]);
        assert_eq!(
            (cache.get(&3), cache.get(&4)),
            (Some("three"), Some("four"))
        );
    }

    #[test]
    fn keeping_more_than_max_empties_the_cache_first() {
        let mut cache: GenerationCache<u32, u32> = GenerationCache::new(3);
        let g = cache.generation();
        cache.keep(g, [(1, 1), (2, 2), (3, 3)]);
        assert_eq!(cache.map.len(), 3);
        cache.keep(g, [(4, 4)]);
        assert_eq!(cache.map.len(), 1);
        assert_eq!((cache.get(&1), cache.get(&4)), (None, Some(4)));
        cache.keep(g, [(5, 5), (6, 6)]);
        assert_eq!(cache.map.len(), 3);
        cache.keep(g, [(7, 7), (8, 8)]);
        assert_eq!(cache.map.len(), 2);
        assert_eq!((cache.get(&6), cache.get(&8)), (None, Some(8)));
    }
}
