//! # TLS on rustls: in the CSA, or as a layer beside it
//!
//! Kamaelia's CSA had a `makessl` inbox and an `sslready` outbox, and made
//! its socket blocking for the handshake, which stalled every connection
//! on the scheduler. Here the whole TLS lifecycle runs on the Selector's
//! one-shot notices, with no blocking call and no thread hop, in one of
//! two shapes:
//!
//! - **In the CSA** ([`ServerSessions`], through `ServerOptions::session`):
//!   every connection a server accepts is TLS from its first byte; its CSA
//!   reads and writes TLS on its own socket ([`csa::Session`]) and its
//!   handler, the plain one, is given plaintext. One component per
//!   connection, as over plain TCP: the fastest shape, and the one the
//!   demo serves (see [`session`] for an example and how each rule maps).
//!   A client's is [`TlsSession::client`], given to
//!   `TcpClient::with_session`: its CSA speaks TLS from the first byte,
//!   verifying the server against the roots and the name given; given to
//!   `TcpClient::with_starttls`, the same CSA switches to it on
//!   `makessl` (STARTTLS).
//! - **A layer component** ([`TlsServer`], [`TlsClient`]) between a
//!   connection (a CSA, or a `TcpClient`) and the handler: for STARTTLS
//!   (`makessl`) over a connection that is not a ServerCore's or a
//!   `TcpClient`'s, and where a handler wants `tlsClosed` in its own boxes.
//!   The CSA under it knows nothing of TLS. STARTTLS runs in the CSA too
//!   (`ServerOptions::starttls`, below, and `TcpClient::with_starttls`),
//!   with the same handler.
//!
//! The layer's usual shape is a *wrapper handler*: [`TlsServer::wrap`] takes the
//! plaintext handler and returns a component that is itself a protocol
//! handler (H6: `inbox`, `control`, `outbox`, `signal`, carrying
//! ciphertext), owning the plaintext handler as a child:
//!
//! ```text
//!   CSA ──ciphertext──▶ inbox ┌───────────── TlsServer ─────────────┐ plainOutbox ──▶ inbox   ┌─────────┐
//!   CSA ◀─ciphertext── outbox │ rustls: read_tls / process_new_packets│ plainInbox ◀── outbox  │ handler │
//!   CSA ◀──── close ── signal │         writer / write_tls            │ plainSignal ──▶ control│ (Echo…) │
//!   readShutdown ────▶ control└───────────────────────────────────────┘ plainControl ◀─ signal └─────────┘
//! ```
//!
//! A [`Pipeline`](axon::Pipeline) cannot express this (it runs one way),
//! which is why the layer links its child itself, as ServerCore links a
//! handler to its CSA (H2).
//!
//! ```
//! use std::sync::Arc;
//! use chassis::{ServerOptions, SimpleServer};
//! use examples::Echo;
//! use tls::TlsServer;
//! # use rustls::pki_types::{CertificateDer, PrivateKeyDer};
//! # let ca_key = rcgen::KeyPair::generate().unwrap();
//! # let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
//! # ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
//! # let ca = ca.self_signed(&ca_key).unwrap();
//! # let key = rcgen::KeyPair::generate().unwrap();
//! # let leaf = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap()
//! #     .signed_by(&key, &ca, &ca_key).unwrap();
//! # let cfg = Arc::new(rustls::ServerConfig::builder_with_provider(tls::provider())
//! #     .with_safe_default_protocol_versions().unwrap().with_no_client_auth()
//! #     .with_single_cert(vec![leaf.der().clone()],
//! #         PrivateKeyDer::Pkcs8(key.serialize_der().into())).unwrap());
//! # let mut roots = rustls::RootCertStore::empty();
//! # roots.add(ca.der().clone()).unwrap();
//! # let client_cfg = tls::client_config(roots).unwrap();
//!
//! // `cfg`: an `Arc<rustls::ServerConfig>`, e.g. from
//! // `tls::server_config_from_pem(cert_path, key_path)`.
//! let server = SimpleServer::new(
//!     move || TlsServer::wrap(cfg.clone(), Echo::new()),
//!     "127.0.0.1:0".parse().unwrap(),
//!     ServerOptions::default(),
//! ).unwrap();
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
//! # s.write_all(b"hello over tls").unwrap();
//! # let mut got = [0u8; 14];
//! # s.read_exact(&mut got).unwrap();
//! # assert_eq!(&got, b"hello over tls");
//! # stop.stop();
//! # running.join().unwrap();
//! ```
//!
//! ## Kamaelia's names
//!
//! | Kamaelia | here |
//! |---|---|
//! | CSA `makessl` inbox (switch a live connection to TLS) | the CSA's own `makessl` (carrying `()`), on a server whose `ServerOptions::starttls` is a [`ServerSessions`]`::factory()`: ServerCore links the handler's `makessl` outbox to it, the reply sent before it goes in the clear, and the same CSA runs the TLS (`csa::Csa::with_starttls`); on a client made with `TcpClient::with_starttls` (a [`TlsSession::client`]), the client's `makessl`, passed through to its CSA's (`csa::Csa::with_starttls_session`); or the layer's `makessl` inbox, on a layer made with [`TlsServer::starttls`] or [`TlsClient::starttls`] (plaintext passes through until then; linked from the inner handler's `makessl` outbox if it has one); a [`TlsServer::wrap`] layer is TLS from the first byte |
//! | CSA `sslready` outbox (the handshake finished) | the CSA's own `sslready`, carrying [`SslReady`], linked by ServerCore to the handler's `sslready` inbox if it has one; or the layer's `sslready` outbox, the same type, linked to the inner handler's `sslready` inbox if it has one (one handler serves both shapes) |
//! | overriding `TCPServer.CSA` with an SSL one | `ServerOptions::session` with [`ServerSessions`]: each CSA runs a [`TlsSession`] (TLS in the CSA itself), the handler is given plaintext, and the creator's `socketShutdown` carries the session's [`TlsError`] as `how_died`; or, as a layer, [`TlsServer::over_csa`] through `TcpServer::with_csa` |
//! | `TCPClient` over SSL | `TcpClient::new(addr).with_session(Box::new(`[`TlsSession::client`]`(config, name)?))` (TLS in the client's CSA; an end out of order is `shutdownMicroprocess` out of its `signal`); or, as a layer, [`TlsClient::over`]`(config, name, tcp_client, handler)` |
//!
//! ## Boxes
//!
//! [`TlsBoxes`], the same for [`TlsServer`] and [`TlsClient`]:
//!
//! | box | direction | carries | meaning |
//! |---|---|---|---|
//! | `inbox` | inbox | `Vec<u8>` | ciphertext from the connection (the CSA's `outbox`), in any chunks |
//! | `control` | inbox | [`Control`] | `socketShutdown` / `producerFinished`: the connection will send no more ciphertext (C7, H3); `shutdownMicroprocess` / `serverShutdown`: close now |
//! | `outbox` | outbox | `Vec<u8>` | ciphertext to the connection (the CSA's `inbox`) |
//! | `signal` | outbox | [`Control`] | to the connection's `control`: `producerFinished` after close_notify (the CSA writes it all and closes, C5); `shutdownMicroprocess` on a TLS error, a handshake past its deadline or a stop (after one pass sending the alert) |
//! | `plainInbox` | inbox | `Vec<u8>` | plaintext to encrypt and send (the handler's `outbox`); bounded ([`INBOX_LIMIT`]) |
//! | `plainControl` | inbox | [`Control`] | the handler's `signal`: `producerFinished`: send everything, then close_notify, then close; `shutdownMicroprocess`: one pass, then close |
//! | `plainOutbox` | outbox | `Vec<u8>` | decrypted bytes (to the handler's `inbox`) |
//! | `plainSignal` | outbox | [`Control`] | to the handler's `control`: `socketShutdown` after the last decrypted byte, when the peer sent close_notify or the connection ended (a half-close: the reply is still delivered); `shutdownMicroprocess` when the layer closes the connection |
//! | `sslready` | outbox | [`SslReady`] | once, when the handshake has finished |
//! | `makessl` | inbox | `()` | STARTTLS ([`TlsServer::starttls`], [`TlsClient::starttls`]): switch to TLS once what was read and sent before it has passed in the clear; ignored once TLS |
//! | `serversignal` | outbox | [`Control`] | the inner handler's `serversignal`, passed through (ServerCore links it to its `control`) |
//! | `tlsClosed` | outbox | [`TlsClosed`] | exactly once, when the layer ends: how the TLS session ended (`how_died`: `None`, or a [`TlsError`]); linked to the inner handler's `tlsClosed` inbox if it has one |
//! | `_handshakeTurn` | inbox | `()` | a turn under the server's [`HandshakeLimit`] has come (sent by the layer that gave it back) |
//!
//! ## Mapping onto rustls (issue 11)
//!
//! - **No blocking.** The handshake advances on arriving ciphertext
//!   (`read_tls` from the chunk, `process_new_packets`) and on room in the
//!   connection's inbox; TLS output is flushed after every
//!   `process_new_packets` and every write, so tickets, alerts and key
//!   updates go out without application data.
//! - **Backpressure both ways (A5).** A full handler inbox keeps the
//!   decrypted chunk; rustls then holds its plaintext and `wants_read`
//!   turns false, so no more ciphertext is fed or taken from `inbox`,
//!   which fills and stops the CSA reading (C3). A full connection inbox
//!   keeps the record message and stops taking plaintext from
//!   `plainInbox`; rustls's buffer limit (`set_buffer_limit`, [`BUFFER_LIMIT`],
//!   the CSA's high-water mark) bounds what `writer().write` takes, and a
//!   partial write keeps the rest of the message for later.
//! - **Closing.** The handler's `producerFinished`: everything it sent is
//!   encrypted and sent, then close_notify, then `producerFinished` to the
//!   CSA, which writes it all and closes (C5). The peer's close_notify is a
//!   half-close: `socketShutdown` to the handler, whose reply is still
//!   delivered (C7). The connection ending (`socketShutdown` from the CSA
//!   or ServerCore: a FIN) after the handshake without close_notify is
//!   truncation: input ends there as on the same half-close, the reply is
//!   still sent, and `tlsClosed` reports [`TlsError::Truncated`]; during
//!   the handshake it ends the connection at once
//!   ([`TlsError::EndedInHandshake`]).
//! - **How it ended.** The connection's own `socketShutdown` (C6) says how
//!   the *socket* died; a TLS session can end badly over a socket that
//!   closed in order, so the layer says how the *session* ended, once, out
//!   of `tlsClosed` ([`TlsClosed`], whose `how_died` converts to the
//!   `io::Error` a `socketShutdown` would carry). With
//!   [`TlsServer::over_csa`] the creator's `socketShutdown` itself
//!   carries it.
//! - **Deadline.** A handshake not finished within [`HANDSHAKE_TIMEOUT`]
//!   (10 s; see [`TlsServer::with_handshake_timeout`]) closes the
//!   connection: a timer (`wake_at`), no polling.
//! - **A cap on handshakes in progress** ([`HandshakeLimit`], shared by
//!   the server's layers through [`TlsServer::with_handshake_limit`]):
//!   above it a connection's first ciphertext waits, unread, for a turn,
//!   first come, first served, and its deadline runs meanwhile.
//! - **Resumption** works with rustls's defaults (the server's session
//!   cache and TLS 1.3 tickets; a client config's session store):
//!   [`SslReady::resumed`] says which handshakes were resumed. **Early
//!   data** (0-RTT) is refused: a server config that would accept it
//!   (`max_early_data_size` above 0) is an error at the layer's start,
//!   since the layer never reads early data and it would be lost.
//! - **Errors** (a bad or unknown certificate, a wrong name, plaintext on
//!   the TLS port): logged with rustls's error (`debug` on a server, where
//!   it is the peer's fault; `warn` on a client), the alert rustls makes
//!   is sent, then `shutdownMicroprocess` closes the connection. Nothing
//!   panics, and other connections go on.
//!
//! ## rustls and its provider
//!
//! rustls 0.23, with the crypto provider chosen explicitly
//! (`builder_with_provider`): nothing installs a process-wide default, so
//! nothing can panic for want of one. The provider is **ring**: both ring
//! and aws-lc-rs build here with the C compiler alone, and ring is the
//! smaller dependency and the faster build (no large C library to
//! compile), with the suites a server negotiates (TLS 1.3 AES-GCM and
//! ChaCha20-Poly1305, ECDHE on X25519 and P-256). The choice has not yet
//! been measured against aws-lc-rs in `bench compare`; it is one line in
//! the private engine module to change.
//! [`provider`] gives it, for configs the caller builds. Every rustls call
//! is in one private module, since rustls 0.24 changes the buffer API.

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

