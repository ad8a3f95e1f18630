//! TlsClient over a TcpClient, against a TlsServer echo server.

mod common;

use std::sync::{Arc, Mutex};

use axon::{Component, Control, Cx, Standard, Step};
use common::{serve, Pki};
use examples::Echo;
use tcpclient::TcpClient;
use testkit::{pattern, Running};
use tls::{TlsClient, TlsServer};

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
