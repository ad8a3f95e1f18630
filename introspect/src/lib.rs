//! # See the running system
//!
//! Kamaelia's signature was that you could *see* a running system: its
//! `Introspector` streamed the component graph to the Axon visualiser.
//! This crate does that for Axon, with counts, served by our own stack:
//!
//! - an [`Introspector`] component takes [`Snapshot`](axon::Snapshot)s of
//!   its scheduler (every component, its boxes with queue length, limit,
//!   high-water mark and delivered count, every linkage), at most about
//!   once a second and only while somebody is watching;
//! - a [`View`] of each: the kind-level [`Graph`] (10,000 CSAs are one node
//!   with a count; `graph.json`), the [`Instances`] of a kind as a top-N
//!   table sorted by a column, `graph.dot` (record nodes whose ports are
//!   the boxes), and Kamaelia's topology text ([`kamaelia`]);
//! - [`serve`]: a second [`ServerCore`](chassis::ServerCore) on the same
//!   scheduler, an [`HttpHandler`] per connection (`httparse`, bounded),
//!   answering `/` (one compiled-in page, no CDN, the first snapshot
//!   embedded, counts refreshed every second), `/graph.json`,
//!   `/graph.dot`, `/instances?kind=K&sort=COL&n=N`, `/topology.txt` and
//!   `/topology` (Kamaelia's text, streamed).
//!
//! The introspection server's own components (the Introspector, its
//! ServerCore and everything under it) are tagged: their kinds' node ids
//! end in [`OWN_SUFFIX`] and carry `"own": true`, and the page hides them
//! unless asked.
//!
//! ## Mounting it on your own scheduler
//!
//! One call, before or after `run` starts:
//!
//! ```
//! use std::io::{Read, Write};
//! use std::time::Duration;
//!
//! let scheduler = selector::scheduler().unwrap();
//! // ... activate your own components here ...
//! let seen = introspect::serve(&scheduler, "127.0.0.1:0".parse().unwrap()).unwrap();
//! let addr = seen.local_addr();
//! let stop = scheduler.handle();
//! let running = std::thread::spawn(move || scheduler.run());
//!
//! let mut client = std::net::TcpStream::connect(addr).unwrap();
//! client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
//! client.write_all(b"GET /graph.json HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
//! let mut reply = String::new();
//! client.read_to_string(&mut reply).unwrap(); // the server closes after one reply
//! assert!(reply.starts_with("HTTP/1.1 200 OK"));
//! assert!(reply.contains(r#""kind":"Introspector""#));
//!
//! stop.stop();
//! running.join().unwrap();
//! ```
//!
//! To stop it with the rest of a server, link that server's `signal`
//! outbox (or anything that sends `producerFinished`) to the
//! [`Introspection::introspector`]'s `control`: it stops its server, then
//! passes the message on out of its own `signal` (the selector demo does
//! this, so that SIGTERM still ends the process promptly).
//!
//! ## Security
//!
//! The introspection server shows every component's name and the shape of
//! the system, and has no authentication: listen on loopback. The demo's
//! `--introspect` warns when it is asked to listen elsewhere.

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

pub mod graph;
pub mod http;
pub mod introspector;
pub mod kamaelia;
mod page;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axon::{Control, Handle, SchedulerHandle};
use chassis::{BindError, ServerOptions, SimpleServer};

pub use graph::{Graph, Instances, SortBy, View, OWN_SUFFIX};
pub use http::HttpHandler;
pub use introspector::{Introspector, Want};

/// How the introspection server is set up ([`serve_with`]).
#[derive(Debug, Clone)]
pub struct Options {
    /// How long a client has to send its request head before the
    /// connection is closed (a silent or trickling client). Default 10 s.
    pub head_timeout: Duration,
    /// The most introspection connections open at once (T8: more wait in
    /// the backlog). Default 64.
    pub max_connections: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            head_timeout: http::HEAD_TIMEOUT,
            max_connections: 64,
        }
    }
}

/// The introspection server, once it listens ([`serve`]).
#[derive(Debug, Clone)]
pub struct Introspection {
    addr: SocketAddr,
    introspector: Handle,
}

impl Introspection {
    /// The address it listens on (the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The [`Introspector`]: link to its `control` to stop it, or from its
    /// `signal` to hear that it has.
    pub fn introspector(&self) -> &Handle {
        &self.introspector
    }

    /// Stops the server and the Introspector (`shutdownMicroprocess` to
    /// its `control`).
    pub fn stop(&self) {
        if let Ok(control) = self.introspector.postbox::<Control>("control") {
            let _ = control.send(Control::ShutdownMicroprocess);
        }
    }
}

/// Serves introspection of `scheduler` on `addr` ([`serve_with`] with the
/// default [`Options`]).
pub fn serve(
    scheduler: impl Into<SchedulerHandle>,
    addr: SocketAddr,
) -> Result<Introspection, BindError> {
    serve_with(scheduler, addr, Options::default())
}

/// Binds `addr` now (so a port in use is an error here) and activates, on
/// `scheduler` (one made by `selector::scheduler()`, running or not yet),
/// an [`Introspector`] running a ServerCore of [`HttpHandler`]s.
pub fn serve_with(
    scheduler: impl Into<SchedulerHandle>,
    addr: SocketAddr,
    options: Options,
) -> Result<Introspection, BindError> {
    let scheduler = scheduler.into();
    let slot = Arc::new(OnceLock::new());
    let server_options = ServerOptions {
        max_connections: Some(options.max_connections.max(1)),
        ..ServerOptions::default()
    };
    let core = SimpleServer::new(
        http::factory(slot.clone(), options.head_timeout),
        addr,
        server_options,
    )?;
    let addr = core.local_addr();
    let introspector = Handle::new(Introspector::with_server(Handle::new(core)));
    if let Ok(inbox) = introspector.postbox("inbox") {
        let _ = slot.set(inbox);
    }
    if let Err(e) = scheduler.activate(&introspector) {
        // A handle made just now is activated for the first time.
        log::error!("introspect: {e}");
    }
    log::info!("introspect: serving on http://{addr}/");
    Ok(Introspection { addr, introspector })
}