mod connection;
mod engine;
mod layer;
mod limit;
pub mod session;

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axon::{boxes, Component, Control, Cx, Graphline, Handle, Inbox, LinkError, Outbox, Step};
pub use rustls;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use layer::Layer;
pub use limit::HandshakeLimit;
pub use session::{ServerSessions, TlsSession};

/// How long a handshake may take before the connection is closed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// rustls's limit on unsent plaintext and unsent records, in bytes: the
/// CSA's high-water mark over a session.
pub const BUFFER_LIMIT: usize = 64 * 1024;

/// The size limit of `plainInbox` and of the inner handler's `inbox`, in
/// messages (as ServerCore's `HANDLER_INBOX_LIMIT`).
pub const INBOX_LIMIT: usize = 16;

/// What `sslready` carries, from the layer or from the CSA itself (the
/// same type: a STARTTLS handler works over either).
pub use csa::SslReady;

/// Why a TLS session ended badly: the `how_died` of [`TlsClosed`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum TlsError {
    /// Truncation: after the handshake the connection's input ended (a
    /// FIN, or its end announced by `socketShutdown`) without the peer's
    /// close_notify. Input ends there, as on a half-close (C7): the
    /// handler's reply is still sent.
    Truncated,
    /// The connection's input ended during the handshake, which then
    /// could never finish: the connection is closed at once.
    EndedInHandshake,
    /// No handshake within the deadline ([`HANDSHAKE_TIMEOUT`] unless set
    /// otherwise).
    HandshakeTimeout(Duration),
    /// `shutdownMicroprocess` (from the connection's side or the handler)
    /// during the handshake.
    StoppedInHandshake,
    /// rustls refused the peer or its bytes: a bad, unknown or expired
    /// certificate, a wrong name, an alert from the peer, bytes that are
    /// not TLS. Its alert (if any) was sent before the close.
    Tls(rustls::Error),
    /// The layer could not start: its config, or linking its handler.
    Setup(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Truncated => {
                f.write_str("truncated: the connection ended without close_notify")
            }
            TlsError::EndedInHandshake => f.write_str("the connection ended during the handshake"),
            TlsError::HandshakeTimeout(t) => write!(f, "no handshake within {t:?}"),
            TlsError::StoppedInHandshake => f.write_str("stopped during the handshake"),
            TlsError::Tls(e) => write!(f, "tls: {e}"),
            TlsError::Setup(e) => write!(f, "tls setup: {e}"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Tls(e) => Some(e),
            _ => None,
        }
    }
}

