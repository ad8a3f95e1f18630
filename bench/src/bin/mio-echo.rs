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
//! `--threads N` (for `bench scale`): N such loops, each on its own thread
//! with its own `SO_REUSEPORT` listener on the same port, so the kernel
//! spreads new connections over them (glommio's and monoio's design, and
//! the ceiling for our shards). `--threads 1`, the default, is exactly the
//! one-thread server above: one plain listener, no extra thread.
//!
//! `--lean` saves two system calls per connection, as our TCPServer and
//! Selector do: `TCP_NODELAY` is set once on the listener (Linux copies
//! it to every accepted socket) instead of on each, and a closed
//! connection is dropped without a `deregister` (its close takes it out
//! of epoll). `bench compare` runs the default; the note on issue 13
//! reports both.
//!
//! `mio-echo [--port N] [--strict] [--lean] [--threads N]`: prints `listening on
//! HOST:PORT`, serves loopback until killed.

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

#[derive(Clone, Copy)]
struct Options {
    port: u16,
    strict: bool,
    lean: bool,
    threads: usize,
}

fn main() -> io::Result<()> {
    let opts = options().unwrap_or_else(|e| {
        eprintln!("{}: {e}", env!("CARGO_BIN_NAME"));
        std::process::exit(2);
    });
    if opts.threads > 1 {
        return reuseport(&opts);
    }
    let mut listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], opts.port)))?;
    let poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    // Announced once it is ready to serve, every descriptor open.
    println!("listening on {}", listener.local_addr()?);
    run(listener, poll, &opts)
}

/// `--threads N`, N > 1: N listeners bound with `SO_REUSEPORT` to one port
/// (the first picks it when `--port 0`), all bound and registered before
/// the port is announced, then one thread each running [`run`].
fn reuseport(opts: &Options) -> io::Result<()> {
    use socket2::{Domain, Socket, Type};
    let mut addr = SocketAddr::from(([127, 0, 0, 1], opts.port));
    let mut shards = Vec::with_capacity(opts.threads);
    for _ in 0..opts.threads {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(1024)?;
        let mut listener = TcpListener::from_std(socket.into());
        // Every later listener joins the port the first one got.
        addr = listener.local_addr()?;
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        shards.push((listener, poll));
    }
    println!("listening on {addr}");
    let opts = *opts;
    let threads: Vec<_> = shards
        .into_iter()
        .enumerate()
        .map(|(i, (listener, poll))| {
            std::thread::Builder::new()
                .name(format!("mio-echo-{i}"))
                .spawn(move || run(listener, poll, &opts))
        })
        .collect::<io::Result<_>>()?;
    for t in threads {
        t.join()
            .map_err(|_| io::Error::other("a server thread panicked"))??;
    }
    Ok(())
}

/// One server loop: accepts on `listener` (registered with `poll` as
/// [`LISTENER`]) and echoes every connection it accepted, until an error.
fn run(listener: TcpListener, mut poll: Poll, opts: &Options) -> io::Result<()> {
    let (strict, lean) = (opts.strict, opts.lean);
    if lean {
        socket2::SockRef::from(&listener).set_tcp_nodelay(true)?;
    }
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
                            if !lean {
                                let _ = stream.set_nodelay(true);
                            }
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
                    serve(conn, &mut buf, strict)
                }
                None => false,
            };
            if closed {
                let mut conn = conns.remove(key);
                if !lean {
                    let _ = poll.registry().deregister(&mut conn.stream);
                }
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

/// `--port N` (or `--port=N`; 0, the default, picks a free port),
/// `--strict` and `--threads N` (at least 1; 1 by default).
fn options() -> Result<Options, lexopt::Error> {
    use lexopt::prelude::*;
    let mut o = Options {
        port: 0,
        strict: false,
        lean: false,
        threads: 1,
    };
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("port") => o.port = parser.value()?.parse()?,
            Long("strict") => o.strict = true,
            Long("lean") => o.lean = true,
            Long("threads") => {
                o.threads = parser.value()?.parse()?;
                if o.threads == 0 {
                    return Err("--threads must be at least 1".into());
                }
            }
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(o)
}
