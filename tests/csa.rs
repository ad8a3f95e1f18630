//! ConnectedSocketAdapter rules C1–C8 over real loopback sockets (C2 and C6
//! message sequences are in `tcpserver.rs`).

mod util;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axon::{Component, Control, Cx, Handle, Standard, Step};
use chassis::ServerOptions;
use util::*;

#[test]
fn c1_boxes_are_kamaelias() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let csa = Handle::new(csa::Csa::new(csa::TcpStream::from_std(client)));
    let names: Vec<String> = csa.boxes().into_iter().map(|b| b.name).collect();
    for name in [
        "inbox",
        "control",
        "ReadReady",
        "SendReady",
        "outbox",
        "CreatorFeedback",
        "signal",
        "_selectorSignal",
        "readShutdown",
    ] {
        assert!(names.iter().any(|n| n == name), "missing box {name}");
    }
}

/// Sends `total` bytes of a pattern in 64 KiB chunks, honouring "no space
/// in box", then producerFinished: the close must wait for every byte (C5).
struct Blaster {
    data: Vec<u8>,
    sent: usize,
}

impl Component for Blaster {
    type Boxes = Standard<Vec<u8>, Vec<u8>>;

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        while self.sent < self.data.len() {
            let end = (self.sent + 64 * 1024).min(self.data.len());
            let chunk = self.data[self.sent..end].to_vec();
            if cx.outbox.send(chunk).is_err() {
                return Step::Pause; // woken when the CSA takes one (A6)
            }
            self.sent = end;
        }
        let _ = cx.signal.send(Control::ProducerFinished);
        Step::Done
    }
}

#[test]
fn c5_producer_finished_flushes_4_mib_to_a_slow_reader_before_closing() {
    const TOTAL: usize = 4 * 1024 * 1024;
    let data = pattern(5, TOTAL);
    let expected = data.clone();
    let (addr, _core, _running) = server_with(
        move || {
            Handle::new(Blaster {
                data: data.clone(),
                sent: 0,
            })
        },
        ServerOptions::default(),
    );
    let mut client = connect(addr);
    let mut got = Vec::with_capacity(TOTAL);
    let mut buf = [0u8; 4096];
    let mut reads = 0u64;
    loop {
        let n = client.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        reads += 1;
        if reads.is_multiple_of(64) {
            // A slow reader: the server's socket buffer fills and its
            // writes meet WouldBlock many times over.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    assert_eq!(got.len(), TOTAL, "bytes lost before the close");
    assert!(got == expected, "bytes corrupted or reordered");
}

#[test]
fn c5_shutdown_microprocess_closes_at_once() {
    struct Closer;
    impl Component for Closer {
        type Boxes = Standard<Vec<u8>, Vec<u8>>;

        fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
            if cx.inbox.recv().is_some() {
                let _ = cx.signal.send(Control::ShutdownMicroprocess);
                return Step::Done;
            }
            Step::Pause
        }
    }
    let (addr, _core, _running) = server_with(|| Closer, ServerOptions::default());
    let mut client = connect(addr);
    client.write_all(b"bye").unwrap();
    assert!(sees_eof(&mut client));
}

#[test]
fn c7_half_close_gets_the_full_reply_then_eof() {
    let (addr, _core, _running) = echo_server();
    let mut client = connect(addr);
    let request = pattern(7, 1024 * 1024);
    let writer = {
        let mut w = client.try_clone().unwrap();
        let request = request.clone();
        std::thread::spawn(move || {
            w.write_all(&request).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        })
    };
    let reply = read_to_eof(&mut client);
    writer.join().unwrap();
    assert_eq!(reply.len(), request.len());
    assert!(reply == request);
}

/// C3 + C7: after a short read the CSA skips the `WouldBlock` read (the
/// socket is drained; a new edge will come), except when the FIN came
/// together with the data: then no new edge comes and the CSA must read on
/// to 0. Many connections send their last request and FIN back to back
/// while the server is busy, so the two land in one readiness event; each
/// must still get its reply and then EOF (a missed FIN hangs until the
/// read deadline).
#[test]
fn c3_c7_a_fin_arriving_with_the_last_data_is_not_missed() {
    let (addr, _core, _running) = echo_server();
    for round in 0..4u64 {
        let mut clients: Vec<_> = (0..64).map(|_| connect(addr)).collect();
        for c in &mut clients {
            round_trip(c, b"armed"); // the CSA is now waiting for an edge
        }
        let requests: Vec<Vec<u8>> = (0..clients.len() as u64)
            .map(|i| pattern(round * 100 + i, 100))
            .collect();
        for (c, request) in clients.iter_mut().zip(&requests) {
            c.write_all(request).unwrap();
            c.shutdown(Shutdown::Write).unwrap();
        }
        for (c, request) in clients.iter_mut().zip(&requests) {
            assert!(read_to_eof(c) == *request, "reply then EOF");
        }
    }
}

/// A handler that never reads its inbox.
struct Deaf;
impl Component for Deaf {
    type Boxes = Standard<Vec<u8>, Vec<u8>>;

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        if cx.control.recv().is_some() {
            return Step::Done;
        }
        Step::Pause
    }
}

