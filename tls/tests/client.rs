//! TlsClient over a TcpClient, against a TlsServer echo server; and a
//! TcpClient whose CSA runs a `TlsSession::client`, against TLS in the
//! server's CSA.

mod common;

use std::sync::{Arc, Mutex};

use axon::{boxes, Component, Control, Cx, Graphline, Handle, Inbox, Outbox, Standard, Step};
use common::{expired, serve, serve_in_csa, Pki};
use examples::Echo;
use rustls::CertificateError;
use tcpclient::TcpClient;
use testkit::{pattern, Running};
use tls::{TlsClient, TlsClosed, TlsError, TlsServer, TlsSession};

/// Sends `msg` once, collects `msg.len()` bytes back, then says
/// producerFinished.
struct Ask {
    msg: Option<Vec<u8>>,
    want: usize,
    got: Arc<Mutex<Vec<u8>>>,
}

impl Component for Ask {
    type Boxes = Standard<Vec<u8>, Vec<u8>>;

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        if let Some(m) = self.msg.take() {
            if let Err(full) = cx.outbox.send(m) {
                self.msg = Some(full.into_inner());
            }
        }
        let mut got = self.got.lock().unwrap();
        while let Some(b) = cx.inbox.recv() {
            got.extend_from_slice(&b);
        }
        if got.len() >= self.want && self.msg.is_none() {
            let _ = cx.signal.send(Control::ProducerFinished);
            return Step::Done;
        }
        if cx.control.recv().is_some() {
            return Step::Done; // the connection ended first
        }
        Step::Pause
    }
}

#[test]
fn a_tls_client_over_a_tcp_client_echoes_and_closes_cleanly() {
    let pki = Pki::new();
    let cfg = pki.server.clone();
    let (addr, _server) = serve(move || TlsServer::wrap(cfg.clone(), Echo::new()));
    let sent = pattern(9, 300_000);
    let got = Arc::new(Mutex::new(Vec::new()));
    let ask = Ask {
        msg: Some(sent.clone()),
        want: sent.len(),
        got: got.clone(),
    };
    let client = TlsClient::wrap(pki.client(), "localhost", ask)
        .unwrap()
        .over(TcpClient::new(addr))
        .unwrap();
    let scheduler = selector::scheduler().unwrap();
    let client = scheduler.activate(client).unwrap();
    Running::to_completion(scheduler);
    assert!(client.is_done());
    assert!(*got.lock().unwrap() == sent, "bytes lost or changed");
}

#[test]
fn a_tls_client_refuses_a_server_for_another_name() {
    let pki = Pki::new();
    let cfg = pki.server.clone();
    let (addr, _server) = serve(move || TlsServer::wrap(cfg.clone(), Echo::new()));
    let got = Arc::new(Mutex::new(Vec::new()));
    let ask = Ask {
        msg: Some(b"secret".to_vec()),
        want: 6,
        got: got.clone(),
    };
    let client = TlsClient::wrap(pki.client(), "example.com", ask)
        .unwrap()
        .over(TcpClient::new(addr))
        .unwrap();
    let scheduler = selector::scheduler().unwrap();
    scheduler.activate(client).unwrap();
    Running::to_completion(scheduler);
    assert!(got.lock().unwrap().is_empty());
}

boxes! {
    /// A handler that also hears how the TLS session ended.
    pub struct WatchBoxes {
        /// decrypted bytes
        pub inbox: Inbox<Vec<u8>>,
        /// the layer's socketShutdown / shutdownMicroprocess
        pub control: Inbox<Control>,
        /// bytes to send
        pub outbox: Outbox<Vec<u8>>,
        /// producerFinished
        pub signal: Outbox<Control>,
        /// how the session ended (linked by the layer, by name)
        #[name = "tlsClosed"]
        pub tls_closed: Inbox<TlsClosed>,
    }
}

/// Sends one message, keeps what comes back and the layer's tlsClosed.
struct Watch {
    msg: Option<Vec<u8>>,
    got: Arc<Mutex<(Vec<u8>, Option<TlsClosed>)>>,
}

