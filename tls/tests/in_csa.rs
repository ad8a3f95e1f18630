//! TLS inside the CSA (`ServerOptions::session` with
//! [`ServerSessions`]): the CSA reads and writes TLS on its own socket,
//! the handler (a plain one) is given plaintext, and the creator's
//! `socketShutdown` (C6) says how the session ended.
//!
//! Each connection is tapped (a Graphline around its CSA) to see the
//! `socketShutdown` on its way to the server.

mod common;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axon::Handle;
use chassis::{ConnectionInfo, ServerCore, ServerOptions, TcpServer};
use common::{client, exchange, handshake, read_more, short, tapped, Counting, Pki, Seen};
use tcpserver::SessionFactory;
use testkit::{any_loopback_port, pattern, wait_until, Running, DEADLINE};
use tls::{HandshakeLimit, ServerSessions, TlsError};

struct Server {
    addr: SocketAddr,
    /// Its ServerCore.
    core: Handle,
    seen: Seen,
    /// Plaintext bytes the handlers were given.
    count: Arc<AtomicUsize>,
    running: Running,
}

impl Server {
    fn start(sessions: ServerSessions, gate: Option<&HandshakeLimit>) -> Server {
        Server::with_options(
            sessions,
            ServerOptions {
                accept_gate: gate.map(HandshakeLimit::accept_gate),
                ..ServerOptions::default()
            },
        )
    }

    fn with_options(sessions: ServerSessions, options: ServerOptions) -> Server {
        let seen: Seen = Arc::default();
        let count = Arc::new(AtomicUsize::new(0));
        // A factory in `options` is used instead of `sessions`'.
        let options = ServerOptions {
            session: Some(
                options
                    .session
                    .clone()
                    .unwrap_or_else(|| sessions.factory()),
            ),
            ..options
        };
        let s = seen.clone();
        let server = TcpServer::bind(any_loopback_port(), options)
            .unwrap()
            .with_csa(move |csa, _: &ConnectionInfo| tapped(Handle::new(csa), &s));
        let c = count.clone();
        let core = ServerCore::with_server(move |_: &ConnectionInfo| Counting::new(&c), server);
        let addr = core.local_addr();
        let scheduler = selector::scheduler().unwrap();
        let core = scheduler.activate(core).unwrap();
        Server {
            addr,
            core,
            seen,
            count,
            running: Running::start(scheduler),
        }
    }

    fn new(pki: &Pki) -> Server {
        Server::start(ServerSessions::new(pki.server.clone()), None)
    }

    /// The creator's socketShutdowns, once `n` have come (C6: one per
    /// connection).
    #[track_caller]
    fn how_died(&self, n: usize) -> Vec<Option<(io::ErrorKind, Option<TlsError>)>> {
        wait_until("socketShutdown to the creator", || {
            self.seen.lock().unwrap().len() >= n
        });
        self.seen.lock().unwrap().clone()
    }
}

#[test]
fn in_csa_a5_echo_of_1_mib_both_ways_is_byte_exact_and_c7_close_notify_closes_in_order() {
    let pki = Pki::new();
    let server = Server::new(&pki);
    let sent = pattern(4, 1 << 20);
    let (mut c, got) = exchange(client(server.addr, pki.client(), "localhost"), sent.clone());
    assert!(got == sent, "bytes changed");
    c.conn.send_close_notify();
    c.flush().unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).expect("the server's close_notify");
    assert!(rest.is_empty());
    assert_eq!(server.how_died(1), vec![None]);
}

#[test]
fn in_csa_c7_truncation_a_fin_without_close_notify_the_reply_still_comes_and_is_the_how_died() {
    let pki = Pki::new();
    let server = Server::new(&pki);
    let mut c = client(server.addr, pki.client(), "localhost");
    handshake(&mut c).unwrap();
    c.write_all(b"then a bare FIN").unwrap();
    c.flush().unwrap();
    c.sock.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got)
        .expect("the reply, then close_notify");
    assert_eq!(got, b"then a bare FIN", "the reply still comes (C7)");
    assert_eq!(
        server.how_died(1),
        vec![Some((
            io::ErrorKind::UnexpectedEof,
            Some(TlsError::Truncated)
        ))]
    );
}

#[test]
fn in_csa_c7_a_reply_sent_after_the_clients_close_notify_is_delivered() {
    let pki = Pki::new();
    let server = Server::new(&pki);
    let mut c = client(server.addr, pki.client(), "localhost");
    c.write_all(b"last words").unwrap();
    c.conn.send_close_notify();
    c.flush().unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got)
        .expect("the reply, then close_notify");
    assert_eq!(got, b"last words");
    assert_eq!(server.how_died(1), vec![None], "an orderly close both ways");
}

