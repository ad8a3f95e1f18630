//! Helpers shared by the integration tests: a server on its own scheduler
//! thread, and a bare TCPServer with a probe on its protocolHandlerSignal.
//! Deadlines, scheduler threads, loopback clients and `/proc` readers come
//! from `testkit`, re-exported here.
#![allow(dead_code)]

use std::net::SocketAddr;

use axon::{boxes, link, Control, Endpoint, Handle, Inbox, Scheduler};
use chassis::{ServerCore, ServerOptions, SimpleServer};
use tcpserver::{NewCsa, ServerEvent, TcpServer};

pub use testkit::*;

/// An echo server (SimpleServer + examples::Echo) on 127.0.0.1, port 0.
pub fn echo_server() -> (SocketAddr, Handle, Running) {
    server_with(examples::Echo::new, ServerOptions::default())
}

/// A SimpleServer with this protocol on 127.0.0.1, port 0, its scheduler
/// running.
pub fn server_with<F, H>(protocol: F, options: ServerOptions) -> (SocketAddr, Handle, Running)
where
    F: FnMut() -> H + Clone + Send + 'static,
    H: Into<Handle>,
{
    let (addr, core, scheduler) = activate_on_new_scheduler(
        SimpleServer::new(protocol, any_loopback_port(), options).unwrap(),
    );
    (addr, core, Running::start(scheduler))
}

/// Activates `core` on a new Selector scheduler that is not running yet:
/// the caller starts it (`Running::start`) when the test is ready, e.g.
/// once clients wait in the backlog. It runs with [`shards`] shards (the
/// fixture parameter `KAMAELIA_SHARDS`, default 1).
pub fn activate_on_new_scheduler(core: ServerCore) -> (SocketAddr, Handle, Scheduler) {
    let scheduler = selector::scheduler().unwrap();
    let addr = core.local_addr();
    let core = scheduler.activate(core.threads(shards()).unwrap()).unwrap();
    (addr, core, scheduler)
}

boxes! {
    /// A probe's inboxes, one for each thing a TCPServer and its CSAs send.
    pub struct ServerProbe {
        /// the server's protocolHandlerSignal
        pub events: Inbox<ServerEvent>,
        /// a CSA's outbox
        pub data: Inbox<Vec<u8>>,
        /// a CSA's signal
        #[name = "csaSignal"]
        pub csa_signal: Inbox<csa::ShutdownCsa>,
        /// the server's signal
        #[name = "serverSignal"]
        pub server_signal: Inbox<Control>,
    }
}

/// An endpoint with the inboxes of [`ServerProbe`]: `events`, `data`,
/// `csaSignal` and `serverSignal`.
pub fn server_probe() -> Endpoint<ServerProbe> {
    Endpoint::new("probe")
}

/// A bare TCPServer (no ServerCore) on 127.0.0.1, port 0, its
/// protocolHandlerSignal linked to a [`server_probe`]'s `events`, activated
/// on a new Selector scheduler that is not running yet: link more or queue
/// clients in the backlog first, then `Running::start` it.
pub fn tcp_server_with_probe_unstarted(
    options: ServerOptions,
) -> (SocketAddr, Handle, Endpoint<ServerProbe>, Scheduler) {
    let scheduler = selector::scheduler().unwrap();
    let server = TcpServer::bind(any_loopback_port(), options).unwrap();
    let addr = server.local_addr();
    let server = Handle::new(server);
    let probe = server_probe();
    link(
        (&server, "protocolHandlerSignal"),
        (probe.handle(), "events"),
    )
    .unwrap();
    scheduler.activate(&server).unwrap();
    (addr, server, probe, scheduler)
}

/// [`tcp_server_with_probe_unstarted`], with its scheduler running.
pub fn tcp_server_with_probe(
    options: ServerOptions,
) -> (SocketAddr, Handle, Endpoint<ServerProbe>, Running) {
    let (addr, server, probe, scheduler) = tcp_server_with_probe_unstarted(options);
    (addr, server, probe, Running::start(scheduler))
}

/// The next event on a [`server_probe`]'s `events`, waited for with the
/// deadline.
#[track_caller]
pub fn next_event(probe: &Endpoint<ServerProbe>) -> ServerEvent {
    probe
        .events
        .recv_timeout(DEADLINE)
        .expect("no event from the server before the deadline")
}

/// Waits (with the deadline) for the next event on a [`server_probe`]'s
/// `events` and checks it is newCSA.
#[track_caller]
pub fn expect_new_csa(probe: &Endpoint<ServerProbe>) -> NewCsa {
    match next_event(probe) {
        ServerEvent::NewCsa(new) => new,
        other => panic!("expected newCSA, got {other:?}"),
    }
}
