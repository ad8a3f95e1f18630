//! C6 during a handshake: a reset (SO_LINGER 0) or `shutdownMicroprocess`
//! while the handshake is in progress ends the connection with C6's
//! messages (`socketShutdown` to the creator, `shutdownCSA` out of the
//! CSA's `signal`) exactly once, and `tlsClosed` once.
//!
//! Each connection's CSA is wrapped (`TcpServer::with_csa`) in a Graphline
//! with a tap on its `CreatorFeedback` and `signal`, which counts what
//! passes and sends `socketShutdown` on to the server.

mod common;

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axon::{boxes, link, Component, Control, Cx, Graphline, Handle, Inbox, Outbox, Step};
use chassis::{ConnectionInfo, Csa, ServerCore, ServerOptions, TcpServer};
use common::{client, exchange, next_closed, Observer, Pki};
use csa::{ShutdownCsa, SocketShutdown};
use examples::Echo;
use testkit::{any_loopback_port, connect, sees_eof, wait_until, Running};
use tls::{HandshakeLimit, TlsError, TlsServer};

/// What the taps saw, over all connections.
#[derive(Default, Debug)]
struct Seen {
    /// `how_died` of each socketShutdown to the creator.
    socket_shutdown: Vec<Option<io::ErrorKind>>,
    /// shutdownCSA messages.
    shutdown_csa: usize,
}

boxes! {
    /// The tap's boxes.
    pub struct TapBoxes {
        /// the CSA's CreatorFeedback
        pub feedback: Inbox<SocketShutdown>,
        /// the CSA's signal (shutdownCSA)
        #[name = "csaSignal"]
        pub csa_signal: Inbox<ShutdownCsa>,
        /// socketShutdown on to the server
        #[name = "CreatorFeedback"]
        pub creator_feedback: Outbox<SocketShutdown>,
    }
}

/// Counts C6's messages and passes socketShutdown on; ends once its CSA
/// has (so a second message would still be counted).
struct Tap {
    csa: Handle,
    seen: Arc<Mutex<Seen>>,
}

impl Component for Tap {
    type Boxes = TapBoxes;

    fn main(&mut self, cx: &mut Cx<TapBoxes>) -> Step {
        let mut seen = self.seen.lock().unwrap();
        while let Some(m) = cx.feedback.recv() {
            seen.socket_shutdown
                .push(m.how_died.as_ref().map(io::Error::kind));
            let _ = cx.creator_feedback.send(m);
        }
        while cx.csa_signal.recv().is_some() {
            seen.shutdown_csa += 1;
        }
        if self.csa.is_done() && cx.feedback.is_empty() && cx.csa_signal.is_empty() {
            return Step::Done;
        }
        Step::Pause
    }
}

fn tapped(csa: Csa, seen: &Arc<Mutex<Seen>>, taps: &Mutex<Vec<Handle>>) -> Handle {
    let csa = Handle::new(csa);
    let tap = Handle::new(Tap {
        csa: csa.clone(),
        seen: seen.clone(),
    });
    taps.lock().unwrap().push(tap.clone());
    let through = |name| (("self", name), ("csa", name));
    let out = |name| (("csa", name), ("self", name));
    Graphline::new(
        vec![("csa", csa), ("tap", tap)],
        &[
            through("inbox"),
            through("control"),
            through("ReadReady"),
            through("SendReady"),
            out("outbox"),
            out("readShutdown"),
            (("csa", "CreatorFeedback"), ("tap", "feedback")),
            (("csa", "signal"), ("tap", "csaSignal")),
            (("tap", "CreatorFeedback"), ("self", "CreatorFeedback")),
        ],
    )
    .expect("fresh children link")
    .into()
}

/// A TLS echo server whose connections are tapped, its handshakes under a
/// limit (to see one in progress), its layers kept and observed.
struct Tapped {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    taps: Arc<Mutex<Vec<Handle>>>,
    layers: Arc<Mutex<Vec<Handle>>>,
    limit: HandshakeLimit,
    observer: Observer,
    _running: Running,
}

