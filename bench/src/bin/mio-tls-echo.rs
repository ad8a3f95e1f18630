//! The raw mio + rustls echo server we compete with over TLS, in the shape
//! of rustls's own mio example server (`tlsserver-mio`): one thread,
//! edge-triggered, a slab of connections, each a `TcpStream` and a
//! `rustls::ServerConnection`. On readable: `read_tls` until `WouldBlock`,
//! `process_new_packets`, the plaintext read out and written straight back
//! through `writer()`; then `write_tls` while rustls wants to write (and,
//! when the socket will not take it all, again on the writable edge).
//!
//! Competent beyond the example: one 64 KiB plaintext buffer shared by
//! every connection, and the same crypto provider and server configuration
//! as ours (`tls::provider`, `tls::server_config_from_pem`: ring, TLS 1.3
//! and 1.2, rustls's default session storage, so resumption works), so
//! the figures compare the servers, not their settings.
//!
//! `--provider aws-lc-rs` builds the same configuration on rustls's other
//! provider instead, to measure the choice (ring is the default and
//! ours); it needs the bench's `aws-lc-rs` feature.
//!
//! `mio-tls-echo --cert PATH --key PATH [--port N] [--provider
//! ring|aws-lc-rs]`: prints `listening on HOST:PORT`, serves loopback
//! until killed.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use rustls::{ServerConfig, ServerConnection};
use slab::Slab;

const LISTENER: Token = Token(usize::MAX);
const BUF: usize = 64 * 1024;

struct Conn {
    stream: TcpStream,
    tls: ServerConnection,
    /// The peer has closed (FIN or close_notify): close once written.
    closing: bool,
    close_sent: bool,
    /// Echo plaintext rustls would not take yet (its send buffer is
    /// bounded, 64 KiB by default): reading pauses until it is taken, so
    /// a client that does not read cannot grow the server's memory.
    pending: Vec<u8>,
}

fn main() -> io::Result<()> {
    let (port, cert, key, aws) = options().unwrap_or_else(|e| {
        eprintln!("{}: {e}", env!("CARGO_BIN_NAME"));
        std::process::exit(2);
    });
    let config = if aws {
        aws_lc_config(&cert, &key)?
    } else {
        tls::server_config_from_pem(&cert, &key)?
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut listener = TcpListener::bind(addr)?;
    println!("listening on {}", listener.local_addr()?);
    serve(&mut listener, config)
}

/// What `tls::server_config_from_pem` makes, on aws-lc-rs.
#[cfg(feature = "aws-lc-rs")]
fn aws_lc_config(cert: &std::path::Path, key: &std::path::Path) -> io::Result<Arc<ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |e: rustls::pki_types::pem::Error| {
        io::Error::new(io::ErrorKind::InvalidData, e.to_string())
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(bad)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(bad)?;
    let config = ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(io::Error::other)?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(io::Error::other)?;
    Ok(Arc::new(config))
}

#[cfg(not(feature = "aws-lc-rs"))]
fn aws_lc_config(_: &std::path::Path, _: &std::path::Path) -> io::Result<Arc<ServerConfig>> {
    Err(io::Error::other(
        "built without aws-lc-rs: cargo build --release -p kamaelia-bench --features aws-lc-rs",
    ))
}

fn options() -> Result<(u16, PathBuf, PathBuf, bool), lexopt::Error> {
    use lexopt::prelude::*;
    let (mut port, mut cert, mut key, mut aws) = (0, None, None, false);
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("port") => port = parser.value()?.parse()?,
            Long("cert") | Long("tls-cert") => cert = Some(PathBuf::from(parser.value()?)),
            Long("key") | Long("tls-key") => key = Some(PathBuf::from(parser.value()?)),
            Long("provider") => {
                aws = match parser.value()?.string()?.as_str() {
                    "ring" => false,
                    "aws-lc-rs" => true,
                    other => return Err(format!("--provider {other:?}: ring or aws-lc-rs").into()),
                }
            }
            _ => return Err(arg.unexpected()),
        }
    }
    match (cert, key) {
        (Some(c), Some(k)) => Ok((port, c, k, aws)),
        _ => Err("--cert PATH and --key PATH are needed".into()),
    }
}

fn serve(listener: &mut TcpListener, config: Arc<ServerConfig>) -> io::Result<()> {
    let mut poll = Poll::new()?;
    poll.registry()
        .register(listener, LISTENER, Interest::READABLE)?;
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
        for ev in events.iter() {
            if ev.token() == LISTENER {
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
                                closing: false,
                                close_sent: false,
                                pending: Vec::new(),
                            });
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => break,
                    }
                }
                continue;
            }
            let key = ev.token().0;
            let Some(conn) = conns.get_mut(key) else {
                continue;
            };
            let dead = conn.drive(&mut buf).is_err();
            if dead || (conn.closing && !conn.tls.wants_write()) {
                let mut conn = conns.remove(key);
                let _ = poll.registry().deregister(&mut conn.stream);
            }
        }
    }
}

impl Conn {
    /// Writes what it can, then reads (and echoes) while nothing waits for
    /// room: on any edge, since edge-triggered readiness does not repeat
    /// a readable edge that came while reading was paused.
    fn drive(&mut self, buf: &mut [u8]) -> io::Result<()> {
        loop {
            self.write()?;
            if !self.pending.is_empty() || self.closing {
                return Ok(()); // the writable edge brings us back
            }
            if self.read(buf)? {
                return self.write(); // drained: the next bytes raise an edge
            }
        }
    }

    /// `read_tls` until `WouldBlock` (or until echo output backs up), the
    /// plaintext echoed as it comes. True if the socket was drained.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        // Plaintext left in rustls when the echo last backed up, first.
        self.echo(buf)?;
        while self.pending.is_empty() {
            match self.tls.read_tls(&mut self.stream) {
                Ok(0) => {
                    self.closing = true;
                    return Ok(true);
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            let state = self
                .tls
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if state.plaintext_bytes_to_read() > 0 {
                self.echo(buf)?;
            }
            if state.peer_has_closed() {
                self.closing = true;
            }
        }
        Ok(false)
    }

    fn echo(&mut self, buf: &mut [u8]) -> io::Result<()> {
        while self.pending.is_empty() {
            match self.tls.reader().read(buf) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    let took = self.tls.writer().write(&buf[..n])?;
                    self.pending.extend_from_slice(&buf[took..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// `write_tls` while rustls has records and the socket takes them,
    /// feeding it the pending echo as room frees.
    fn write(&mut self) -> io::Result<()> {
        loop {
            self.write_tls()?;
            if self.pending.is_empty() || self.tls.wants_write() {
                return Ok(());
            }
            let took = self.tls.writer().write(&self.pending)?;
            self.pending.drain(..took);
            if took == 0 {
                return Ok(());
            }
        }
    }

    fn write_tls(&mut self) -> io::Result<()> {
        if self.closing && !self.close_sent {
            self.close_sent = true;
            self.tls.send_close_notify();
        }
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.stream) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