impl From<TlsError> for io::Error {
    /// As a socket error would be (`how_died` of a CSA's `socketShutdown`):
    /// truncation and an end during the handshake are `UnexpectedEof`, the
    /// deadline `TimedOut`, a stop `Interrupted`, the rest `InvalidData`.
    fn from(e: TlsError) -> io::Error {
        let kind = match e {
            TlsError::Truncated | TlsError::EndedInHandshake => io::ErrorKind::UnexpectedEof,
            TlsError::HandshakeTimeout(_) => io::ErrorKind::TimedOut,
            TlsError::StoppedInHandshake => io::ErrorKind::Interrupted,
            TlsError::Tls(_) | TlsError::Setup(_) => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

/// What `tlsClosed` carries, exactly once, when the layer ends: how the
/// TLS session ended. The TLS counterpart of the `how_died` in C6's
/// `socketShutdown`, which the connection itself reports for the socket
/// (there, a TLS session that ended badly over a socket that closed in
/// order shows as `None`).
#[derive(Clone, Debug, PartialEq)]
pub struct TlsClosed {
    /// `None` for an orderly end (close_notify, or the handler's
    /// `producerFinished` after the handshake); what went wrong otherwise.
    pub how_died: Option<TlsError>,
    /// True if the handshake had finished.
    pub handshaken: bool,
    /// True on the server side.
    pub is_server: bool,
}

boxes! {
    /// The boxes of [`TlsServer`] and [`TlsClient`] (see the crate docs).
    pub struct TlsBoxes {
        /// ciphertext from the connection
        pub inbox: Inbox<Vec<u8>>,
        /// socketShutdown / producerFinished: no more ciphertext; shutdownMicroprocess: close now
        pub control: Inbox<Control>,
        /// ciphertext to the connection
        pub outbox: Outbox<Vec<u8>>,
        /// producerFinished after close_notify, shutdownMicroprocess on error
        pub signal: Outbox<Control>,
        /// plaintext to send, from the handler
        #[name = "plainInbox"]
        pub plain_inbox: Inbox<Vec<u8>>,
        /// the handler's producerFinished / shutdownMicroprocess
        #[name = "plainControl"]
        pub plain_control: Inbox<Control>,
        /// decrypted bytes, to the handler
        #[name = "plainOutbox"]
        pub plain_outbox: Outbox<Vec<u8>>,
        /// socketShutdown (the peer closed) / shutdownMicroprocess, to the handler
        #[name = "plainSignal"]
        pub plain_signal: Outbox<Control>,
        /// the handshake finished
        pub sslready: Outbox<SslReady>,
        /// the inner handler's serversignal, passed through
        pub serversignal: Outbox<Control>,
        /// once, when the layer ends: how the TLS session ended
        #[name = "tlsClosed"]
        pub tls_closed: Outbox<TlsClosed>,
        /// a turn under the server's HandshakeLimit has come
        #[name = "_handshakeTurn"]
        pub handshake_turn: Inbox<()>,
        /// STARTTLS: switch this connection to TLS (Kamaelia's makessl)
        pub makessl: Inbox<()>,
    }
}

/// The server side of the TLS layer: a connection is TLS from its first
/// byte. See the crate docs for its boxes.
pub struct TlsServer(Layer);

impl fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsServer")
    }
}

impl TlsServer {
    /// The bare layer: link its plaintext boxes yourself (in a
    /// [`Graphline`]).
    pub fn new(config: Arc<ServerConfig>) -> TlsServer {
        let engine = engine::Engine::server(config, BUFFER_LIMIT).map_err(|e| e.to_string());
        TlsServer(Layer::new("server", engine))
    }

