//! Every call into rustls, in one place: rustls 0.24 changes the buffer
//! API (`read_tls` / `write_tls` / `reader` / `writer`), and this module
//! is all that has to follow it.
//!
//! The engine works on byte slices and `Vec`s only: ciphertext arrives as
//! chunks from the connection and leaves as messages to it, so nothing
//! here touches a socket, and nothing blocks.

use std::io::{self, BufRead, Read, Write};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};

pub(crate) use rustls::Error;

/// Plaintext taken from the engine.
pub(crate) enum Plain<D = Vec<u8>> {
    /// Decrypted bytes (or, from [`Engine::plaintext`], word that some
    /// were appended).
    Data(D),
    /// Nothing decrypted is waiting.
    Empty,
    /// The peer's close_notify, after its last byte.
    Closed,
}

/// One rustls connection, client or server.
pub(crate) struct Engine {
    conn: Connection,
}

impl Engine {
    /// A server side. Errors if `config` cannot make a connection, or if
    /// it accepts early data (0-RTT): rustls keeps early data apart
    /// (`ServerConnection::early_data`), the layer never reads it, so it
    /// would be lost; refused is the default (`max_early_data_size` 0).
    pub(crate) fn server(config: Arc<ServerConfig>, buffer_limit: usize) -> Result<Engine, Error> {
        if config.max_early_data_size != 0 {
            return Err(Error::General(
                "early data (0-RTT) is not supported: leave ServerConfig::max_early_data_size at 0"
                    .into(),
            ));
        }
        let conn = ServerConnection::new(config)?;
        Ok(Engine::with(Connection::Server(conn), buffer_limit))
    }

    /// A client side, verifying the server against `name`.
    pub(crate) fn client(
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
        buffer_limit: usize,
    ) -> Result<Engine, Error> {
        let conn = ClientConnection::new(config, name)?;
        Ok(Engine::with(Connection::Client(conn), buffer_limit))
    }

    fn with(mut conn: Connection, buffer_limit: usize) -> Engine {
        // Both unsent plaintext (before the handshake ends) and unsent
        // records are bounded: `writer().write` then takes only part of a
        // message (A5), and the rest is kept by the caller.
        conn.set_buffer_limit(Some(buffer_limit));
        Engine { conn }
    }

    pub(crate) fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// True while rustls takes more ciphertext: false while decrypted
    /// bytes wait to be taken (the plaintext side is full), after the
    /// peer's close_notify, and during the handshake while its own records
    /// are unsent.
    pub(crate) fn wants_read(&self) -> bool {
        self.conn.wants_read()
    }

    pub(crate) fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Feeds ciphertext from `chunk` (not empty: an empty read would mean
    /// EOF to rustls) and processes it. Returns how much was taken; the
    /// rest is for a later call.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Result<usize, Error> {
        debug_assert!(!chunk.is_empty());
        let mut rd = chunk;
        let n = match self.conn.read_tls(&mut rd) {
            Ok(n) => n,
            // Only "received plaintext buffer full", which wants_read
            // rules out; taken as nothing read.
            Err(e) => {
                log::trace!("tls: read_tls: {e}");
                0
            }
        };
        self.conn.process_new_packets()?;
        Ok(n)
    }

    /// Takes the decrypted bytes waiting, up to `max`.
    pub(crate) fn take_plaintext(&mut self, max: usize) -> Plain {
        let waiting = match self.conn.process_new_packets() {
            Ok(state) => state.plaintext_bytes_to_read(),
            Err(_) => return Plain::Empty, // reported by feed already
        };
        if waiting == 0 {
            return match self.conn.reader().read(&mut [0u8; 1]) {
                Ok(0) => Plain::Closed,
                _ => Plain::Empty,
            };
        }
        // Copied out of rustls's own chunks (`BufRead`): a buffer to `read`
        // into would be zero-filled first, a second pass over every byte.
        let want = waiting.min(max);
        let mut buf = Vec::with_capacity(want);
        let mut reader = self.conn.reader();
        while buf.len() < want {
            let n = match reader.fill_buf() {
                Ok([]) | Err(_) => break,
                Ok(chunk) => {
                    let n = chunk.len().min(want - buf.len());
                    buf.extend_from_slice(&chunk[..n]);
                    n
                }
            };
            reader.consume(n);
        }
        if buf.is_empty() {
            // Counted as waiting, yet none came: nothing to hand on now.
            return Plain::Empty;
        }
        Plain::Data(buf)
    }

