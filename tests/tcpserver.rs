//! TCPServer rules T1–T8, over real loopback sockets.

mod util;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use axon::{link, Control, Handle};
use chassis::ServerOptions;
use tcpserver::{ServerEvent, TcpServer};
use util::*;

#[test]
fn t1_boxes_are_kamaelias() {
    let server = Handle::new(
        TcpServer::bind("127.0.0.1:0".parse().unwrap(), ServerOptions::default()).unwrap(),
    );
    let names: Vec<String> = server.boxes().into_iter().map(|b| b.name).collect();
    for name in [
        "control",
        "newconnection",
        "_feedbackFromCSA",
        "protocolHandlerSignal",
        "signal",
        "_selectorSignal",
        "_selectorShutdownSignal",
    ] {
        assert!(names.iter().any(|n| n == name), "missing box {name}");
    }
}

#[test]
fn t2_port_zero_gives_a_real_port() {
    let server = TcpServer::bind("127.0.0.1:0".parse().unwrap(), ServerOptions::default()).unwrap();
    assert_ne!(server.local_addr().port(), 0);
    // And something is listening there.
    std::net::TcpStream::connect(server.local_addr()).unwrap();
}

#[test]
fn t2_bind_to_a_port_in_use_is_an_error_naming_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let options = ServerOptions {
        reuse_address: false,
        ..ServerOptions::default()
    };
    let err = TcpServer::bind(addr, options).unwrap_err();
    assert_eq!(err.addr, addr);
    assert_eq!(err.error.kind(), std::io::ErrorKind::AddrInUse);
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    // SO_REUSEADDR does not let two listeners share a port either.
    assert!(TcpServer::bind(addr, ServerOptions::default()).is_err());
}

#[test]
fn t4_t6_c2_c6_new_connection_and_close_message_sequences() {
    let (addr, server, probe, running) = tcp_server_with_probe(ServerOptions::default());

    let mut client = connect(addr);
    // T4: newCSA(self, csa, sock), the CSA not yet activated, its
    // CreatorFeedback linked to the server's _feedbackFromCSA.
    let new = expect_new_csa(&probe);
    assert_eq!(new.server, server);
    assert_eq!(new.peer, client.local_addr().unwrap());
    assert_eq!(new.local, addr);
    assert!(
        !new.csa.is_activated(),
        "the receiver of newCSA activates it"
    );
    assert!(new
        .csa
        .leads_to("CreatorFeedback", (&server, "_feedbackFromCSA")));

    // Wire it as ServerCore would, minus the handler.
    link((&new.csa, "outbox"), (probe.handle(), "data")).unwrap();
    link((&new.csa, "signal"), (probe.handle(), "csaSignal")).unwrap();
    running.handle.activate(&new.csa).unwrap();
    // C2: on start it links its _selectorSignal to the Selector.
    let (selector, _) = running.handle.cat().retrieve_service("selector").unwrap();
    wait_until("the CSA to link to the Selector", || {
        new.csa.leads_to("_selectorSignal", (&selector, "notify"))
    });
    client.write_all(b"hello").unwrap();
    assert_eq!(probe.data.recv_timeout(DEADLINE).expect("data"), b"hello");

    // Peer closes: the CSA says shutdownCSA (C6), the server shutdownCSA
    // out of protocolHandlerSignal (T6), each naming the CSA, once.
    drop(client);
    let c6 = probe
        .csa_signal
        .recv_timeout(DEADLINE)
        .expect("C6 shutdownCSA");
    assert_eq!(c6.csa, new.csa);
    assert!(c6.source.same(&new.source));
    match next_event(&probe) {
        ServerEvent::ShutdownCsa { server: s, csa } => {
            assert_eq!(s, server);
            assert_eq!(csa, new.csa);
        }
        other => panic!("expected shutdownCSA, got {other:?}"),
    }
    assert!(new.csa.is_done());
    assert_eq!(
        probe.csa_signal.recv().map(|s| s.csa),
        None,
        "C6 said twice"
    );
}

#[test]
fn t3_start_links_to_the_selector_and_asks_for_connections() {
    let (addr, server, probe, running) = tcp_server_with_probe(ServerOptions::default());
    wait_until("the server's first step", || {
        running.handle.cat().retrieve_service("selector").is_ok() && server.links().len() == 1
    });
    let (selector, _) = running.handle.cat().retrieve_service("selector").unwrap();
    assert!(server.leads_to("_selectorSignal", (&selector, "notify")));
    assert!(server.leads_to("_selectorShutdownSignal", (&selector, "control")));
    let links = format!("{:?}", server.links());
    assert!(
        links.contains("TCPServer._selectorShutdownSignal -> Selector.control"),
        "{links}"
    );
    assert!(!selector.is_done());
    // Its newReader for newconnection is answered when a client knocks.
    let _c = connect(addr);
    assert!(matches!(
        probe.events.recv_timeout(DEADLINE),
        Some(ServerEvent::NewCsa(_))
    ));
}