    /// A protocol handler (H6) speaking TLS to the client and plaintext to
    /// `inner`, which it owns as a child: as a ServerCore factory,
    /// `move || TlsServer::wrap(cfg.clone(), Echo::new())`.
    pub fn wrap(config: Arc<ServerConfig>, inner: impl Into<Handle>) -> TlsServer {
        let mut server = TlsServer::new(config);
        server.0.set_inner(inner.into());
        server
    }

    /// STARTTLS (Kamaelia's CSA `makessl`): a protocol handler that passes
    /// bytes between the connection and `inner` unchanged until a message
    /// arrives in its `makessl` inbox (linked from `inner`'s `makessl`
    /// outbox if it has one), then speaks TLS. What was read before the
    /// switch reaches `inner` in the clear, never rustls; what `inner`
    /// sent before it is written in the clear. `inner` should send
    /// nothing more until `sslready`, as with Kamaelia's CSA: bytes that
    /// reach the layer before it has taken `makessl` still go in the
    /// clear. The handshake deadline runs from the switch.
    pub fn starttls(config: Arc<ServerConfig>, inner: impl Into<Handle>) -> TlsServer {
        let mut server = TlsServer::wrap(config, inner);
        server.0.plain_mode = true;
        server
    }

    /// A handshake deadline other than [`HANDSHAKE_TIMEOUT`].
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> TlsServer {
        self.0.handshake_timeout = timeout;
        self
    }

