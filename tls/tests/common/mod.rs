//! Certificates (rcgen), a TLS echo server, and blocking rustls clients.

#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axon::{
    boxes, link, Component, Control, Cx, Endpoint, Graphline, Handle, Inbox, Outbox, Standard, Step,
};
use chassis::{ServerOptions, SimpleServer};
use csa::SocketShutdown;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, StreamOwned};
use testkit::{Running, DEADLINE};
use tls::{SslReady, TlsClosed, TlsError, TlsServer};

/// A CA and a server certificate for `localhost` signed by it.
pub struct Pki {
    pub ca: CertificateDer<'static>,
    pub server: Arc<ServerConfig>,
    ca_cert: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
}

/// A certificate and its key, for rustls.
pub struct Leaf {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// Validity from 2000 to 2001: long expired.
pub fn expired(params: &mut rcgen::CertificateParams) {
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(2001, 1, 1);
}

fn ca() -> (rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    (params.self_signed(&key).unwrap(), key)
}

fn signed_by(
    ca: &rcgen::Certificate,
    ca_key: &rcgen::KeyPair,
    name: &str,
    tweak: impl FnOnce(&mut rcgen::CertificateParams),
) -> Leaf {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![name.into()]).unwrap();
    tweak(&mut params);
    let cert = params.signed_by(&key, ca, ca_key).unwrap();
    Leaf {
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    }
}

impl Pki {
    pub fn new() -> Pki {
        Pki::with_server_cert(|_| {})
    }

    /// As [`Pki::new`], the server certificate's parameters changed by
    /// `tweak` (see [`expired`]).
    pub fn with_server_cert(tweak: impl FnOnce(&mut rcgen::CertificateParams)) -> Pki {
        let (ca_cert, ca_key) = ca();
        let leaf = signed_by(&ca_cert, &ca_key, "localhost", tweak);
        let server = ServerConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(leaf.chain, leaf.key)
            .unwrap();
        Pki {
            ca: ca_cert.der().clone(),
            server: Arc::new(server),
            ca_cert,
            ca_key,
        }
    }

    /// A certificate for `name` signed by this CA, its parameters changed
    /// by `tweak`.
    pub fn leaf(&self, name: &str, tweak: impl FnOnce(&mut rcgen::CertificateParams)) -> Leaf {
        signed_by(&self.ca_cert, &self.ca_key, name, tweak)
    }

    /// A server config that asks every client for a certificate from this
    /// CA (and serves the same `localhost` certificate).
    pub fn server_verifying_clients(&self) -> Arc<ServerConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            tls::provider(),
        )
        .build()
        .unwrap();
        let leaf = self.leaf("localhost", |_| {});
        let server = ServerConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(leaf.chain, leaf.key)
            .unwrap();
        Arc::new(server)
    }

    /// A client config trusting this CA and presenting `leaf`.
    pub fn client_with_cert(&self, leaf: Leaf) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        let config = ClientConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(leaf.chain, leaf.key)
            .unwrap();
        Arc::new(config)
    }

    /// A client config trusting this CA.
    pub fn client(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        tls::client_config(roots).unwrap()
    }

    /// A client config trusting another, unrelated CA.
    pub fn stranger() -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(ca().0.der().clone()).unwrap();
        tls::client_config(roots).unwrap()
    }
}

/// A SimpleServer on 127.0.0.1 port 0 whose handler is `handler()`, on a
/// Selector scheduler of its own thread.
pub fn serve<H: Into<Handle>>(
    handler: impl FnMut() -> H + Clone + Send + 'static,
) -> (SocketAddr, Running) {
    let (addr, _core, running) = serve_core(handler);
    (addr, running)
}

