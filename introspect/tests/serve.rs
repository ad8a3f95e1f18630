//! The introspection server against real sockets on 127.0.0.1: an echo
//! server and `introspect::serve_with` on one Selector scheduler, and
//! loopback clients. No sleeps: every wait is a read with a deadline, or
//! `testkit::wait_until` for a fact with no event (a count in a later
//! snapshot).

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use chassis::{ServerOptions, SimpleServer};
use introspect::{Introspection, Options};
use serde_json::Value;
use testkit::{connect, pattern, read_to_eof, round_trip, wait_until, Proc, Running, DEADLINE};

struct System {
    running: Option<Running>,
    echo: SocketAddr,
    seen: Introspection,
}

impl Drop for System {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop();
        }
    }
}

fn start(options: Options) -> System {
    let scheduler = selector::scheduler().expect("a poller");
    let local = "127.0.0.1:0".parse().unwrap();
    let echo = SimpleServer::new(examples::Echo::new, local, ServerOptions::default()).unwrap();
    let echo_addr = echo.local_addr();
    scheduler.activate(echo).unwrap();
    let seen = introspect::serve_with(&scheduler, local, options).expect("bind");
    System {
        running: Some(Running::start(scheduler)),
        echo: echo_addr,
        seen,
    }
}

/// One request, its status and body (the server closes after each reply).
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = connect(addr);
    write!(s, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    let reply = String::from_utf8(read_to_eof(&mut s)).expect("utf-8");
    let (head, body) = reply.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|l| l.parse().ok())
        .expect("a length");
    assert_eq!(body.len(), length, "the whole body, as announced");
    (status, body.to_owned())
}

fn graph(addr: SocketAddr) -> Value {
    let (status, body) = get(addr, "/graph.json");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("graph.json is JSON")
}

/// The node of kind `id` (the served system's, not introspection's own).
fn node<'a>(g: &'a Value, id: &str) -> Option<&'a Value> {
    g["kinds"].as_array()?.iter().find(|k| k["id"] == id)
}

fn count(g: &Value, id: &str) -> u64 {
    node(g, id).map_or(0, |n| n["count"].as_u64().unwrap())
}

fn delivered(g: &Value, id: &str, inbox: &str) -> u64 {
    node(g, id)
        .and_then(|n| n["boxes"].as_array())
        .and_then(|b| b.iter().find(|b| b["name"] == inbox))
        .map_or(0, |b| b["delivered"].as_u64().unwrap())
}

const ROUND_TRIPS: usize = 4;