#[test]
fn in_csa_an_unknown_ca_fails_the_handshake_with_a_clear_how_died_and_others_go_on() {
    let pki = Pki::new();
    let server = Server::new(&pki);
    let mut bad = client(server.addr, Pki::stranger(), "localhost");
    let err = handshake(&mut bad).expect_err("a certificate from an unknown CA");
    assert!(
        err.to_string().contains("invalid peer certificate"),
        "{err}"
    );
    drop(bad);
    // The server's side: the client's alert, as how_died (decrypt_error
    // here: both CAs have the same empty name, so the signature is what
    // fails).
    let died = server.how_died(1);
    let Some((kind, Some(TlsError::Tls(e)))) = &died[0] else {
        panic!("{died:?}");
    };
    assert_eq!(*kind, io::ErrorKind::InvalidData);
    assert!(matches!(e, rustls::Error::AlertReceived(_)), "{e:?}");
    let (_, got) = exchange(
        client(server.addr, pki.client(), "localhost"),
        b"ok".to_vec(),
    );
    assert_eq!(got, b"ok");
}

#[test]
fn in_csa_a_plaintext_client_gets_an_alert_and_a_close_and_nothing_reaches_the_handler() {
    let pki = Pki::new();
    let server = Server::new(&pki);
    let mut sock = testkit::connect(server.addr);
    sock.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let got = testkit::read_to_eof(&mut sock);
    // A TLS alert record (content type 21), then the close.
    assert_eq!(got.first(), Some(&21), "{got:?}");
    let died = server.how_died(1);
    assert!(
        matches!(
            &died[0],
            Some((io::ErrorKind::InvalidData, Some(TlsError::Tls(_))))
        ),
        "{died:?}"
    );
    assert_eq!(server.count.load(Ordering::Relaxed), 0);
}

#[test]
fn in_csa_a_silent_client_and_half_a_client_hello_are_closed_at_the_handshake_deadline_without_spinning(
) {
    let pki = Pki::new();
    let sessions = ServerSessions::new(pki.server.clone()).with_handshake_timeout(short(300));
    let mut server = Server::start(sessions, None);
    // The server's thread's: the process's counts the tests beside this one.
    let cpu = server.running.cpu_seconds();
    let start = Instant::now();
    let mut silent = testkit::connect(server.addr);
    let mut halting = testkit::connect(server.addr);
    // A handshake record that says 200 bytes follow, and one of them.
    halting.write_all(&[22, 3, 1, 0, 200, 1]).unwrap();
    assert!(
        testkit::sees_eof(&mut silent),
        "a byte instead of the close"
    );
    assert!(
        testkit::sees_eof(&mut halting),
        "a byte instead of the close"
    );
    let waited = start.elapsed();
    assert!(waited >= short(300), "closed after {waited:?}");
    assert!(waited < DEADLINE);
    let timed_out = Some((
        io::ErrorKind::TimedOut,
        Some(TlsError::HandshakeTimeout(short(300))),
    ));
    assert_eq!(server.how_died(2), vec![timed_out.clone(), timed_out]);
    // A timer, not a poll: the wait costs the server almost nothing.
    let spent = server.running.cpu_seconds() - cpu;
    let waited = waited.as_secs_f64();
    assert!(spent < waited / 2.0, "{spent} s of CPU in {waited} s");
}

#[test]
fn in_csa_eof_in_half_a_client_hello_ends_the_connection_at_once_and_is_reported() {
    let pki = Pki::new();
    let server = Server::new(&pki);
    let mut sock = testkit::connect(server.addr);
    // Half a ClientHello's record header, then FIN.
    sock.write_all(&[22, 3, 1]).unwrap();
    sock.shutdown(Shutdown::Write).unwrap();
    let start = Instant::now();
    assert!(testkit::sees_eof(&mut sock));
    assert!(
        start.elapsed() < tls::HANDSHAKE_TIMEOUT,
        "waited for the deadline"
    );
    assert_eq!(
        server.how_died(1),
        vec![Some((
            io::ErrorKind::UnexpectedEof,
            Some(TlsError::EndedInHandshake)
        ))]
    );
}

