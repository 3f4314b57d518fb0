//! Server name → network endpoint: the [`Resolver`] trait, a [`StaticResolver`] for local
//! providers and tests, a [`DnsResolver`], and the [`WellKnownResolver`] of the spec's
//! endpoint discovery (`GET https://{server}/.well-known/mimi/domain`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use mimi_codec::ServerName;

use crate::client::{ClientConfig, MimiClient};
use crate::error::TransportError;

/// The standard HTTPS port, where discovered MIMI endpoints are reached.
pub const HTTPS_PORT: u16 = 443;
/// How long a `.well-known` answer is reused before it is fetched again.
pub const DEFAULT_WELL_KNOWN_TTL: Duration = Duration::from_secs(3600);

/// Where to reach a server: the addresses to try, in order, and the name its TLS
/// certificate must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Socket addresses to try in order (never empty when returned by a resolver).
    pub addresses: Vec<SocketAddr>,
    /// The DNS name the server's certificate is verified against.
    pub tls_name: ServerName,
}

/// Why a server name could not be resolved to an endpoint.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ResolveError {
    /// The resolver has no entry for this server.
    #[error("no address is known for {0}")]
    Unknown(ServerName),
    /// The DNS lookup failed.
    #[error("DNS lookup of {name} failed: {source}")]
    Lookup {
        /// The name looked up.
        name: ServerName,
        /// The lookup error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The name resolved to no address.
    #[error("{0} resolves to no address")]
    NoAddress(ServerName),
    /// `.well-known` discovery failed.
    #[error(".well-known discovery for {server} failed: {source}")]
    WellKnown {
        /// The server whose `.well-known` was asked.
        server: ServerName,
        /// Why the request failed.
        #[source]
        source: Arc<TransportError>,
    },
}

impl ResolveError {
    /// Whether retrying later may help (a failed lookup or an unreachable origin).
    pub fn is_transient(&self) -> bool {
        match self {
            ResolveError::Unknown(_) | ResolveError::NoAddress(_) => false,
            ResolveError::Lookup { .. } => true,
            ResolveError::WellKnown { source, .. } => source.is_transient(),
        }
    }
}

/// Maps a server name to the endpoint to connect to.
///
/// A request for `server` is addressed to its service name ([`Resolver::service_name`]):
/// the target URI's host and the `Host` header are that name, and TLS verifies it
/// (RFC 9110 §7.2 and §4.3.4: the authority the request names is the one the connection
/// authenticates). The connection is then opened with [`Resolver::resolve_service`].
#[async_trait]
pub trait Resolver: Send + Sync {
    /// Resolve `server`.
    async fn resolve(&self, server: &ServerName) -> Result<Endpoint, ResolveError>;

    /// The name that serves `server`'s MIMI endpoints: the `.well-known` delegation target,
    /// or `server` itself (the default) when there is no delegation.
    ///
    /// Rule TR-WK-3 (docs/protocol-coverage.md).
    async fn service_name(&self, server: &ServerName) -> Result<ServerName, ResolveError> {
        Ok(self.resolve(server).await?.tls_name)
    }

    /// Where to reach a service name returned by [`Resolver::service_name`]. The default
    /// resolves it like a server name.
    async fn resolve_service(&self, service: &ServerName) -> Result<Endpoint, ResolveError> {
        self.resolve(service).await
    }
}

/// A fixed map from server name to socket address; the TLS name is the server name. For
/// local providers, the demo and tests.
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    map: HashMap<ServerName, SocketAddr>,
}

impl StaticResolver {
    /// An empty map.
    pub fn new() -> Self {
        StaticResolver::default()
    }

    /// Add or replace the address of `server`.
    pub fn insert(&mut self, server: ServerName, address: SocketAddr) {
        self.map.insert(server, address);
    }

    /// Builder form of [`StaticResolver::insert`].
    pub fn with(mut self, server: ServerName, address: SocketAddr) -> Self {
        self.insert(server, address);
        self
    }
}

#[async_trait]
impl Resolver for StaticResolver {
    async fn service_name(&self, server: &ServerName) -> Result<ServerName, ResolveError> {
        Ok(server.clone())
    }