/// [`serve`], with the server's ServerCore (to stop it).
pub fn serve_core<H: Into<Handle>>(
    handler: impl FnMut() -> H + Clone + Send + 'static,
) -> (SocketAddr, Handle, Running) {
    let server = SimpleServer::new(
        handler,
        "127.0.0.1:0".parse().unwrap(),
        ServerOptions::default(),
    )
    .unwrap();
    let addr = server.local_addr();
    let scheduler = selector::scheduler().unwrap();
    let core = scheduler.activate(server).unwrap();
    (addr, core, Running::start(scheduler))
}

/// An echo SimpleServer on 127.0.0.1 port 0 with TLS inside each CSA
/// (`ServerOptions::session`), on a Selector scheduler of its own thread.
pub fn serve_in_csa(config: Arc<ServerConfig>) -> (SocketAddr, Running) {
    let options = ServerOptions {
        session: Some(tls::ServerSessions::new(config).factory()),
        ..ServerOptions::default()
    };
    let server =
        SimpleServer::new(examples::Echo::new, "127.0.0.1:0".parse().unwrap(), options).unwrap();
    let addr = server.local_addr();
    let scheduler = selector::scheduler().unwrap();
    scheduler.activate(server).unwrap();
    (addr, Running::start(scheduler))
}

boxes! {
    /// What the layers of a server report: each layer's `sslready` and
    /// `tlsClosed` lead here.
    pub struct ObserverBoxes {
        /// handshakes finished
        pub sslready: Inbox<SslReady>,
        /// sessions ended, and how
        #[name = "tlsClosed"]
        pub closed: Inbox<TlsClosed>,
    }
}

pub type Observer = Endpoint<ObserverBoxes>;

/// [`serve`] with layers made by `layer()`, each one's `sslready` and
/// `tlsClosed` linked to the [`Observer`] returned.
pub fn serve_observed(
    layer: impl FnMut() -> TlsServer + Clone + Send + 'static,
) -> (SocketAddr, Running, Observer) {
    let (addr, _core, running, observer) = serve_observed_core(layer);
    (addr, running, observer)
}

/// [`serve_observed`], with the server's ServerCore (to stop it).
pub fn serve_observed_core(
    mut layer: impl FnMut() -> TlsServer + Clone + Send + 'static,
) -> (SocketAddr, Handle, Running, Observer) {
    let observer = Observer::new("observer");
    let to = observer.handle().clone();
    let (addr, core, running) = serve_core(move || {
        let h = Handle::new(layer());
        link((&h, "sslready"), (&to, "sslready")).unwrap();
        link((&h, "tlsClosed"), (&to, "tlsClosed")).unwrap();
        h
    });
    (addr, core, running, observer)
}

/// The next session end a server's layers report (within the deadline).
#[track_caller]
pub fn next_closed(observer: &Observer) -> TlsClosed {
    observer
        .closed
        .recv_timeout(DEADLINE)
        .expect("no tlsClosed before the deadline")
}

pub type Client = StreamOwned<ClientConnection, TcpStream>;

/// A blocking rustls client of `addr` for `name` (not yet handshaken).
pub fn client(addr: SocketAddr, config: Arc<ClientConfig>, name: &str) -> Client {
    let sock = testkit::connect(addr);
    sock.set_read_timeout(Some(DEADLINE)).unwrap();
    sock.set_write_timeout(Some(DEADLINE)).unwrap();
    let name = ServerName::try_from(name.to_owned()).unwrap();
    StreamOwned::new(ClientConnection::new(config, name).unwrap(), sock)
}

/// Completes the handshake (the client's first write or read would).
pub fn handshake(c: &mut Client) -> Result<(), std::io::Error> {
    while c.conn.is_handshaking() {
        c.conn.complete_io(&mut c.sock)?;
    }
    Ok(())
}

/// Writes `msg` on a thread while reading `n` bytes back.
pub fn exchange(mut c: Client, msg: Vec<u8>) -> (Client, Vec<u8>) {
    // One rustls connection cannot be shared by two threads: write and
    // read in turns, in pieces small enough that the echo never stalls.
    let mut got = Vec::with_capacity(msg.len());
    let mut buf = vec![0u8; 64 * 1024];
    for piece in msg.chunks(16 * 1024) {
        c.write_all(piece).unwrap();
        c.flush().unwrap();
        read_more(&mut c, &mut got, piece.len(), &mut buf);
    }
    (c, got)
}