#[test]
fn in_csa_c6_a_reset_during_the_handshake_is_reported_exactly_once() {
    let pki = Pki::new();
    let server = Server::new(&pki);
    let sock = socket2::Socket::from(testkit::connect(server.addr));
    // Half a ClientHello, then a reset (SO_LINGER 0).
    (&sock).write_all(&[22, 3, 1, 0, 200, 1]).unwrap();
    sock.set_linger(Some(Duration::ZERO)).unwrap();
    drop(sock);
    let died = server.how_died(1);
    assert!(
        matches!(
            &died[0],
            Some((
                io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof,
                _
            ))
        ),
        "{died:?}"
    );
    // Another connection's end is the next one: none came twice.
    let (_, got) = exchange(
        client(server.addr, pki.client(), "localhost"),
        b"ok".to_vec(),
    );
    assert_eq!(got, b"ok");
    let all = server.how_died(2);
    assert_eq!(all.len(), 2, "{all:?}");
}

#[test]
fn in_csa_resumption_works_and_early_data_is_refused() {
    let pki = Pki::new();
    let server = Server::new(&pki);
    let config = pki.client();
    for round in 0..2 {
        let mut c = client(server.addr, config.clone(), "localhost");
        handshake(&mut c).unwrap();
        let (mut c, got) = exchange(c, b"again".to_vec());
        assert_eq!(got, b"again");
        let kind = c.conn.handshake_kind();
        let want = if round == 0 {
            rustls::HandshakeKind::Full
        } else {
            rustls::HandshakeKind::Resumed
        };
        assert_eq!(kind, Some(want), "round {round}");
        c.conn.send_close_notify();
        c.flush().unwrap();
    }
    // A config accepting 0-RTT would lose it: every connection is refused
    // at its start, before a byte moves.
    let mut early = (*pki.server).clone();
    early.max_early_data_size = 1024;
    let refusing = Server::start(ServerSessions::new(Arc::new(early)), None);
    let mut sock = testkit::connect(refusing.addr);
    assert!(testkit::sees_eof(&mut sock));
    let died = refusing.how_died(1);
    assert!(
        matches!(
            &died[0],
            Some((io::ErrorKind::InvalidData, Some(TlsError::Setup(_))))
        ),
        "{died:?}"
    );
}

#[test]
fn in_csa_the_handshake_cap_holds_a_turn_per_handshake_and_gives_it_back() {
    let pki = Pki::new();
    let limit = HandshakeLimit::new(2);
    let sessions = ServerSessions::new(pki.server.clone())
        .with_handshake_limit(&limit)
        .with_handshake_timeout(short(500));
    let server = Server::start(sessions, Some(&limit));
    // Two silent clients hold both turns; a third waits in the kernel's
    // backlog (accepting paused), and is served once the deadline frees one.
    let silent: Vec<_> = (0..2).map(|_| testkit::connect(server.addr)).collect();
    wait_until("both turns taken", || limit.in_progress() == 2);
    let (_, got) = exchange(
        client(server.addr, pki.client(), "localhost"),
        b"late".to_vec(),
    );
    assert_eq!(got, b"late");
    drop(silent);
    wait_until("every turn given back", || limit.in_progress() == 0);
    assert_eq!(limit.most_in_progress(), 2);
}

#[test]
fn in_csa_c6_a_stop_during_the_handshake_is_reported_exactly_once_as_such() {
    let pki = Pki::new();
    let limit = HandshakeLimit::new(4);
    let sessions = ServerSessions::new(pki.server.clone()).with_handshake_limit(&limit);
    let server = Server::start(sessions, Some(&limit));
    let mut sock = testkit::connect(server.addr);
    // Half a ClientHello; its turn under the cap shows it was accepted.
    sock.write_all(&[22, 3, 1, 0, 200, 1]).unwrap();
    wait_until("the connection to be accepted", || limit.in_progress() == 1);
    // A stop now (ServerCore tells each CSA shutdownMicroprocess).
    server
        .core
        .postbox::<axon::Control>("control")
        .unwrap()
        .send(axon::Control::ShutdownMicroprocess)
        .unwrap();
    assert!(testkit::sees_eof(&mut sock));
    assert_eq!(
        server.how_died(1),
        vec![Some((
            io::ErrorKind::Interrupted,
            Some(TlsError::StoppedInHandshake)
        ))]
    );
    wait_until("its turn given back", || limit.in_progress() == 0);
}