    /// TLS as the connection itself, for `TcpServer::with_csa`
    /// (Kamaelia's `TCPServer.CSA` override): a Graphline of `csa`, this
    /// layer (made with [`new`](Self::new), not [`wrap`](Self::wrap)) and
    /// a relay, presenting the CSA's boxes, so that ServerCore's handler
    /// is given plaintext and the creator's `socketShutdown` (C6) says how
    /// the TLS session ended: a session that ended badly over a socket
    /// that closed in order has the session's [`TlsError`] (as an
    /// `io::Error`, see its `From`) as `how_died`; a socket error stands.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use chassis::{ConnectionInfo, ServerCore, ServerOptions, TcpServer};
    /// use tls::TlsServer;
    ///
    /// fn echo_over_tls(cfg: Arc<rustls::ServerConfig>) -> std::io::Result<ServerCore> {
    ///     let addr = "127.0.0.1:0".parse().unwrap();
    ///     let server = TcpServer::bind(addr, ServerOptions::default())
    ///         .map_err(std::io::Error::other)?
    ///         .with_csa(move |csa, _: &ConnectionInfo| TlsServer::new(cfg.clone()).over_csa(csa));
    ///     Ok(ServerCore::with_server(|_: &ConnectionInfo| examples::Echo::new(), server))
    /// }
    /// ```
    ///
    /// The layer's `sslready` and `tlsClosed` are the Graphline's
    /// children's own (not linked to the handler). Should the linking
    /// fail (as for a layer from `wrap`, whose plaintext boxes are taken),
    /// the connection is refused: what is returned then lacks the CSA's
    /// boxes, and the server closes it and logs why.
    pub fn over_csa(self, csa: impl Into<Handle>) -> Handle {
        let layer = Handle::new(self);
        match connection::over_csa(layer.clone(), csa.into()) {
            Ok(graph) => Handle::new(graph),
            Err(e) => {
                log::error!("tls server: cannot wrap the connection: {e}");
                layer
            }
        }
    }

