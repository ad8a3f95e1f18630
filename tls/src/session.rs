//! TLS inside the CSA: [`TlsSession`], a [`csa::Session`] on rustls, for
//! either end of a connection.
//!
//! The CSA reads ciphertext from its socket straight into rustls
//! (`read_tls`), writes rustls's records straight to the socket
//! (`write_tls`), and its boxes carry plaintext: one component per
//! connection, no ciphertext message and no copy between a connection and
//! a layer. [`ServerSessions`] puts one in every connection a server
//! accepts (`ServerOptions::session`); [`TlsSession::client`] is the
//! client's, for `TcpClient::with_session` (verifying the server's
//! certificate against the config's roots and the name given).
//!
//! ```
//! use std::sync::Arc;
//! use chassis::{ServerOptions, SimpleServer};
//! use examples::Echo;
//! use tls::{HandshakeLimit, ServerSessions};
//! # use rustls::pki_types::{CertificateDer, PrivateKeyDer};
//! # let key = rcgen::KeyPair::generate().unwrap();
//! # let cert = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap()
//! #     .self_signed(&key).unwrap();
//! # let cfg = Arc::new(rustls::ServerConfig::builder_with_provider(tls::provider())
//! #     .with_safe_default_protocol_versions().unwrap().with_no_client_auth()
//! #     .with_single_cert(vec![cert.der().clone()],
//! #         PrivateKeyDer::Pkcs8(key.serialize_der().into())).unwrap());
//! # let mut roots = rustls::RootCertStore::empty();
//! # roots.add(cert.der().clone()).unwrap();
//! # let client_cfg = tls::client_config(roots).unwrap();
//!
//! // `cfg`: an `Arc<rustls::ServerConfig>`, e.g. from
//! // `tls::server_config_from_pem(cert_path, key_path)`.
//! let limit = HandshakeLimit::new(256);
//! let options = ServerOptions {
//!     session: Some(ServerSessions::new(cfg).with_handshake_limit(&limit).factory()),
//!     accept_gate: Some(limit.accept_gate()),
//!     ..ServerOptions::default()
//! };
//! // The handler is the plain one: it is given plaintext.
//! let server = SimpleServer::new(Echo::new, "127.0.0.1:0".parse().unwrap(), options).unwrap();
//! # let addr = server.local_addr();
//! # let scheduler = selector::scheduler().unwrap();
//! # let _core = scheduler.activate(server).unwrap();
//! # let stop = scheduler.handle();
//! # let running = std::thread::spawn(move || scheduler.run());
//! # use std::io::{Read, Write};
//! # let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
//! # let conn = rustls::ClientConnection::new(client_cfg, name).unwrap();
//! # let sock = std::net::TcpStream::connect(addr).unwrap();
//! # sock.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
//! # let mut s = rustls::StreamOwned::new(conn, sock);
//! # s.write_all(b"hello in the csa").unwrap();
//! # let mut got = [0u8; 16];
//! # s.read_exact(&mut got).unwrap();
//! # assert_eq!(&got, b"hello in the csa");
//! # stop.stop();
//! # running.join().unwrap();
//! ```
//!
//! How it ends is the `how_died` of the CSA's `socketShutdown` (C6), as
//! an `io::Error` whose inner error is the [`TlsError`]: truncation (a FIN
//! without close_notify after the handshake; input ends as on a
//! half-close and the reply is still sent), an end or a stop during the
//! handshake, the handshake deadline, or rustls's error (its alert sent
//! first).

use std::fmt;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use csa::{Plaintext, Session};
use rustls::{ClientConfig, ServerConfig};
use tcpserver::SessionFactory;

use crate::engine::{Engine, Plain};
use crate::limit::Turn;
use crate::{HandshakeLimit, TlsError, BUFFER_LIMIT, HANDSHAKE_TIMEOUT};