#[test]
fn in_csa_c10_a_client_that_never_reads_is_closed_at_the_stall_timeout() {
    let pki = Pki::new();
    let server = Server::with_options(
        ServerSessions::new(pki.server.clone()),
        ServerOptions {
            stall_timeout: Some(short(300)),
            ..ServerOptions::default()
        },
    );
    let mut c = client(server.addr, pki.client(), "localhost");
    handshake(&mut c).unwrap();
    // Push without reading until the echo backs up into the server's
    // records and a write waits (bounded: the stall comes within MiBs).
    c.sock.set_write_timeout(Some(short(500))).unwrap();
    let piece = testkit::pattern(5, 64 * 1024);
    let began = Instant::now();
    while c.write_all(&piece).and_then(|()| c.flush()).is_ok() {
        assert!(began.elapsed() < DEADLINE, "no stall");
    }
    // Records wait for a peer that takes none: closed at C10's limit.
    assert_eq!(
        server.how_died(1),
        vec![Some((io::ErrorKind::TimedOut, None))]
    );
}

/// A session that counts its writes to the socket that moved bytes.
#[derive(Debug)]
struct CountedWrites {
    inner: Box<dyn csa::Session>,
    writes: Arc<AtomicUsize>,
}

impl csa::Session for CountedWrites {
    fn start(&mut self) -> io::Result<()> {
        self.inner.start()
    }
    fn read_from(&mut self, socket: &mut dyn Read) -> io::Result<usize> {
        self.inner.read_from(socket)
    }
    fn process(&mut self) -> io::Result<()> {
        self.inner.process()
    }
    fn plaintext(&mut self, buf: &mut Vec<u8>, max: usize) -> csa::session::Plaintext {
        self.inner.plaintext(buf, max)
    }
    fn write_plaintext(&mut self, data: &[u8]) -> usize {
        self.inner.write_plaintext(data)
    }
    fn write_to(&mut self, socket: &mut dyn Write) -> io::Result<usize> {
        let n = self.inner.write_to(socket)?;
        if n > 0 {
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
        Ok(n)
    }
    fn wants_read(&self) -> bool {
        self.inner.wants_read()
    }
    fn wants_write(&self) -> bool {
        self.inner.wants_write()
    }
    fn is_handshaking(&self) -> bool {
        self.inner.is_handshaking()
    }
    fn close(&mut self) {
        self.inner.close()
    }
    fn input_ended(&mut self) -> Option<io::Error> {
        self.inner.input_ended()
    }
    fn handshake_timeout(&self) -> Option<Duration> {
        self.inner.handshake_timeout()
    }
    fn summary(&self) -> csa::SslReady {
        self.inner.summary()
    }
    fn timed_out(&self) -> io::Error {
        self.inner.timed_out()
    }
    fn stopped(&mut self) -> Option<io::Error> {
        self.inner.stopped()
    }
}

#[derive(Debug)]
struct CountingWrites {
    sessions: ServerSessions,
    writes: Arc<AtomicUsize>,
}

impl SessionFactory for CountingWrites {
    fn session(&self) -> Box<dyn csa::Session> {
        Box::new(CountedWrites {
            inner: self.sessions.session(),
            writes: self.writes.clone(),
        })
    }
}

#[test]
fn in_csa_the_tickets_after_a_handshake_leave_at_once_not_held_for_the_handlers_reply() {
    // A client's Finished and its first bytes in one segment: the server
    // answers the handshake (one write), sends the session tickets as
    // soon as it has processed the Finished (one write), then the echo
    // (one write) and its close_notify (one write). Holding the tickets
    // for the handler's reply (three writes, as a hand-written mio +
    // rustls server makes) held them behind every component the step
    // woke: at 64 connections resumed handshakes ran at 0.80× the rate.
    let pki = Pki::new();
    let writes = Arc::new(AtomicUsize::new(0));
    let factory = CountingWrites {
        sessions: ServerSessions::new(pki.server.clone()),
        writes: writes.clone(),
    };
    let server = Server::with_options(
        ServerSessions::new(pki.server.clone()),
        ServerOptions {
            session: Some(Arc::new(factory)),
            ..ServerOptions::default()
        },
    );
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(pki.client(), name).unwrap();
    // Sent right after the client's Finished, in the same write.
    conn.writer().write_all(b"hello").unwrap();
    let mut sock = std::net::TcpStream::connect(server.addr).unwrap();
    sock.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut got = Vec::new();
    let mut closing = false;
    loop {
        while conn.wants_write() {
            conn.write_tls(&mut sock).unwrap();
        }
        if conn.read_tls(&mut sock).expect("the server's records") == 0 {
            break;
        }
        let state = conn.process_new_packets().unwrap();
        let mut buf = [0u8; 64];
        while let Ok(n) = conn.reader().read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        if got == b"hello" && !closing {
            closing = true;
            conn.send_close_notify();
        }
        if state.peer_has_closed() {
            break;
        }
    }
    assert_eq!(got, b"hello");
    assert_eq!(server.how_died(1), vec![None]);
    assert_eq!(writes.load(Ordering::SeqCst), 4, "writes by the server");
}

/// A handler that keeps every plaintext byte it is given, in order,
/// taking one chunk per step: slower than the CSA fills its inbox, so the
/// CSA's outbox fills in the middle of its reads.
/// A handler that keeps every byte it is given, and the size of each
/// chunk.
struct Keep(Arc<std::sync::Mutex<(Vec<u8>, Vec<usize>)>>);

impl axon::Component for Keep {
    type Boxes = axon::Standard<Vec<u8>, Vec<u8>>;