    /// Counts this connection's handshake under `limit`, shared by every
    /// connection of the server: above it the handshake waits, its
    /// ciphertext unread, for a turn (see [`HandshakeLimit`]).
    pub fn with_handshake_limit(mut self, limit: &HandshakeLimit) -> TlsServer {
        self.0.turn = Some(limit.turn());
        self
    }
}

impl Component for TlsServer {
    type Boxes = TlsBoxes;

    fn name(&self) -> std::borrow::Cow<'static, str> {
        "TlsServer".into()
    }

    fn created(&mut self, me: &Handle, boxes: &TlsBoxes) {
        self.0.created(me, boxes);
    }

    fn main(&mut self, cx: &mut Cx<TlsBoxes>) -> Step {
        self.0.step(cx)
    }
}

/// The client side of the TLS layer, verifying the server's certificate
/// against the config's roots and the name given. See the crate docs for
/// its boxes.
pub struct TlsClient(Layer);

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsClient")
    }
}

impl TlsClient {
    /// The bare layer, for the server called `server_name` (a DNS name
    /// or an IP address). Errors: a name that is neither.
    pub fn new(config: Arc<ClientConfig>, server_name: &str) -> io::Result<TlsClient> {
        let name = engine::server_name(server_name)?;
        let engine = engine::Engine::client(config, name, BUFFER_LIMIT).map_err(|e| e.to_string());
        Ok(TlsClient(Layer::new("client", engine)))
    }

