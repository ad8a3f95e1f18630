//! The raw mio + rustls echo server we compete with on TLS: rustls's own
//! mio example (`tlsserver-mio.rs`: a `ServerConnection` per socket,
//! `read_tls` → `process_new_packets` → `reader()`, echo into `writer()`,
//! `write_tls` while `wants_write`), made as competent as `mio-echo`: one
//! thread, edge-triggered (registered once for both directions, never
//! re-registered), a slab of connections, one 64 KiB plaintext buffer
//! shared by all, reads paused while TLS output is waiting for the socket.
//!
//! Unlike the example, it decrypts all a turn's reads (up to 64 KiB)
//! before it echoes them in one write, so the echo goes out in full
//! 16 KiB records, not one small record per socket read.
//!
//! The short-read rule of `mio-echo` applies to `read_tls`: a socket read
//! that returned fewer bytes than rustls asked for counts as having drained
//! the socket (no `WouldBlock` read follows), except after read-closed.
//!
//! `mio-tls-echo [--port N] --tls-cert PATH --tls-key PATH
//! [--provider ring|aws-lc-rs]`: prints `listening on HOST:PORT`, serves
//! loopback until killed.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;

use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use rustls::{ServerConfig, ServerConnection};
use slab::Slab;

#[path = "../tls_contender.rs"]
mod tls_contender;

const LISTENER: Token = Token(usize::MAX);
const BUF: usize = 64 * 1024;

struct Conn {
    stream: TcpStream,
    tls: ServerConnection,
    /// The socket may hold unread bytes.
    readable: bool,
    /// The peer's FIN has been seen: read to 0 or `WouldBlock` from now on.
    read_closed: bool,
    /// We have queued our close_notify: close once it is flushed.
    closing: bool,
}

/// The socket as rustls reads it, noting whether a read came back short.
struct Probe<'a> {
    stream: &'a mut TcpStream,
    short: bool,
}

impl Read for Probe<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.stream.read(buf)?;
        self.short = n < buf.len();
        Ok(n)
    }
}

fn main() -> io::Result<()> {
    let opts = tls_contender::options();
    let config = tls_contender::server_config(&opts)?;
    let mut listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], opts.port)))?;
    let poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    println!("listening on {}", listener.local_addr()?);
    run(listener, poll, config)
}

fn run(listener: TcpListener, mut poll: Poll, config: Arc<ServerConfig>) -> io::Result<()> {
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
                            let Ok(tls) = ServerConnection::new(config.clone()) else {
                                continue;
                            };
                            let entry = conns.vacant_entry();
                            poll.registry().register(
                                &mut stream,
                                Token(entry.key()),
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            entry.insert(Conn {
                                stream,
                                tls,
                                readable: false,
                                read_closed: false,
                                closing: false,
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
                    serve(conn, &mut buf)
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

fn note(conn: &mut Conn, event: &Event) {
    if event.is_readable() || event.is_read_closed() || event.is_error() {
        conn.readable = true;
    }
    if event.is_read_closed() {
        conn.read_closed = true;
    }
}

/// Flush TLS output, then (only when all is flushed and the socket may
/// hold bytes) read, process, echo. Returns true when finished.
fn serve(conn: &mut Conn, buf: &mut [u8]) -> bool {
    loop {
        while conn.tls.wants_write() {
            match conn.tls.write_tls(&mut conn.stream) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
        if conn.closing {
            return true;
        }
        if !conn.readable {
            return false;
        }
        // Read and decrypt until the socket is drained or the buffer is
        // full, then echo it all in one write: one TLS record per 16 KiB
        // rather than one per socket read.
        let mut filled = 0;
        while conn.readable && filled < buf.len() {
            let mut probe = Probe {
                stream: &mut conn.stream,
                short: false,
            };
            match conn.tls.read_tls(&mut probe) {
                Ok(0) => return true,
                Ok(_) => {
                    if probe.short && !conn.read_closed {
                        conn.readable = false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => conn.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return true,
            }
            if conn.tls.process_new_packets().is_err() {
                // The alert rustls queued goes out on the next turn.
                conn.closing = true;
                break;
            }
            loop {
                match conn.tls.reader().read(&mut buf[filled..]) {
                    Ok(0) if filled == buf.len() => break,
                    Ok(0) => {
                        // The peer's close_notify: answer it, then close.
                        conn.tls.send_close_notify();
                        conn.closing = true;
                        break;
                    }
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => return true,
                }
            }
            if conn.closing {
                break;
            }
        }
        // Buffered by rustls; flushed at the top of the loop.
        if filled > 0 && conn.tls.writer().write_all(&buf[..filled]).is_err() {
            return true;
        }
    }
}