#[test]
fn c3_a_peer_faster_than_its_handler_is_held_back_not_buffered() {
    let handlers = Arc::new(Mutex::new(Vec::new()));
    let made = handlers.clone();
    let (addr, _core, _running) = server_with(
        move || {
            let h = Handle::new(Deaf);
            made.lock().unwrap().push(h.clone());
            h
        },
        ServerOptions::default(),
    );
    let mut client = connect(addr);
    client
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let chunk = vec![0u8; 1024 * 1024];
    let mut written = 0usize;
    // Bounded: at most 256 MiB offered, stopping at the first blocked write.
    while written < 256 * 1024 * 1024 {
        match client.write(&chunk) {
            Ok(n) => written += n,
            Err(e) => {
                assert!(
                    matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ),
                    "{e}"
                );
                break;
            }
        }
    }
    assert!(
        written < 64 * 1024 * 1024,
        "the server took {written} bytes from a peer whose handler reads nothing"
    );
    let handler = handlers.lock().unwrap()[0].clone();
    assert!(handler.inbox_len("inbox") <= chassis::HANDLER_INBOX_LIMIT);
}

/// An echo whose inbox holds one chunk: each vectored read of a streaming
/// peer's chunks (several at once) meets a full inbox part-way, and the
/// CSA must keep the rest, in order (C3).
#[derive(Default)]
struct OneChunkEcho {
    limited: bool,
    held: Option<Vec<u8>>,
    closing: bool,
}

impl Component for OneChunkEcho {
    type Boxes = Standard<Vec<u8>, Vec<u8>>;

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        if !self.limited {
            self.limited = true;
            cx.inbox.set_limit(Some(1));
        }
        while let Some(chunk) = self.held.take().or_else(|| cx.inbox.recv()) {
            if let Err(full) = cx.outbox.send(chunk) {
                self.held = Some(full.into_inner());
                return Step::Pause;
            }
        }
        while let Some(msg) = cx.control.recv() {
            self.closing |= msg.is_producer_finished();
        }
        if self.closing && cx.inbox.is_empty() {
            let _ = cx.signal.send(Control::ProducerFinished);
            return Step::Done;
        }
        Step::Pause
    }
}

#[test]
fn c3_a_streaming_peers_chunks_read_several_at_once_reach_a_one_chunk_handler_in_order() {
    const TOTAL: usize = 8 * 1024 * 1024;
    let (addr, _core, _running) = server_with(OneChunkEcho::default, ServerOptions::default());
    let mut client = connect(addr);
    let mut writer = client.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        writer.write_all(&pattern(11, TOTAL)).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let got = read_to_eof(&mut client);
    sender.join().unwrap();
    assert_eq!(got.len(), TOTAL, "bytes lost");
    assert!(got == pattern(11, TOTAL), "bytes reordered or corrupted");
}

