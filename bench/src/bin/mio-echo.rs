//! The raw mio echo server we compete with: written the way a competent
//! engineer would. One thread, edge-triggered, a slab of connections, a
//! per-connection pending buffer, reads paused while it is non-empty.
//!
//! `mio-echo [--port N]`: prints `listening on HOST:PORT`, serves loopback
//! until killed.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

const LISTENER: Token = Token(usize::MAX);
const BUF: usize = 64 * 1024;

struct Conn {
    stream: TcpStream,
    pending: Vec<u8>,
    offset: usize,
}

fn main() -> io::Result<()> {
    let port = port().unwrap_or_else(|e| {
        eprintln!("{}: {e}", env!("CARGO_BIN_NAME"));
        std::process::exit(2);
    });
    let mut listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    println!("listening on {}", listener.local_addr()?);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
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
                Some(conn) => serve(conn, &mut buf),
                None => false,
            };
            if closed {
                let mut conn = conns.remove(key);
                let _ = poll.registry().deregister(&mut conn.stream);
            }
        }
    }
}

/// Flush pending, then read (only while nothing is pending) and echo.
/// Returns true when the connection is finished.
fn serve(conn: &mut Conn, buf: &mut [u8]) -> bool {
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
        match conn.stream.read(buf) {
            Ok(0) => return true,
            Ok(n) => {
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
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

/// `--port N` (or `--port=N`); 0, the default, picks a free port.
fn port() -> Result<u16, lexopt::Error> {
    use lexopt::prelude::*;
    let mut port = 0;
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("port") => port = parser.value()?.parse()?,
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(port)
}