/// One end of one TLS connection, run by its CSA
/// ([`csa::Csa::with_session`]): the server's ([`TlsSession::server`],
/// made by [`ServerSessions`]) or the client's ([`TlsSession::client`]).
/// See the [module docs](self).
pub struct TlsSession {
    engine: Result<Engine, String>,
    /// "server" or "client", for the logs.
    side: &'static str,
    handshake_timeout: Duration,
    /// Its place under the server's handshake cap, if any: held from the
    /// start (the cap's accept gate took it at accept) to the end of the
    /// handshake.
    turn: Option<Turn>,
    handshaking: bool,
    /// The peer's close_notify has come.
    peer_closed: bool,
}

impl fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let handshaking = if self.handshaking {
            ", handshaking"
        } else {
            ""
        };
        write!(f, "TlsSession({}{handshaking})", self.side)
    }
}

impl TlsSession {
    fn with(side: &'static str, engine: Result<Engine, rustls::Error>) -> TlsSession {
        TlsSession {
            engine: engine.map_err(|e| e.to_string()),
            side,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            turn: None,
            handshaking: true,
            peer_closed: false,
        }
    }

    /// A server session on `config`. A config that cannot make one (one
    /// accepting early data, which would be lost) closes the connection at
    /// its start, with [`TlsError::Setup`] as `how_died`.
    pub fn server(config: Arc<ServerConfig>) -> TlsSession {
        TlsSession::with("server", Engine::server(config, BUFFER_LIMIT))
    }

    /// A client session for the server called `server_name` (a DNS name
    /// or an IP address), verified against `config`'s roots; it sends its
    /// ClientHello at the CSA's first step. Bytes the handler sends before
    /// the handshake ends wait in rustls (within [`BUFFER_LIMIT`]) and go
    /// out right after it. Errors: a name that is neither.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// use tcpclient::TcpClient;
    /// use tls::TlsSession;
    /// # let roots = rustls::RootCertStore::empty();
    /// // `config`: e.g. `tls::client_config(roots)`.
    /// let config = tls::client_config(roots).unwrap();
    /// let session = TlsSession::client(config, "example.org").unwrap();
    /// let client = TcpClient::to_host("example.org", 443).with_session(Box::new(session));
    /// # let _ = client;
    /// assert!(TlsSession::client(tls::client_config(rustls::RootCertStore::empty()).unwrap(), "not a name!").is_err());
    /// ```
    pub fn client(config: Arc<ClientConfig>, server_name: &str) -> io::Result<TlsSession> {
        let name = crate::engine::server_name(server_name)?;
        Ok(TlsSession::with(
            "client",
            Engine::client(config, name, BUFFER_LIMIT),
        ))
    }

    /// A handshake deadline other than [`HANDSHAKE_TIMEOUT`] (builder
    /// style).
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> TlsSession {
        self.handshake_timeout = timeout;
        self
    }

    fn engine(&mut self) -> io::Result<&mut Engine> {
        engine(&mut self.engine)
    }
}

/// The engine, or the `how_died` of a session that could not make one.
fn engine(engine: &mut Result<Engine, String>) -> io::Result<&mut Engine> {
    engine
        .as_mut()
        .map_err(|e| TlsError::Setup(e.clone()).into())
}

impl Session for TlsSession {
    fn start(&mut self) -> io::Result<()> {
        let started = self.engine().map(drop);
        if let Err(e) = &started {
            log::error!("tls {}: {e}", self.side);
        }
        started
    }

    fn read_from(&mut self, socket: &mut dyn Read) -> io::Result<usize> {
        self.engine()?.read_from(socket)
    }

    fn process(&mut self) -> io::Result<()> {
        let engine = engine(&mut self.engine)?;
        if let Err(e) = engine.process() {
            log::debug!("tls {}: {e}", self.side);
            return Err(TlsError::Tls(e).into());
        }
        if self.handshaking && !engine.is_handshaking() {
            self.handshaking = false;
            if log::log_enabled!(log::Level::Debug) {
                let s = engine.summary();
                log::debug!(
                    "tls {}: handshake done: {} {}",
                    self.side,
                    s.protocol,
                    s.cipher_suite
                );
            }
            // The cap's turn passes to the next connection.
            self.turn = None;
        }
        Ok(())
    }