/// Reads `n` more plaintext bytes into `got` (within the sockets'
/// deadline), through `buf`.
#[track_caller]
pub fn read_more(c: &mut Client, got: &mut Vec<u8>, n: usize, buf: &mut [u8]) {
    let want = got.len() + n;
    while got.len() < want {
        let k = c.read(buf).unwrap();
        assert!(k > 0, "EOF after {} bytes", got.len());
        got.extend_from_slice(&buf[..k]);
    }
}

pub fn short(d: u64) -> Duration {
    Duration::from_millis(d)
}

/// Echo that counts the plaintext bytes it is given.
pub struct Counting {
    count: Arc<AtomicUsize>,
    held: Option<Vec<u8>>,
}

impl Counting {
    /// Counting into `count`.
    pub fn new(count: &Arc<AtomicUsize>) -> Counting {
        Counting {
            count: count.clone(),
            held: None,
        }
    }
}

impl Component for Counting {
    type Boxes = Standard<Vec<u8>, Vec<u8>>;

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        let next = |cx: &Cx<Self::Boxes>| {
            cx.inbox.recv().map(|b| {
                self.count.fetch_add(b.len(), Ordering::Relaxed);
                b
            })
        };
        while let Some(b) = self.held.take().or_else(|| next(cx)) {
            if let Err(full) = cx.outbox.send(b) {
                self.held = Some(full.into_inner());
                return Step::Pause;
            }
        }
        if cx.control.recv().is_some() {
            let _ = cx.signal.send(Control::ProducerFinished);
            return Step::Done;
        }
        Step::Pause
    }
}

/// `how_died` of each socketShutdown to the creator: its kind, and the
/// TLS error inside, if any.
pub type Seen = Arc<Mutex<Vec<Option<(io::ErrorKind, Option<TlsError>)>>>>;

boxes! {
    /// The tap's boxes.
    pub struct TapBoxes {
        /// the connection's CreatorFeedback
        pub feedback: Inbox<SocketShutdown>,
        /// on to the server
        #[name = "CreatorFeedback"]
        pub creator_feedback: Outbox<SocketShutdown>,
    }
}

/// Notes the `how_died` of the one socketShutdown on its way to the server.
struct Tap(Seen);

impl Component for Tap {
    type Boxes = TapBoxes;

    fn main(&mut self, cx: &mut Cx<TapBoxes>) -> Step {
        let Some(msg) = cx.feedback.recv() else {
            return Step::Pause;
        };
        let how = msg.how_died.as_ref().map(|e| {
            let tls = e.get_ref().and_then(|i| i.downcast_ref::<TlsError>());
            (e.kind(), tls.cloned())
        });
        self.0.lock().unwrap().push(how);
        let _ = cx.creator_feedback.send(msg);
        Step::Done
    }
}

/// `conn` (a CSA, or what stands in its place) in a Graphline with a tap
/// on its `CreatorFeedback`, noting each `how_died` in `seen`.
pub fn tapped(conn: Handle, seen: &Seen) -> Handle {
    let through = |name| (("self", name), ("conn", name));
    let out = |name| (("conn", name), ("self", name));
    Graphline::new(
        vec![("conn", conn), ("tap", Handle::new(Tap(seen.clone())))],
        &[
            through("inbox"),
            through("control"),
            through("ReadReady"),
            through("SendReady"),
            out("outbox"),
            out("readShutdown"),
            (("conn", "CreatorFeedback"), ("tap", "feedback")),
            (("tap", "CreatorFeedback"), ("self", "CreatorFeedback")),
        ],
    )
    .expect("fresh children link")
    .into()
}