#[test]
fn c8_a_peer_reset_mid_stream_disturbs_no_one_else() {
    let (addr, _core, _running) = echo_server();
    let mut steady = connect(addr);
    round_trip(&mut steady, b"before");
    for i in 0..20 {
        let mut rude = connect(addr);
        rude.write_all(&pattern(i, 200 * 1024)).unwrap();
        // SO_LINGER 0: close sends a reset, with echo output still queued.
        socket2::SockRef::from(&rude)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(rude);
        round_trip(&mut steady, format!("during {i}").as_bytes());
    }
    let mut fresh = connect(addr);
    round_trip(&mut fresh, b"after");
    round_trip(&mut steady, b"after");
}

#[test]
fn c7_linger_bounds_a_close_waiting_on_a_peer_that_never_reads() {
    use tcpserver::ServerEvent;
    const LINGER: Duration = Duration::from_millis(300);
    let options = ServerOptions {
        linger: LINGER,
        ..ServerOptions::default()
    };
    let (addr, _server, probe, running) = tcp_server_with_probe(options);

    let _client = connect(addr); // never reads
    let new = expect_new_csa(&probe);
    running.handle.activate(&new.csa).unwrap();
    // 16 MiB queued (far more than the socket buffers hold), then
    // producerFinished: the close waits for output that cannot go.
    let inbox = new.csa.postbox::<Vec<u8>>("inbox").unwrap();
    for _ in 0..csa::INBOX_LIMIT {
        inbox.send(vec![1u8; 1024 * 1024]).unwrap();
    }
    let started = std::time::Instant::now();
    new.csa
        .postbox::<Control>("control")
        .unwrap()
        .send(Control::ProducerFinished)
        .unwrap();
    match probe.events.recv_timeout(DEADLINE) {
        Some(ServerEvent::ShutdownCsa { csa, .. }) => assert_eq!(csa, new.csa),
        other => panic!("the connection was not closed after the linger time: {other:?}"),
    }
    assert!(started.elapsed() >= LINGER, "closed before the linger time");
}

/// The CSA counts every byte it reads and writes (its `bytes_in` and
/// `bytes_out` counters, seen in a snapshot), also when the socket takes
/// writes only in part and the rest waits in its backlog: a client sends
/// 4 MiB and reads none of the echo until the CSA's inbox holds chunks it
/// has no room to write. 32 MiB: more than the kernel's buffers on both
/// sides can take (a few MiB each way on loopback), so the echo backs up
/// into the CSA's inbox whatever the order the components run in.
#[test]
fn the_csa_counts_every_byte_each_way_even_when_writes_wait() {
    const N: usize = 32 << 20;
    // On one scheduler (not sharded): the snapshot must see the CSA.
    let server = chassis::SimpleServer::new(
        examples::Echo::new,
        any_loopback_port(),
        ServerOptions::default(),
    )
    .unwrap();
    let addr = server.local_addr();
    let scheduler = selector::scheduler().unwrap();
    scheduler.activate(server).unwrap();
    let running = Running::start(scheduler);
    let snapshot = || running.handle.snapshot(DEADLINE).expect("a snapshot");
    let csa_of = |s: &axon::Snapshot| s.components.iter().find(|c| c.kind == "Csa").cloned();
    let mut client = connect(addr);
    let data = pattern(7, N);
    let writer = {
        let mut w = client.try_clone().unwrap();
        let data = data.clone();
        std::thread::spawn(move || w.write_all(&data).unwrap())
    };
    wait_until("the CSA's output to back up into its inbox", || {
        csa_of(&snapshot()).is_some_and(|c| c.boxes.iter().any(|b| b.name == "inbox" && b.len > 0))
    });
    assert_eq!(read_n(&mut client, N), data);
    writer.join().unwrap();
    let counted = |c: &axon::ComponentInfo, name: &str| {
        c.counters.iter().find(|k| k.name == name).map(|k| k.value)
    };
    wait_until("the CSA to have counted every byte", || {
        csa_of(&snapshot()).is_some_and(|c| {
            counted(&c, "bytes_in") == Some(N as u64) && counted(&c, "bytes_out") == Some(N as u64)
        })
    });
    let c = csa_of(&snapshot()).unwrap();
    assert_eq!(counted(&c, "bytes_in"), Some(N as u64));
    assert_eq!(counted(&c, "bytes_out"), Some(N as u64));
    running.stop();
}