#[test]
fn three_clients_show_three_csas_and_three_handlers_then_none() {
    let sys = start(Options::default());
    let web = sys.seen.local_addr();
    let mut clients: Vec<TcpStream> = (0..3).map(|_| connect(sys.echo)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        for k in 0..ROUND_TRIPS {
            // One 64-byte write, echoed before the next: one chunk each way.
            round_trip(c, &pattern((i * 100 + k) as u64, 64));
        }
    }
    let g = graph(web);
    assert_eq!(count(&g, "Csa"), 3, "{g}");
    assert_eq!(count(&g, "Echo"), 3, "{g}");
    assert_eq!(count(&g, "ServerCore"), 1);
    // The counters are what the clients sent: one message per round trip
    // into each handler, and one back into each CSA.
    let sent = (3 * ROUND_TRIPS) as u64;
    assert_eq!(delivered(&g, "Echo", "inbox"), sent, "{g}");
    assert_eq!(delivered(&g, "Csa", "inbox"), sent, "{g}");
    // And the CSAs counted every byte each way (`bytes_in`, `bytes_out`).
    let csa = node(&g, "Csa").unwrap();
    assert_eq!(csa["counters"]["bytes_in"], sent * 64, "{g}");
    assert_eq!(csa["counters"]["bytes_out"], sent * 64, "{g}");
    let link = g["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["src"] == "Csa" && l["src_box"] == "outbox" && l["dst"] == "Echo")
        .expect("CSA outbox to handler inbox");
    assert_eq!(
        (link["dst_box"].as_str(), link["count"].as_u64()),
        (Some("inbox"), Some(3))
    );
    // Introspection's own are there, tagged.
    let own = node(&g, "Introspector@introspect").expect("the Introspector, tagged");
    assert_eq!(own["own"], true);
    assert!(
        count(&g, "HttpHandler@introspect") >= 1,
        "this request's own handler"
    );
    assert!(count(&g, "Csa@introspect") >= 1);

    let (status, dot) = get(web, "/graph.dot?own=0");
    assert_eq!(status, 200);
    assert!(dot.starts_with("digraph axon {"), "{dot}");
    assert!(dot.contains("\"Csa\" [label=\"{{<i_inbox> inbox|"), "{dot}");
    assert!(dot.contains("|Csa (3)|"), "{dot}");
    assert!(dot.contains("|Echo (3)|"), "{dot}");
    assert!(
        dot.contains("\"Csa\":o_outbox -> \"Echo\":i_inbox [label=\"3\"]"),
        "{dot}"
    );
    assert!(!dot.contains("@introspect"), "own=0 hides the server's own");
    let (_, all) = get(web, "/graph.dot");
    assert!(all.contains("HttpHandler@introspect"));

    let (status, body) = get(web, "/instances?kind=Csa&sort=delivered&n=2");
    assert_eq!(status, 200);
    let t: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(t["total"], 3);
    let rows = t["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "top 2 of 3");
    assert!(rows[0]["delivered"].as_u64() >= rows[1]["delivered"].as_u64());
    // `delivered` sums every inbox (the Selector's notices too); the
    // `inbox` box itself got one message per round trip.
    let inbox = rows[0]["boxes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "inbox")
        .expect("the CSA's inbox");
    assert_eq!(inbox["delivered"], ROUND_TRIPS as u64);
    assert!(
        inbox["limit"].as_u64().is_some(),
        "the CSA's inbox is bounded"
    );
    assert!(rows[0]["neighbours"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["peer_kind"] == "Echo" && n["way"] == "out" && n["box"] == "outbox"));

    let (status, text) = get(web, "/topology.txt");
    assert_eq!(status, 200);
    assert!(text.starts_with("DEL ALL\n"));
    let components = |name: &str| {
        text.lines()
            .filter(|l| {
                l.starts_with("ADD NODE") && l.ends_with(&format!("\"{name}\" randompos component"))
            })
            .count()
    };
    assert_eq!(components("Echo"), 3, "{text}");
    assert_eq!(
        components("ConnectedSocketAdapter"),
        3,
        "own ones left out: {text}"
    );
    assert_eq!(components("HttpHandler"), 0);

    drop(clients);
    wait_until("the closed connections to leave the graph", || {
        let g = graph(web);
        count(&g, "Csa") == 0 && count(&g, "Echo") == 0
    });
    let g = graph(web);
    assert_eq!(count(&g, "ServerCore"), 1, "the echo server stays");
}

/// Each connection's bytes in and out, as counted by its CSA, sort its
/// instances: three clients sending 10, 1,000 and 100 bytes.
#[test]
fn instances_sort_by_the_bytes_each_csa_moved() {
    let sys = start(Options::default());
    let web = sys.seen.local_addr();
    let sizes = [10, 1_000, 100];
    let clients: Vec<TcpStream> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let mut c = connect(sys.echo);
            round_trip(&mut c, &pattern(i as u64, n));
            c
        })
        .collect();
    let (status, body) = get(web, "/instances?kind=Csa&sort=bytes_in&n=3");
    assert_eq!(status, 200, "{body}");
    let t: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(t["sort"], "bytes_in");
    let moved: Vec<(u64, u64)> = t["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let c = &r["counters"];
            (
                c["bytes_in"].as_u64().unwrap(),
                c["bytes_out"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(moved, [(1_000, 1_000), (100, 100), (10, 10)], "{body}");
    let (status, _) = get(web, "/instances?kind=Csa&sort=bytes_out&n=1");
    assert_eq!(status, 200);
    drop(clients);
}

#[test]
fn the_page_embeds_the_first_snapshot_and_needs_nothing_else() {
    let sys = start(Options::default());
    let _client = {
        let mut c = connect(sys.echo);
        round_trip(&mut c, b"hello");
        c
    };
    let (status, page) = get(sys.seen.local_addr(), "/");
    assert_eq!(status, 200);
    assert!(page.starts_with("<!doctype html>"));
    let first = page
        .split("<script id=\"first\" type=\"application/json\">")
        .nth(1)
        .and_then(|rest| rest.split("</script>").next())
        .expect("the embedded snapshot");
    let g: Value = serde_json::from_str(first).expect("JSON");
    assert_eq!(count(&g, "Csa"), 1);
    assert!(!page.contains("src=\"http"), "no CDN");
}

#[test]
fn bad_requests_get_their_status_and_a_close() {
    let sys = start(Options::default());
    let web = sys.seen.local_addr();
    assert_eq!(get(web, "/nowhere").0, 404);
    assert_eq!(get(web, "/instances").0, 400);
    assert_eq!(get(web, "/instances?kind=Csa&sort=nonsense").0, 400);
    assert_eq!(get(web, "/instances?kind=NoSuchKind").0, 200);
    let mut s = connect(web);
    s.write_all(b"POST /graph.json HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
        .unwrap();
    let reply = String::from_utf8(read_to_eof(&mut s)).unwrap();
    assert!(reply.starts_with("HTTP/1.1 405 "), "{reply}");
    // HEAD: the head alone.
    let mut s = connect(web);
    s.write_all(b"HEAD /graph.json HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let reply = String::from_utf8(read_to_eof(&mut s)).unwrap();
    assert!(
        reply.starts_with("HTTP/1.1 200 OK") && reply.ends_with("\r\n\r\n"),
        "{reply}"
    );
}

/// Reads whatever comes until EOF or a reset, within the deadline.
fn read_until_closed(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                panic!("not closed within {DEADLINE:?}")
            }
            Err(_) => return got, // reset: closed
        }
    }
}

#[test]
fn hostile_http_input_is_closed_with_bounded_memory_and_echo_goes_on() {
    let head_timeout = Duration::from_millis(300);
    let sys = start(Options {
        head_timeout,
        ..Options::default()
    });
    let web = sys.seen.local_addr();
    let mut echo = connect(sys.echo);
    round_trip(&mut echo, b"before");

    // Oversized headers: 9 KiB of them, never ended.
    let mut s = connect(web);
    let mut head = b"GET / HTTP/1.1\r\n".to_vec();
    while head.len() < 9 * 1024 {
        head.extend_from_slice(b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    s.write_all(&head).unwrap();
    let reply = String::from_utf8_lossy(&read_until_closed(&mut s)).into_owned();
    assert!(reply.starts_with("HTTP/1.1 431 "), "{reply}");
    round_trip(&mut echo, b"after oversized headers");

    // Garbage.
    let mut s = connect(web);
    s.write_all(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n")
        .unwrap();
    let reply = String::from_utf8_lossy(&read_until_closed(&mut s)).into_owned();
    assert!(reply.starts_with("HTTP/1.1 400 "), "{reply}");
    round_trip(&mut echo, b"after garbage");

    // A slow request, and a silent client: closed at the head timeout.
    for first in [&b"GET /graph.json HT"[..], &b""[..]] {
        let mut s = connect(web);
        s.write_all(first).unwrap();
        let asked = Instant::now();
        let reply = read_until_closed(&mut s);
        let waited = asked.elapsed();
        assert!(reply.is_empty(), "no reply to half a request");
        assert!(
            waited >= head_timeout - Duration::from_millis(50),
            "{waited:?}"
        );
        round_trip(&mut echo, b"after a slow request");
    }

    // A flood with no end of line: the head stops at 8 KiB, the
    // connection closes, and memory does not follow the flood.
    let before = Proc::me().rss_bytes();
    let mut s = connect(web);
    let flood = vec![b'A'; 64 * 1024];
    let mut sent = 0usize;
    let closed = loop {
        match s.write(&flood) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break true,
        }
        if sent > 256 << 20 {
            break false;
        }
    };
    let _ = read_until_closed(&mut s);
    assert!(closed, "the server read a 256 MiB head without closing");
    let grown = Proc::me().rss_bytes().saturating_sub(before);
    assert!(grown < 16 << 20, "grew {grown} bytes for a flood of {sent}");
    round_trip(&mut echo, b"after a flood");

    // And introspection still answers.
    let g = graph(web);
    assert_eq!(count(&g, "Csa"), 1);
    let handlers: HashSet<_> = g["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["id"].as_str())
        .collect();
    assert!(handlers.contains("Echo"));
}

#[test]
fn the_topology_stream_tells_of_a_new_connection() {
    let sys = start(Options::default());
    let mut s = connect(sys.seen.local_addr());
    s.write_all(b"GET /topology HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut got = String::new();
    let mut buf = [0u8; 8192];
    let mut read_until = |s: &mut TcpStream, needle: &str, got: &mut String| {
        while !got.contains(needle) {
            let n = s.read(&mut buf).expect("the stream, within the deadline");
            assert!(n > 0, "the stream ended: {got}");
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    };
    read_until(&mut s, "randompos component\n", &mut got);
    assert!(got.contains("\r\n\r\nDEL ALL\n"), "{got}");
    assert!(!got.contains("\"Echo\" randompos component"));
    let mut echo = connect(sys.echo);
    round_trip(&mut echo, b"hello");
    read_until(&mut s, "\"Echo\" randompos component", &mut got);
    let echo_id = got
        .lines()
        .find(|l| l.ends_with("\"Echo\" randompos component"))
        .and_then(|l| l.split('"').nth(1))
        .expect("the handler's id")
        .to_owned();
    drop(echo);
    read_until(&mut s, &format!("DEL NODE \"{echo_id}\""), &mut got);
}

#[test]
fn stopping_the_introspection_leaves_the_served_system_alone() {
    let mut sys = start(Options::default());
    let web = sys.seen.local_addr();
    assert_eq!(get(web, "/graph.json").0, 200);
    sys.seen.stop();
    wait_until("the introspection server to stop", || {
        sys.seen.introspector().is_done()
    });
    wait_until("its port to close", || TcpStream::connect(web).is_err());
    let mut echo = connect(sys.echo);
    round_trip(&mut echo, b"still here");
    if let Some(r) = sys.running.take() {
        r.stop();
    }
}

/// Kamaelia's `Pipeline(Introspector(), ...)`: while its `outbox` is
/// linked, the Introspector sends `DEL ALL` and the topology, then the
/// changes once a second (its own components left out).
#[test]
fn the_introspector_outbox_feeds_kamaelias_topology_text() {
    use axon::{Endpoint, Scheduler, Standard};
    let scheduler = Scheduler::new();
    let intro = axon::Handle::new(introspect::Introspector::new());
    let watcher = Endpoint::<Standard<Vec<u8>, ()>>::new("watcher");
    axon::link((&intro, "outbox"), (watcher.handle(), "inbox")).unwrap();
    scheduler.activate(&intro).unwrap();
    let first = scheduler.activate(examples::Echo::new()).unwrap();
    let running = Running::start(scheduler);
    let text = |what: &str| {
        let bytes = watcher
            .inbox
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|| panic!("no topology text ({what}) within {DEADLINE:?}"));
        String::from_utf8(bytes).unwrap()
    };
    let all = text("the first");
    assert!(all.starts_with("DEL ALL\n"), "{all}");
    let node = |id: u64| format!("ADD NODE \"{id}\" \"Echo\" randompos component");
    assert!(all.contains(&node(first.id())), "{all}");
    assert!(!all.contains("Introspector"), "its own left out: {all}");
    let second = running.handle.activate(examples::Echo::new()).unwrap();
    let changes = text("the changes");
    assert!(!changes.contains("DEL ALL"), "{changes}");
    assert!(changes.contains(&node(second.id())), "{changes}");
    assert!(
        !changes.contains(&node(first.id())),
        "only what changed: {changes}"
    );
    running.stop();
}
