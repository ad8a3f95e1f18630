//! Certificates (rcgen), a TLS echo server, and blocking rustls clients.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use axon::Handle;
use chassis::{ServerOptions, SimpleServer};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, StreamOwned};
use testkit::{Running, DEADLINE};

/// A CA and a server certificate for `localhost` signed by it.
pub struct Pki {
    pub ca: CertificateDer<'static>,
    pub server: Arc<ServerConfig>,
}

fn ca() -> (rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    (params.self_signed(&key).unwrap(), key)
}

impl Pki {
    pub fn new() -> Pki {
        let (ca, ca_key) = ca();
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        let server = ServerConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        Pki {
            ca: ca.der().clone(),
            server: Arc::new(server),
        }
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
    let server = SimpleServer::new(
        handler,
        "127.0.0.1:0".parse().unwrap(),
        ServerOptions::default(),
    )
    .unwrap();
    let addr = server.local_addr();
    let scheduler = selector::scheduler().unwrap();
    scheduler.activate(server).unwrap();
    (addr, Running::start(scheduler))
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
        let want = got.len() + piece.len();
        while got.len() < want {
            let n = c.read(&mut buf).unwrap();
            assert!(n > 0, "EOF after {} bytes", got.len());
            got.extend_from_slice(&buf[..n]);
        }
    }
    (c, got)
}

pub fn short(d: u64) -> Duration {
    Duration::from_millis(d)
}
