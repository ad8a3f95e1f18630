//! The raw mio echo server we compete with: the strongest one a competent
//! engineer would ship. One thread, edge-triggered, a slab of connections,
//! 64 KiB reads into one buffer reused by every connection, a
//! per-connection pending buffer only for what a write could not take, and
//! reads paused while it is non-empty.
//!
//! A short read (fewer bytes than the buffer holds) counts as having
//! drained the socket, as tokio and our CSA take it: no `WouldBlock` read
//! follows it, one system call less per request. Edge-triggered epoll
//! reports any byte that arrives afterwards as a new edge. The one
//! exception is a read-closed (`EPOLLRDHUP`) event: the peer's FIN brings
//! no further edge, so after it the server reads until 0 or `WouldBlock`.
//!
//! `--strict` is mio's documented pattern instead ("Draining readiness"):
//! read until `WouldBlock` every time. `compare` runs it as `mio-strict`.
//!
//! `mio-echo [--port N] [--strict]`: prints `listening on HOST:PORT`,
//! serves loopback until killed.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

const LISTENER: Token = Token(usize::MAX);
const BUF: usize = 64 * 1024;

struct Conn {
    stream: TcpStream,
    /// Echo bytes a write could not take yet; empty almost always.
    pending: Vec<u8>,
    offset: usize,
    /// The socket may hold unread bytes: an edge came and no read since
    /// has drained it (a short read, or `WouldBlock`).
    readable: bool,
    /// The peer's FIN has been seen: read to 0 or `WouldBlock` from now on.
    read_closed: bool,
}

struct Options {
    port: u16,
    strict: bool,
}

fn main() -> io::Result<()> {
    let opts = options().unwrap_or_else(|e| {
        eprintln!("{}: {e}", env!("CARGO_BIN_NAME"));
        std::process::exit(2);
    });
    let mut listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], opts.port)))?;
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    // Announced once it is ready to serve, every descriptor open.
    println!("listening on {}", listener.local_addr()?);
    let mut events = Events::with_capacity(1024);
    let mut conns: Slab<Conn> = Slab::new();
    let mut buf = vec![0u8; BUF];
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let _ = stream.set_nodelay(true);
                            let entry = conns.vacant_entry();
                            poll.registry().register(
                                &mut stream,
                                Token(entry.key()),
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            entry.insert(Conn {
                                stream,
                                pending: Vec::new(),
                                offset: 0,
                                readable: false,
                                read_closed: false,
                            });
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => break,
                    }
                }
                continue;
            }
            let key = event.token().0;
            let closed = match conns.get_mut(key) {
                Some(conn) => {
                    note(conn, event);
                    serve(conn, &mut buf, opts.strict)
                }
                None => false,
            };
            if closed {
                let mut conn = conns.remove(key);
                let _ = poll.registry().deregister(&mut conn.stream);
            }
        }
    }
}

/// Records what an event says about the read side.
fn note(conn: &mut Conn, event: &Event) {
    if event.is_readable() || event.is_read_closed() || event.is_error() {
        // An error is surfaced by the next read.
        conn.readable = true;
    }
    if event.is_read_closed() {
        conn.read_closed = true;
    }
}

/// Flush pending, then read (only while nothing is pending and the socket
/// may hold bytes) and echo. Returns true when the connection is finished.
fn serve(conn: &mut Conn, buf: &mut [u8], strict: bool) -> bool {
    loop {
        while conn.offset < conn.pending.len() {
            match conn.stream.write(&conn.pending[conn.offset..]) {
                Ok(n) => conn.offset += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
        conn.pending.clear();
        conn.offset = 0;
        if !conn.readable {
            return false;
        }
        match conn.stream.read(buf) {
            Ok(0) => return true,
            Ok(n) => {
                if !strict && n < buf.len() && !conn.read_closed {
                    // Drained: the next byte to arrive is a new edge.
                    conn.readable = false;
                }
                let mut written = 0;
                while written < n {
                    match conn.stream.write(&buf[written..n]) {
                        Ok(w) => written += w,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            conn.pending.extend_from_slice(&buf[written..n]);
                            break;
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => return true,
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                conn.readable = false;
                return false;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

/// `--port N` (or `--port=N`; 0, the default, picks a free port) and
/// `--strict`.
fn options() -> Result<Options, lexopt::Error> {
    use lexopt::prelude::*;
    let mut o = Options {
        port: 0,
        strict: false,
    };
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("port") => o.port = parser.value()?.parse()?,
            Long("strict") => o.strict = true,
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(o)
}
