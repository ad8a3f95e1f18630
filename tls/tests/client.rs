//! TlsClient over a TcpClient, against a TlsServer echo server.

mod common;

use std::sync::{Arc, Mutex};

use axon::{boxes, Component, Control, Cx, Inbox, Outbox, Standard, Step};
use common::{expired, serve, Pki};
use examples::Echo;
use rustls::CertificateError;
use tcpclient::TcpClient;
use testkit::{pattern, Running};
use tls::{TlsClient, TlsClosed, TlsError, TlsServer};

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