impl Component for Watch {
    type Boxes = WatchBoxes;

    fn main(&mut self, cx: &mut Cx<WatchBoxes>) -> Step {
        if let Some(m) = self.msg.take() {
            let _ = cx.outbox.send(m);
        }
        let mut got = self.got.lock().unwrap();
        while let Some(b) = cx.inbox.recv() {
            got.0.extend_from_slice(&b);
        }
        if let Some(closed) = cx.tls_closed.recv() {
            got.1 = Some(closed);
        }
        if cx.control.recv().is_some() {
            return Step::Done;
        }
        Step::Pause
    }
}

#[test]
fn a_tls_client_refuses_an_expired_server_certificate_with_a_clear_how_died() {
    let pki = Pki::with_server_cert(expired);
    let cfg = pki.server.clone();
    let (addr, _server) = serve(move || TlsServer::wrap(cfg.clone(), Echo::new()));
    let got = Arc::new(Mutex::new((Vec::new(), None)));
    let watch = Watch {
        msg: Some(b"secret".to_vec()),
        got: got.clone(),
    };
    let client = TlsClient::wrap(pki.client(), "localhost", watch)
        .unwrap()
        .over(TcpClient::new(addr))
        .unwrap();
    let scheduler = selector::scheduler().unwrap();
    scheduler.activate(client).unwrap();
    Running::to_completion(scheduler);
    let (bytes, closed) = &*got.lock().unwrap();
    assert!(bytes.is_empty());
    let closed = closed.clone().expect("tlsClosed reached the handler");
    assert!(!closed.is_server && !closed.handshaken);
    match closed.how_died {
        Some(TlsError::Tls(rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ))) => {}
        other => panic!("expected an expired certificate, got {other:?}"),
    }
}

/// What a [`Talk`] saw: the bytes that came, and how its client ended.
#[derive(Default)]
struct Heard {
    bytes: Vec<u8>,
    end: Option<Control>,
}

/// Sends `msg` (keeping what a full box refuses, A5), says
/// producerFinished once `msg.len()` bytes came back, and ends when the
/// client says it has ended (its `signal`, linked to `control`).
struct Talk {
    msg: Option<Vec<u8>>,
    want: usize,
    finished: bool,
    heard: Arc<Mutex<Heard>>,
}

impl Component for Talk {
    type Boxes = Standard<Vec<u8>, Vec<u8>>;

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        if let Some(m) = self.msg.take() {
            if let Err(full) = cx.outbox.send(m) {
                self.msg = Some(full.into_inner());
            }
        }
        let mut heard = self.heard.lock().unwrap();
        while let Some(b) = cx.inbox.recv() {
            heard.bytes.extend_from_slice(&b);
        }
        if !self.finished && self.msg.is_none() && heard.bytes.len() >= self.want {
            self.finished = true;
            let _ = cx.signal.send(Control::ProducerFinished);
        }
        if let Some(end) = cx.control.recv() {
            heard.end = Some(end);
            return Step::Done;
        }
        Step::Pause
    }
}

/// Runs `msg` through a TcpClient to `addr` whose CSA runs `session`,
/// to completion: what came back, and how the client ended.
fn talk_in_csa(addr: std::net::SocketAddr, session: TlsSession, msg: Vec<u8>) -> Heard {
    let heard = Arc::new(Mutex::new(Heard::default()));
    let talk = Talk {
        want: msg.len(),
        msg: Some(msg),
        finished: false,
        heard: heard.clone(),
    };
    let client = TcpClient::new(addr).with_session(Box::new(session));
    let graph = Graphline::new(
        vec![("talk", Handle::new(talk)), ("tcp", Handle::new(client))],
        &[
            (("talk", "outbox"), ("tcp", "inbox")),
            (("talk", "signal"), ("tcp", "control")),
            (("tcp", "outbox"), ("talk", "inbox")),
            (("tcp", "signal"), ("talk", "control")),
        ],
    )
    .unwrap();
    let scheduler = selector::scheduler().unwrap();
    scheduler.activate(graph).unwrap();
    Running::to_completion(scheduler);
    let mut heard = heard.lock().unwrap();
    std::mem::take(&mut *heard)
}