#[test]
fn t4_several_waiting_connections_are_all_accepted() {
    let (addr, _server, probe, scheduler) =
        tcp_server_with_probe_unstarted(ServerOptions::default());
    // 200 clients wait in the backlog before the server even starts: more
    // than one accept round (64) must follow.
    let clients: Vec<_> = (0..200).map(|_| connect(addr)).collect();
    let _running = Running::start(scheduler);
    for i in 0..clients.len() {
        match probe.events.recv_timeout(DEADLINE) {
            Some(ServerEvent::NewCsa(_)) => {}
            other => panic!("connection {i}: expected newCSA, got {other:?}"),
        }
    }
}

#[test]
fn t7_server_shutdown_stops_listening_and_ends() {
    let (addr, server, probe, scheduler) =
        tcp_server_with_probe_unstarted(ServerOptions::default());
    link((&server, "signal"), (probe.handle(), "serverSignal")).unwrap();
    let running = Running::start(scheduler);
    // It is serving: a connection is announced.
    let _c = connect(addr);
    let new = expect_new_csa(&probe);
    running.handle.activate(&new.csa).unwrap();
    // Its first step links it to the running Selector (C2).
    let (selector, _) = running.handle.cat().retrieve_service("selector").unwrap();
    wait_until("the CSA to link to the Selector", || {
        new.csa.leads_to("_selectorSignal", (&selector, "notify"))
    });

    server
        .postbox::<Control>("control")
        .unwrap()
        .send(Control::ServerShutdown)
        .unwrap();
    assert_eq!(
        probe.server_signal.recv_timeout(DEADLINE),
        Some(Control::ProducerFinished)
    );
    // The Selector handles the removeReader (dropping the last reference to
    // the listener) in the step in which it gives up its names (T7, S8).
    wait_until("the Selector's names to go", || {
        running.handle.cat().retrieve_service("selector").is_err()
    });
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still listening"
    );
    // The Selector, told to shut down (T7), lives on while the connection's
    // registration does (S8); closing the connection ends it, and with it
    // the scheduler.
    new.csa
        .postbox::<Control>("control")
        .unwrap()
        .send(Control::ShutdownMicroprocess)
        .unwrap();
    running.join();
}

#[test]
fn t8_at_the_connection_limit_new_clients_wait_and_are_served_later() {
    let options = ServerOptions {
        max_connections: Some(2),
        ..ServerOptions::default()
    };
    let (addr, _core, _running) = server_with(examples::Echo::new, options);
    let mut a = connect(addr);
    let mut b = connect(addr);
    round_trip(&mut a, b"a");
    round_trip(&mut b, b"b");
    // The third connects (the kernel's backlog completes the handshake) but
    // is not accepted while two are open.
    let mut c = connect(addr);
    c.write_all(b"c").unwrap();
    c.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 1];
    assert!(c.read(&mut buf).is_err(), "served beyond the limit");
    // One closes: the waiting client is accepted, not dropped.
    drop(a);
    c.set_read_timeout(Some(DEADLINE)).unwrap();
    assert_eq!(read_n(&mut c, 1), b"c");
    round_trip(&mut b, b"still there");
}

/// T4's child: a server lists each CSA among its children (A7), which
/// keeps a CSA nobody has activated yet alive; one whose `newCSA` taker
/// keeps and activates every CSA itself (ServerCore) is told so
/// (`keep_csas: false`) and lists none, keeping nothing per connection.
#[test]
fn t4_a_server_lists_its_csas_as_children_unless_their_taker_keeps_them() {
    for keep in [true, false] {
        let options = ServerOptions {
            keep_csas: keep,
            ..ServerOptions::default()
        };
        let (addr, server, probe, running) = tcp_server_with_probe(options);
        let client = connect(addr);
        let new = expect_new_csa(&probe);
        running.handle.activate(&new.csa).unwrap();
        let snapshot = running.handle.snapshot(DEADLINE).expect("a snapshot");
        let csa = snapshot
            .components
            .iter()
            .find(|c| c.id == new.csa.id())
            .expect("the CSA runs");
        let want = keep.then(|| server.id());
        assert_eq!(csa.parent, want, "keep_csas: {keep}");
        drop(client);
        match next_event(&probe) {
            ServerEvent::ShutdownCsa { csa, .. } => assert_eq!(csa, new.csa),
            other => panic!("expected shutdownCSA, got {other:?}"),
        }
    }
}