    fn main(&mut self, cx: &mut axon::Cx<Self::Boxes>) -> axon::Step {
        if let Some(b) = cx.inbox.recv() {
            let mut kept = self.0.lock().unwrap();
            kept.0.extend_from_slice(&b);
            kept.1.push(b.len());
            return axon::Step::Continue;
        }
        if cx.control.recv().is_some() {
            let _ = cx.signal.send(axon::Control::ProducerFinished);
            return axon::Step::Done;
        }
        axon::Step::Pause
    }
}

#[test]
fn in_csa_c3_ciphertext_read_ahead_of_a_full_outbox_is_kept_and_passed_on_in_order_in_chunks_of_several_records(
) {
    // The CSA reads the socket many records at a time; the handler's
    // inbox takes 16 chunks, so in a push the outbox fills in the middle
    // of a read, and the rest of that read must wait in the CSA and be
    // decrypted first when there is room: nothing lost, nothing reordered.
    // Once the outbox has been full the socket is too, so reads bring
    // several 16 KiB records each, and what they decrypt is gathered into
    // chunks of up to csa::CHUNK (32 KiB), not one message per record.
    let pki = Pki::new();
    let kept: Arc<std::sync::Mutex<(Vec<u8>, Vec<usize>)>> = Arc::default();
    let k = kept.clone();
    let options = ServerOptions {
        session: Some(ServerSessions::new(pki.server.clone()).factory()),
        ..ServerOptions::default()
    };
    let server = chassis::SimpleServer::new(
        move || Keep(k.clone()),
        "127.0.0.1:0".parse().unwrap(),
        options,
    )
    .unwrap();
    let addr = server.local_addr();
    let scheduler = selector::scheduler().unwrap();
    scheduler.activate(server).unwrap();
    let _running = Running::start(scheduler);
    let sent = pattern(9, 16 << 20);
    let mut c = client(addr, pki.client(), "localhost");
    handshake(&mut c).unwrap();
    c.write_all(&sent).unwrap();
    c.flush().unwrap();
    wait_until("every byte at the handler", || {
        kept.lock().unwrap().0.len() >= sent.len()
    });
    let kept = kept.lock().unwrap();
    let (bytes, sizes) = &*kept;
    assert_eq!(bytes.len(), sent.len(), "bytes added");
    assert!(*bytes == sent, "bytes changed or reordered");
    let biggest = sizes.iter().max().copied().unwrap_or(0);
    assert!(biggest <= csa::CHUNK, "a chunk of {biggest} bytes");
    let gathered = sizes.iter().filter(|&&n| n > 16 * 1024).count();
    assert!(
        gathered * 4 > sizes.len(),
        "{gathered} of {} chunks hold more than one record",
        sizes.len()
    );
}

#[test]
fn in_csa_c3_a_flood_of_tiny_records_is_echoed_byte_exact() {
    // Thousands of 1- to 7-byte records, queued and written in batches, so
    // that each read of the server's brings hundreds of them: what they
    // decrypt is gathered into chunks a small piece at a time, and comes
    // back whole and in order.
    let pki = Pki::new();
    let server = Server::new(&pki);
    let mut c = client(server.addr, pki.client(), "localhost");
    handshake(&mut c).unwrap();
    let sent = pattern(11, 24_000);
    let (mut got, mut buf) = (Vec::with_capacity(sent.len()), vec![0u8; 64 * 1024]);
    let mut records = 0;
    for batch in sent.chunks(6_000) {
        let mut rest = batch;
        while !rest.is_empty() {
            let n = rest.len().min(1 + records % 7);
            c.conn.writer().write_all(&rest[..n]).unwrap(); // one record each
            rest = &rest[n..];
            records += 1;
        }
        c.flush().unwrap();
        read_more(&mut c, &mut got, batch.len(), &mut buf);
    }
    assert!(records > 5_000, "{records} records");
    assert_eq!(got.len(), sent.len(), "bytes added or lost");
    assert!(got == sent, "bytes changed or reordered");
    assert_eq!(server.count.load(Ordering::Relaxed), sent.len());
}