    /// The layer owning `inner`, the plaintext handler, as a child (as
    /// [`TlsServer::wrap`]).
    pub fn wrap(
        config: Arc<ClientConfig>,
        server_name: &str,
        inner: impl Into<Handle>,
    ) -> io::Result<TlsClient> {
        let mut client = TlsClient::new(config, server_name)?;
        client.0.set_inner(inner.into());
        Ok(client)
    }

    /// STARTTLS on the client side: as [`TlsServer::starttls`], bytes
    /// pass between the connection and `inner` in the clear until a
    /// message arrives in the layer's `makessl` inbox (linked from
    /// `inner`'s `makessl` outbox if it has one); then the client's
    /// handshake begins, `sslready` reports its end, and everything after
    /// is TLS. Errors: a name that is neither a DNS name nor an IP address.
    pub fn starttls(
        config: Arc<ClientConfig>,
        server_name: &str,
        inner: impl Into<Handle>,
    ) -> io::Result<TlsClient> {
        let mut client = TlsClient::wrap(config, server_name, inner)?;
        client.0.plain_mode = true;
        Ok(client)
    }

    /// A handshake deadline other than [`HANDSHAKE_TIMEOUT`].
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> TlsClient {
        self.0.handshake_timeout = timeout;
        self
    }

    /// The layer between `connection` (a `TcpClient`, or anything with its
    /// boxes: `inbox`, `control`, `outbox`, `signal` carrying bytes and
    /// [`Control`]) and itself (a `TlsClient` made with [`wrap`](Self::wrap)),
    /// as one [`Graphline`]: it ends when both have.
    pub fn over(self, connection: impl Into<Handle>) -> Result<Graphline, LinkError> {
        Graphline::new(
            vec![("tcp", connection.into()), ("tls", Handle::new(self))],
            &[
                (("tls", "outbox"), ("tcp", "inbox")),
                (("tls", "signal"), ("tcp", "control")),
                (("tcp", "outbox"), ("tls", "inbox")),
                (("tcp", "signal"), ("tls", "control")),
            ],
        )
    }
}

impl Component for TlsClient {
    type Boxes = TlsBoxes;

    fn name(&self) -> std::borrow::Cow<'static, str> {
        "TlsClient".into()
    }

    fn created(&mut self, me: &Handle, boxes: &TlsBoxes) {
        self.0.created(me, boxes);
    }

    fn main(&mut self, cx: &mut Cx<TlsBoxes>) -> Step {
        self.0.step(cx)
    }
}

/// The crypto provider every config here uses: ring (see the crate docs),
/// for `ServerConfig::builder_with_provider` and
/// `ClientConfig::builder_with_provider`.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    engine::provider()
}

/// A server config from a PEM certificate chain (leaf first) and a PEM
/// private key, on the ring provider, with rustls's safe default
/// protocol versions and no client authentication. Errors name the file.
pub fn server_config_from_pem(cert: &Path, key: &Path) -> io::Result<Arc<ServerConfig>> {
    engine::server_config_from_pem(cert, key).map(Arc::new)
}

/// A client config trusting `roots`, on the ring provider, with rustls's
/// safe default protocol versions and no client certificate.
pub fn client_config(roots: RootCertStore) -> Result<Arc<ClientConfig>, rustls::Error> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