fn tapped_server(pki: &Pki) -> Tapped {
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let taps: Arc<Mutex<Vec<Handle>>> = Arc::default();
    let layers: Arc<Mutex<Vec<Handle>>> = Arc::default();
    let limit = HandshakeLimit::new(8);
    let observer = Observer::new("observer");
    let (s, t) = (seen.clone(), taps.clone());
    let server = TcpServer::bind(any_loopback_port(), ServerOptions::default())
        .unwrap()
        .with_csa(move |csa, _: &ConnectionInfo| tapped(csa, &s, &t));
    let (cfg, l, lim, to) = (
        pki.server.clone(),
        layers.clone(),
        limit.clone(),
        observer.handle().clone(),
    );
    let core = ServerCore::with_server(
        move |_: &ConnectionInfo| {
            let layer = TlsServer::wrap(cfg.clone(), Echo::new()).with_handshake_limit(&lim);
            let layer = Handle::new(layer);
            link((&layer, "tlsClosed"), (&to, "tlsClosed")).unwrap();
            l.lock().unwrap().push(layer.clone());
            layer
        },
        server,
    );
    let addr = core.local_addr();
    let scheduler = selector::scheduler().unwrap();
    scheduler.activate(core).unwrap();
    Tapped {
        addr,
        seen,
        taps,
        layers,
        limit,
        observer,
        _running: Running::start(scheduler),
    }
}

/// A client whose handshake is in progress at the server: half a record
/// header has been fed to rustls (its turn under the limit is taken).
fn mid_handshake(server: &Tapped) -> std::net::TcpStream {
    let mut sock = connect(server.addr);
    sock.write_all(&[22, 3, 1]).unwrap();
    wait_until("the handshake to start", || server.limit.in_progress() == 1);
    sock
}

/// Waits for the connection's components to end, then checks C6 was said
/// once, with `how_died` of this kind, and tlsClosed once, with `tls`.
#[track_caller]
fn c6_said_once(server: &Tapped, how_died: Option<io::ErrorKind>, tls: &[TlsError]) {
    let tap = server.taps.lock().unwrap()[0].clone();
    let layer = server.layers.lock().unwrap()[0].clone();
    wait_until("the CSA, its tap and the layer to end", || {
        tap.is_done() && layer.is_done()
    });
    let seen = server.seen.lock().unwrap();
    assert_eq!(seen.socket_shutdown, [how_died], "socketShutdown: {seen:?}");
    assert_eq!(seen.shutdown_csa, 1, "shutdownCSA: {seen:?}");
    drop(seen);
    let closed = next_closed(&server.observer);
    let how = closed.how_died.expect("a handshake that never finished");
    assert!(tls.contains(&how), "tlsClosed said {how:?}");
    assert!(!closed.handshaken);
    let again = server.observer.closed.recv();
    assert!(again.is_none(), "tlsClosed twice: {again:?}");
    // The turn under the limit came back, and the server goes on.
    assert_eq!(server.limit.in_progress(), 0);
}

#[test]
fn c6_a_reset_during_the_handshake_says_c6_once_with_the_reset_as_how_died() {
    let pki = Pki::new();
    let server = tapped_server(&pki);
    let sock = mid_handshake(&server);
    // SO_LINGER 0: the close sends a reset.
    socket2::SockRef::from(&sock)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(sock);
    // ServerCore tells the layer socketShutdown, then shutdownMicroprocess
    // (H3): the input ended during the handshake.
    c6_said_once(
        &server,
        Some(io::ErrorKind::ConnectionReset),
        &[TlsError::EndedInHandshake],
    );
    let (_, got) = exchange(
        client(server.addr, pki.client(), "localhost"),
        b"next".to_vec(),
    );
    assert_eq!(got, b"next");
}

#[test]
fn c6_shutdown_microprocess_during_the_handshake_says_c6_once_and_closes() {
    let pki = Pki::new();
    let server = tapped_server(&pki);
    let mut sock = mid_handshake(&server);
    let layer = server.layers.lock().unwrap()[0].clone();
    layer
        .postbox::<Control>("control")
        .unwrap()
        .send(Control::ShutdownMicroprocess)
        .unwrap();
    assert!(sees_eof(&mut sock), "a byte instead of the close");
    c6_said_once(&server, None, &[TlsError::StoppedInHandshake]);
    let (_, got) = exchange(
        client(server.addr, pki.client(), "localhost"),
        b"next".to_vec(),
    );
    assert_eq!(got, b"next");
}