    async fn resolve(&self, server: &ServerName) -> Result<Endpoint, ResolveError> {
        let address = self
            .map
            .get(server)
            .ok_or_else(|| ResolveError::Unknown(server.clone()))?;
        Ok(Endpoint {
            addresses: vec![*address],
            tls_name: server.clone(),
        })
    }
}

/// The system resolver: the server name itself is looked up in DNS, on a fixed port.
#[derive(Debug, Clone, Copy)]
pub struct DnsResolver {
    port: u16,
}

impl DnsResolver {
    /// Look names up and connect to `port`.
    pub fn new(port: u16) -> Self {
        DnsResolver { port }
    }
}

impl Default for DnsResolver {
    fn default() -> Self {
        DnsResolver::new(HTTPS_PORT)
    }
}

async fn lookup(name: &ServerName, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), port))
        .await
        .map_err(|source| ResolveError::Lookup {
            name: name.clone(),
            source: Arc::new(source),
        })?
        .collect();
    if addresses.is_empty() {
        return Err(ResolveError::NoAddress(name.clone()));
    }
    Ok(addresses)
}

#[async_trait]
impl Resolver for DnsResolver {
    async fn service_name(&self, server: &ServerName) -> Result<ServerName, ResolveError> {
        Ok(server.clone())
    }

    async fn resolve(&self, server: &ServerName) -> Result<Endpoint, ResolveError> {
        Ok(Endpoint {
            addresses: lookup(server, self.port).await?,
            tls_name: server.clone(),
        })
    }
}

/// The spec's endpoint discovery: `GET https://{server}/.well-known/mimi/domain` (server
/// certificate verified for `{server}`), whose `text/plain` body names the FQDN that serves
/// the MIMI endpoints; that FQDN is looked up in DNS and its certificate must carry it.
///
/// The origin (`{server}` itself) is found by `origin`, which is a [`DnsResolver`] on port
/// 443 in deployments; discovered FQDNs are cached for a TTL.
///
/// Rule TR-WK-2 (docs/protocol-coverage.md).
pub struct WellKnownResolver {
    client: MimiClient,
    port: u16,
    ttl: Duration,
    cache: Mutex<HashMap<ServerName, (ServerName, Instant)>>,
}

impl WellKnownResolver {
    /// Discover with `config` (its client certificate may be absent), reach origins through
    /// `origin`, connect to discovered FQDNs on `port`, and cache answers for `ttl`.
    pub fn new(config: ClientConfig, origin: Arc<dyn Resolver>, port: u16, ttl: Duration) -> Self {
        WellKnownResolver {
            client: MimiClient::new(config, origin),
            port,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Discovery over DNS and port 443 with the default TTL.
    pub fn with_dns(config: ClientConfig) -> Self {
        WellKnownResolver::new(
            config,
            Arc::new(DnsResolver::default()),
            HTTPS_PORT,
            DEFAULT_WELL_KNOWN_TTL,
        )
    }

    fn cached(&self, server: &ServerName) -> Option<ServerName> {
        let cache = self.cache.lock().ok()?;
        let (domain, at) = cache.get(server)?;
        (at.elapsed() < self.ttl).then(|| domain.clone())
    }

    fn remember(&self, server: &ServerName, domain: &ServerName) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|_, (_, at)| at.elapsed() < self.ttl);
            cache.insert(server.clone(), (domain.clone(), Instant::now()));
        }
    }
}

#[async_trait]
impl Resolver for WellKnownResolver {
    async fn resolve(&self, server: &ServerName) -> Result<Endpoint, ResolveError> {
        let domain = self.service_name(server).await?;
        self.resolve_service(&domain).await
    }

    async fn service_name(&self, server: &ServerName) -> Result<ServerName, ResolveError> {
        if let Some(domain) = self.cached(server) {
            return Ok(domain);
        }
        let domain =
            self.client
                .well_known(server)
                .await
                .map_err(|source| ResolveError::WellKnown {
                    server: server.clone(),
                    source: Arc::new(source),
                })?;
        self.remember(server, &domain);
        Ok(domain)
    }

    /// The delegation target is looked up in DNS as it is: it has no `.well-known` of its
    /// own to follow.
    async fn resolve_service(&self, service: &ServerName) -> Result<Endpoint, ResolveError> {
        Ok(Endpoint {
            addresses: lookup(service, self.port).await?,
            tls_name: service.clone(),
        })
    }
}