    /// Encrypts as much of `plain` as the buffer limit allows; returns how
    /// much it took (perhaps 0).
    pub(crate) fn write_plaintext(&mut self, plain: &[u8]) -> usize {
        self.conn.writer().write(plain).unwrap_or(0)
    }

    /// The records waiting to be sent (handshake, alerts, tickets, key
    /// updates, application data), as one message; `None` if there are
    /// none.
    pub(crate) fn take_ciphertext(&mut self) -> Option<Vec<u8>> {
        if !self.conn.wants_write() {
            return None;
        }
        let mut out = Vec::new();
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut out) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// Reads ciphertext from the socket itself (one `read`, as much as
    /// rustls asks for). `Ok(0)`: the peer's FIN.
    pub(crate) fn read_from(&mut self, socket: &mut dyn Read) -> io::Result<usize> {
        self.conn.read_tls(socket)
    }

    /// Processes what [`read_from`](Self::read_from) read.
    pub(crate) fn process(&mut self) -> Result<(), Error> {
        self.conn.process_new_packets().map(drop)
    }

    /// Appends the decrypted bytes waiting to `buf` until it holds `max`,
    /// copied out of rustls's own chunks (`BufRead`: no buffer to
    /// zero-fill first). A `buf` with no capacity gets exactly its first
    /// piece's; past what the caller reserved it grows as a `Vec` does
    /// (amortized: many small records are not a reallocation each). `Plain::Closed` once the peer's close_notify has come and
    /// every byte before it has been taken.
    pub(crate) fn plaintext(&mut self, buf: &mut Vec<u8>, max: usize) -> Plain<()> {
        let mut reader = self.conn.reader();
        let start = buf.len();
        while buf.len() < max {
            let n = match reader.fill_buf() {
                Ok([]) if buf.len() == start => return Plain::Closed,
                Ok([]) => break,
                Ok(chunk) => {
                    let n = chunk.len().min(max - buf.len());
                    if buf.capacity() == 0 {
                        buf.reserve_exact(n);
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    n
                }
                // WouldBlock (nothing yet) or UnexpectedEof (a FIN
                // without close_notify, which the caller learns from it).
                Err(_) => break,
            };
            reader.consume(n);
        }
        if buf.len() == start {
            Plain::Empty
        } else {
            Plain::Data(())
        }
    }

    /// Writes queued records to the socket itself (one vectored write).
    pub(crate) fn write_to(&mut self, socket: &mut dyn Write) -> io::Result<usize> {
        self.conn.write_tls(socket)
    }

    /// Queues close_notify (sent by the next [`take_ciphertext`](Self::take_ciphertext)).
    pub(crate) fn send_close_notify(&mut self) {
        self.conn.send_close_notify();
    }

    /// What was agreed, once the handshake is over.
    pub(crate) fn summary(&self) -> crate::SslReady {
        let (sni, is_server) = match &self.conn {
            Connection::Server(s) => (s.server_name().map(str::to_owned), true),
            Connection::Client(_) => (None, false),
        };
        crate::SslReady {
            protocol: self
                .conn
                .protocol_version()
                .map(|v| format!("{v:?}"))
                .unwrap_or_default(),
            cipher_suite: self
                .conn
                .negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite()))
                .unwrap_or_default(),
            alpn: self.conn.alpn_protocol().map(<[u8]>::to_vec),
            server_name: sni,
            is_server,
            resumed: self.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        }
    }
}

/// Parses a server name (a DNS name or an IP address) for a client.
pub(crate) fn server_name(name: &str) -> Result<ServerName<'static>, io::Error> {
    ServerName::try_from(name.to_owned())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

/// The ring provider, chosen explicitly (see the crate docs).
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Loads a certificate chain and private key from PEM files and builds a
/// server config on the ring provider (safe default versions and suites,
/// no client authentication).
pub(crate) fn server_config_from_pem(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<ServerConfig, io::Error> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &str, p: &std::path::Path, e: &dyn std::fmt::Display| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{what} {}: {e}", p.display()),
        )
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad("certificates in", cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("certificates in", cert, &e))?;
    if chain.is_empty() {
        return Err(bad("certificates in", cert, &"no certificate found"));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| bad("private key in", key, &e))?;
    ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key_der))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