#[test]
fn a_tcp_client_with_a_tls_session_echoes_300_kb_and_ends_in_order() {
    let pki = Pki::new();
    let (addr, _server) = serve_in_csa(pki.server.clone());
    let sent = pattern(11, 300_000);
    let session = TlsSession::client(pki.client(), "localhost").unwrap();
    let heard = talk_in_csa(addr, session, sent.clone());
    assert!(heard.bytes == sent, "bytes lost or changed");
    // producerFinished: close_notify after the last byte; the server's
    // close_notify ends the connection in order.
    assert_eq!(heard.end, Some(Control::ProducerFinished));
}

#[test]
fn a_tcp_client_with_a_tls_session_refuses_a_server_for_another_name() {
    let pki = Pki::new();
    let (addr, _server) = serve_in_csa(pki.server.clone());
    let session = TlsSession::client(pki.client(), "example.com").unwrap();
    let heard = talk_in_csa(addr, session, b"secret".to_vec());
    assert!(heard.bytes.is_empty());
    assert_eq!(heard.end, Some(Control::ShutdownMicroprocess));
}

#[test]
fn a_tcp_client_with_a_tls_session_refuses_an_unknown_ca_and_an_expired_certificate() {
    let pki = Pki::new();
    let (addr, _server) = serve_in_csa(pki.server.clone());
    let stranger = TlsSession::client(Pki::stranger(), "localhost").unwrap();
    let heard = talk_in_csa(addr, stranger, b"secret".to_vec());
    assert!(heard.bytes.is_empty());
    assert_eq!(heard.end, Some(Control::ShutdownMicroprocess));

    let old = Pki::with_server_cert(expired);
    let (addr, _server) = serve_in_csa(old.server.clone());
    let session = TlsSession::client(old.client(), "localhost").unwrap();
    let heard = talk_in_csa(addr, session, b"secret".to_vec());
    assert!(heard.bytes.is_empty());
    assert_eq!(heard.end, Some(Control::ShutdownMicroprocess));
}

#[test]
fn a_tcp_client_with_a_tls_session_gives_up_on_a_silent_server_at_the_handshake_deadline() {
    // A listener that accepts and never answers the ClientHello.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let pki = Pki::new();
    let session = TlsSession::client(pki.client(), "localhost")
        .unwrap()
        .with_handshake_timeout(std::time::Duration::from_millis(300));
    let started = std::time::Instant::now();
    let heard = talk_in_csa(addr, session, b"secret".to_vec());
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    assert!(heard.bytes.is_empty());
    assert_eq!(heard.end, Some(Control::ShutdownMicroprocess));
    drop(listener);
}

#[test]
fn a_client_session_refuses_a_name_that_is_neither_dns_nor_ip() {
    let pki = Pki::new();
    let err = TlsSession::client(pki.client(), "not a name!").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn a_tcp_client_with_a_tls_session_reports_truncation_after_delivering_what_came() {
    // A server that echoes, then ends with a FIN and no close_notify.
    let pki = Pki::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let config = pki.server.clone();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(testkit::DEADLINE)).unwrap();
        let conn = rustls::ServerConnection::new(config).unwrap();
        let mut s = rustls::StreamOwned::new(conn, sock);
        let mut buf = [0u8; 6];
        s.read_exact(&mut buf).unwrap();
        s.write_all(&buf).unwrap();
        s.flush().unwrap();
        s.sock.shutdown(std::net::Shutdown::Both).unwrap();
    });
    let session = TlsSession::client(pki.client(), "localhost").unwrap();
    let heard = talk_in_csa(addr, session, b"secret".to_vec());
    server.join().unwrap();
    assert_eq!(
        heard.bytes, b"secret",
        "what came before the FIN is delivered"
    );
    // What came may not be all: not an orderly end.
    assert_eq!(heard.end, Some(Control::ShutdownMicroprocess));
}