    fn plaintext(&mut self, buf: &mut Vec<u8>, max: usize) -> Plaintext {
        let Ok(engine) = self.engine.as_mut() else {
            return Plaintext::Empty;
        };
        match engine.plaintext(buf, max) {
            Plain::Data(()) => Plaintext::Data,
            Plain::Empty => Plaintext::Empty,
            Plain::Closed => {
                self.peer_closed = true;
                Plaintext::Closed
            }
        }
    }

    fn write_plaintext(&mut self, data: &[u8]) -> usize {
        self.engine.as_mut().map_or(0, |e| e.write_plaintext(data))
    }

    fn write_to(&mut self, socket: &mut dyn Write) -> io::Result<usize> {
        self.engine()?.write_to(socket)
    }

    fn wants_read(&self) -> bool {
        self.engine.as_ref().is_ok_and(Engine::wants_read)
    }

    fn wants_write(&self) -> bool {
        self.engine.as_ref().is_ok_and(Engine::wants_write)
    }

    fn is_handshaking(&self) -> bool {
        self.handshaking
    }

    fn close(&mut self) {
        if let Ok(engine) = self.engine.as_mut() {
            engine.send_close_notify();
        }
    }

    fn input_ended(&mut self) -> Option<io::Error> {
        if self.peer_closed {
            None
        } else if self.handshaking {
            log::debug!(
                "tls {}: the connection ended during the handshake",
                self.side
            );
            Some(TlsError::EndedInHandshake.into())
        } else {
            log::debug!(
                "tls {}: truncation: the connection ended without close_notify",
                self.side
            );
            Some(TlsError::Truncated.into())
        }
    }

    fn handshake_timeout(&self) -> Option<Duration> {
        Some(self.handshake_timeout)
    }

    fn summary(&self) -> crate::SslReady {
        self.engine
            .as_ref()
            .map(Engine::summary)
            .unwrap_or_default()
    }

    fn stopped(&mut self) -> Option<io::Error> {
        self.handshaking
            .then(|| TlsError::StoppedInHandshake.into())
    }

    fn timed_out(&self) -> io::Error {
        log::debug!(
            "tls {}: no handshake within {:?}",
            self.side,
            self.handshake_timeout
        );
        TlsError::HandshakeTimeout(self.handshake_timeout).into()
    }
}

/// TLS from the first byte for every connection a server accepts: a
/// [`SessionFactory`] for `ServerOptions::session` making one
/// [`TlsSession::server`] per connection (see the [module docs](self)).
#[derive(Clone)]
pub struct ServerSessions {
    config: Arc<ServerConfig>,
    handshake_timeout: Duration,
    limit: Option<HandshakeLimit>,
}

impl fmt::Debug for ServerSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSessions")
            .field("handshake_timeout", &self.handshake_timeout)
            .field("limit", &self.limit)
            .finish()
    }
}

impl ServerSessions {
    /// Sessions on `config`, with the [`HANDSHAKE_TIMEOUT`] deadline.
    pub fn new(config: Arc<ServerConfig>) -> ServerSessions {
        ServerSessions {
            config,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            limit: None,
        }
    }

    /// A handshake deadline other than [`HANDSHAKE_TIMEOUT`].
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> ServerSessions {
        self.handshake_timeout = timeout;
        self
    }

    /// Counts each handshake under `limit`, whose
    /// [`accept_gate`](HandshakeLimit::accept_gate) must be the server's
    /// `ServerOptions::accept_gate`: the gate takes a turn at each accept
    /// (pausing accepts above the cap), the connection's session holds it
    /// until its handshake is over, however it ends.
    pub fn with_handshake_limit(mut self, limit: &HandshakeLimit) -> ServerSessions {
        self.limit = Some(limit.clone());
        self
    }

    /// As `ServerOptions::session` takes it.
    pub fn factory(self) -> Arc<dyn SessionFactory> {
        Arc::new(self)
    }
}

impl SessionFactory for ServerSessions {
    fn session(&self) -> Box<dyn Session> {
        let mut session = TlsSession::server(self.config.clone());
        session.handshake_timeout = self.handshake_timeout;
        session.turn = self.limit.as_ref().map(HandshakeLimit::turn);
        Box::new(session)
    }
}
