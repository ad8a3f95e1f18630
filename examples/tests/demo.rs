//! End-to-end tests of the `selector-demo` binary.
//!
//! Each test runs the real executable (`CARGO_BIN_EXE_selector-demo`) as a
//! child process on loopback with `--port 0`, reads the real port from the
//! first stdout line, and talks to it over TCP with only `std`. Together they
//! prove the demo's command line (help; usage errors being one line, a
//! pointer to `--help` and exit code 2; `--port=N`; `--host localhost`; a
//! warning when listening beyond loopback; the `listening on HOST:PORT`
//! line; a port in use being a clear error, T2), the
//! echo protocol (byte-exact under many concurrent clients, and half-close
//! getting the whole reply then EOF, C7), the chat protocol (each line goes
//! to every other client and not back to its sender), and graceful shutdown
//! on SIGTERM (exit code 0, clients see EOF).
//!
//! Nothing here sleeps to synchronise: every wait is a read or a channel
//! receive with a deadline, every loop is bounded in count and time, and a
//! guard kills the child process even when a test fails. The harness that
//! spawns and guards the child is in `common/mod.rs`, shared with
//! `robustness.rs` and `stress.rs`.

mod common;

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::thread;
use std::time::Instant;

use common::{await_joined, byte_at, connect, run_to_exit, ChatPeer, Demo, DEADLINE};

// ---------------------------------------------------------------- command line

#[test]
fn demo_help_explains_every_option() {
    for flag in ["--help", "-h"] {
        let out = run_to_exit(&[flag]);
        assert!(
            out.status.success(),
            "{flag}: exit {:?}; stderr: {}",
            out.status,
            out.stderr
        );
        for word in ["--host", "--port", "--protocol", "echo", "chat"] {
            assert!(
                out.stdout.contains(word),
                "{flag}: help does not mention {word:?}:\n{}",
                out.stdout
            );
        }
    }
}

/// The second line of every usage error.
const HINT: &str = "Try 'selector-demo --help' for more information.";

/// Command lines the parser itself refuses, and a word the error must
/// mention.
const USAGE_ERRORS: &[(&[&str], &str)] = &[
    (&["--frobnicate"], "--frobnicate"),
    (&["--port", "not-a-port"], "--port"),
    (&["--port=not-a-port"], "--port"),
    (&["--port", "70000"], "--port"),
    (&["--port"], "--port"),
    (&["--protocol", "telnet", "--port", "0"], "telnet"),
    (&["--port", "0", "stray"], "stray"),
];

#[test]
fn demo_rejects_bad_arguments() {
    // Usage errors: exit 2, the error on stderr and a pointer to --help.
    for (args, mentions) in USAGE_ERRORS {
        let out = run_to_exit(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: a usage error should exit 2, got {:?}; stdout: {}; stderr: {}",
            out.status,
            out.stdout,
            out.stderr
        );
        assert!(
            out.stderr.contains("selector-demo") && out.stderr.contains(mentions),
            "{args:?}: stderr does not explain the error (expected {mentions:?}):\n{}",
            out.stderr
        );
        assert!(
            out.stderr.contains(HINT),
            "{args:?}: stderr does not point to --help:\n{}",
            out.stderr
        );
        assert!(
            !out.stdout.contains("listening on"),
            "{args:?}: started listening anyway: {}",
            out.stdout
        );
    }
    // A host that is neither an address nor a name that resolves (`.invalid`
    // never resolves, RFC 6761) fails when the demo starts, naming --host.
    let args = ["--host", "not-an-ip.invalid", "--port", "0"];
    let out = run_to_exit(&args);
    assert!(
        !out.status.success(),
        "{args:?} was accepted: exit {:?}; stdout: {}",
        out.status,
        out.stdout
    );
    assert!(
        out.stderr.contains("selector-demo") && out.stderr.contains("--host"),
        "{args:?}: stderr does not explain the error (expected \"--host\"):\n{}",
        out.stderr
    );
    assert!(
        !out.stdout.contains("listening on"),
        "{args:?}: started listening anyway: {}",
        out.stdout
    );
}

#[test]
fn demo_usage_error_is_two_lines_without_the_help() {
    let help = run_to_exit(&["--help"]).stdout;
    assert!(help.contains("USAGE"), "--help printed no help: {help:?}");
    for (args, mentions) in USAGE_ERRORS {
        let out = run_to_exit(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {:?}", out.status);
        assert_eq!(out.stdout, "", "{args:?}: a usage error printed to stdout");
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            2,
            "{args:?}: expected the error and the hint, got:\n{}",
            out.stderr
        );
        assert!(
            lines[0].starts_with("selector-demo: ") && lines[0].contains(mentions),
            "{args:?}: first line {:?} is not `selector-demo: <error about {mentions}>`",
            lines[0]
        );
        assert_eq!(lines[1], HINT, "{args:?}: second line");
        // None of the help's text: it is one --help away.
        for line in help.lines().map(str::trim).filter(|l| l.len() > 12) {
            assert!(
                !out.stderr.contains(line),
                "{args:?}: stderr repeats the help line {line:?}:\n{}",
                out.stderr
            );
        }
    }
}

#[test]
fn demo_first_line_is_listening_on_host_port() {
    for protocol in ["echo", "chat"] {
        let demo = Demo::start(&["--protocol", protocol]);
        assert_ne!(demo.addr.port(), 0, "{protocol}: reported port 0");
        assert_eq!(
            demo.first_line,
            format!("listening on 127.0.0.1:{}", demo.addr.port())
        );
        // And the port is real: something accepts there.
        let mut s = demo.connect();
        if protocol == "echo" {
            s.write_all(b"x").unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b).unwrap();
            assert_eq!(&b, b"x");
        }
    }
}

/// One byte through the echo server at `addr`.
fn echo_one_byte(addr: SocketAddr) {
    let mut s = connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    s.write_all(b"x").unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b)
        .unwrap_or_else(|e| panic!("echo from {addr}: {e}"));
    assert_eq!(&b, b"x");
}

/// Stops the demo with SIGTERM and returns everything it wrote to stderr
/// (the pipe ends when it exits); panics unless it exits 0.
fn stop_and_collect_stderr(demo: &mut Demo) -> String {
    demo.sigterm();
    let status = demo.wait_exit(DEADLINE).unwrap_or_else(|| {
        panic!(
            "demo did not exit within {DEADLINE:?}; stderr: {}",
            demo.stderr.text()
        )
    });
    assert_eq!(status.code(), Some(0), "exit after SIGTERM: {status:?}");
    demo.stderr.wait_until(DEADLINE, |_| false)
}

#[test]
fn demo_accepts_option_equals_value() {
    let demo = Demo::start_exactly(&["--host", "127.0.0.1", "--port=0"], &[]);
    assert_ne!(demo.addr.port(), 0, "--port=0: reported port 0");
    assert_eq!(
        demo.first_line,
        format!("listening on 127.0.0.1:{}", demo.addr.port())
    );
    echo_one_byte(demo.addr);
}

#[test]
fn demo_host_localhost_listens_on_loopback_without_a_warning() {
    let mut demo = Demo::start_exactly(
        &["--host", "localhost", "--port", "0"],
        &[("RUST_LOG", "warn")],
    );
    assert_ne!(demo.addr.port(), 0, "--host localhost: reported port 0");
    assert_eq!(
        demo.first_line,
        format!("listening on 127.0.0.1:{}", demo.addr.port()),
        "localhost should resolve to IPv4 loopback first"
    );
    echo_one_byte(demo.addr);
    let stderr = stop_and_collect_stderr(&mut demo);
    assert!(
        !stderr.contains("reachable from other machines"),
        "loopback needs no warning, got:\n{stderr}"
    );
}

#[test]
fn demo_unspecified_host_warns_it_is_reachable_from_other_machines() {
    // Port 0 only, and we connect only over loopback.
    let mut demo = Demo::start_exactly(
        &["--host", "0.0.0.0", "--port", "0"],
        &[("RUST_LOG", "warn")],
    );
    let port = demo.addr.port();
    assert_ne!(port, 0, "reported port 0");
    assert_eq!(demo.first_line, format!("listening on 0.0.0.0:{port}"));
    // The warning is logged before the `listening on` line is printed;
    // wait for the pipe to deliver it.
    let phrase = "reachable from other machines";
    assert!(
        demo.stderr.wait_for(phrase),
        "no warning within {DEADLINE:?}; stderr:\n{}",
        demo.stderr.text()
    );
    let stderr = demo.stderr.text();
    let line = stderr.lines().find(|l| l.contains(phrase)).unwrap();
    assert!(
        line.contains("WARN") && line.contains("0.0.0.0"),
        "not a warning naming the address: {line:?}"
    );
    echo_one_byte(SocketAddr::from(([127, 0, 0, 1], port)));
    stop_and_collect_stderr(&mut demo);
}

#[test]
fn demo_port_in_use_is_a_clear_error() {
    // Rule T2: binding a port that is taken fails at once, saying which.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = run_to_exit(&["--host", "127.0.0.1", "--port", &port.to_string()]);
    assert!(
        !out.status.success(),
        "port {port} in use but the demo exited {:?}; stdout: {}",
        out.status,
        out.stdout
    );
    assert!(
        !out.stdout.contains("listening on"),
        "claims to listen on a taken port: {}",
        out.stdout
    );
    let addr = format!("127.0.0.1:{port}");
    assert!(
        out.stderr.contains(&addr),
        "stderr does not name {addr}:\n{}",
        out.stderr
    );
    drop(taken);
}

// ------------------------------------------------------------------------ echo

/// A per-client, per-offset byte pattern that differs between clients.
fn pattern(client: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| byte_at(client, i)).collect()
}

#[test]
fn demo_echo_serves_many_concurrent_clients_byte_exact() {
    const CLIENTS: usize = 50;
    const BYTES: usize = 100 * 1024;
    let demo = Demo::start(&["--protocol", "echo"]);
    let addr = demo.addr;
    let workers: Vec<_> = (0..CLIENTS)
        .map(|client| {
            thread::spawn(move || -> Result<(), String> {
                let mut s = connect(addr).map_err(|e| format!("connect: {e}"))?;
                let data = pattern(client, BYTES);
                let start = Instant::now();
                let mut sent = 0;
                let mut piece = 0;
                // Pieces of varying size; each piece is read back before the
                // next is sent, so neither side's buffers can deadlock.
                while sent < BYTES {
                    if start.elapsed() > DEADLINE * 3 {
                        return Err(format!("client {client}: too slow, {sent} bytes done"));
                    }
                    let len = (1 + (piece * 977 + client * 131) % 8192).min(BYTES - sent);
                    s.write_all(&data[sent..sent + len])
                        .map_err(|e| format!("client {client}: write at {sent}: {e}"))?;
                    let mut back = vec![0u8; len];
                    s.read_exact(&mut back)
                        .map_err(|e| format!("client {client}: read at {sent}: {e}"))?;
                    if back != data[sent..sent + len] {
                        let i = back
                            .iter()
                            .zip(&data[sent..])
                            .position(|(a, b)| a != b)
                            .unwrap();
                        return Err(format!(
                            "client {client}: byte {} echoed as {} instead of {}",
                            sent + i,
                            back[i],
                            data[sent + i]
                        ));
                    }
                    sent += len;
                    piece += 1;
                }
                // Nothing extra comes back.
                s.shutdown(Shutdown::Write)
                    .map_err(|e| format!("client {client}: shutdown: {e}"))?;
                let mut rest = Vec::new();
                s.read_to_end(&mut rest)
                    .map_err(|e| format!("client {client}: waiting for EOF: {e}"))?;
                if !rest.is_empty() {
                    return Err(format!(
                        "client {client}: {} unexpected extra bytes",
                        rest.len()
                    ));
                }
                Ok(())
            })
        })
        .collect();
    let errors: Vec<String> = workers
        .into_iter()
        .filter_map(|w| match w.join() {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some("a client thread panicked".into()),
        })
        .collect();
    assert!(
        errors.is_empty(),
        "{} of {CLIENTS} clients failed: {errors:#?}\nstderr: {}",
        errors.len(),
        demo.stderr.text()
    );
}

#[test]
fn demo_echo_half_close_gets_full_reply_then_eof() {
    // Rule C7: after the client shuts down its write side, the whole reply
    // still arrives, then EOF.
    const BYTES: usize = 1024 * 1024;
    let demo = Demo::start(&["--protocol", "echo"]);
    let s = demo.connect();
    let data = pattern(3, BYTES);
    let mut writer = s.try_clone().unwrap();
    let to_send = data.clone();
    // Write on another thread while this one reads, so a full socket buffer
    // on either side cannot deadlock the test.
    let sender = thread::spawn(move || -> io::Result<()> {
        for piece in to_send.chunks(64 * 1024) {
            writer.write_all(piece)?;
        }
        writer.shutdown(Shutdown::Write)
    });
    let mut reader = s;
    let mut back = Vec::with_capacity(BYTES);
    let start = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        assert!(
            start.elapsed() < DEADLINE * 3,
            "only {} of {BYTES} bytes echoed before the deadline",
            back.len()
        );
        assert!(back.len() <= BYTES, "more bytes echoed than sent");
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => back.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!(
                "read after {} of {BYTES} bytes (no EOF in time?): {e}; stderr: {}",
                back.len(),
                demo.stderr.text()
            ),
        }
    }
    sender
        .join()
        .expect("sender thread")
        .expect("sending 1 MiB then shutdown(Write)");
    assert_eq!(back.len(), BYTES, "EOF before the whole reply");
    if let Some(i) = back.iter().zip(&data).position(|(a, b)| a != b) {
        panic!("byte {i} echoed as {} instead of {}", back[i], data[i]);
    }
}

// ------------------------------------------------------------------------ chat

#[test]
fn demo_chat_sends_each_line_to_the_others() {
    let demo = Demo::start(&["--protocol", "chat"]);
    let mut a = ChatPeer::new("a", demo.connect());
    let mut b = ChatPeer::new("b", demo.connect());
    let mut c = ChatPeer::new("c", demo.connect());
    // b and c receive (from a); a receives (from b): all three have joined.
    await_joined(&mut a, &mut [&mut b, &mut c]);
    await_joined(&mut b, &mut [&mut a]);

    // A line from a, written in two pieces, reaches b and c whole.
    a.send("hello from ");
    a.send("a\n");
    assert_eq!(b.next_message(), "hello from a\n");
    assert_eq!(c.next_message(), "hello from a\n");

    // b answers only after it has a's line, so if a's line had been sent
    // back to a it would come before this one.
    b.send("reply from b\n");
    assert_eq!(
        a.next_message(),
        "reply from b\n",
        "the sender got its own line back"
    );
    assert_eq!(c.next_message(), "reply from b\n");

    // Same from c, with two lines in one write.
    c.send("one from c\ntwo from c\n");
    for peer in [&mut a, &mut b] {
        assert_eq!(peer.next_message(), "one from c\n", "{}", peer.name);
        assert_eq!(peer.next_message(), "two from c\n", "{}", peer.name);
    }
    a.send("last from a\n");
    assert_eq!(b.next_message(), "last from a\n");
    assert_eq!(
        c.next_message(),
        "last from a\n",
        "c got its own lines back"
    );
    // An incomplete line is not sent on.
    b.send("no newline yet");
    a.send("after the partial\n");
    assert_eq!(c.next_message(), "after the partial\n");
}

// -------------------------------------------------------------------- shutdown

#[test]
fn demo_sigterm_exits_zero() {
    let mut demo = Demo::start(&["--protocol", "echo"]);
    let mut client = demo.connect();
    // Make sure the connection is being served before the signal.
    client.write_all(b"ping").unwrap();
    let mut back = [0u8; 4];
    client.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"ping");

    demo.sigterm();

    let status = demo.wait_exit(DEADLINE).unwrap_or_else(|| {
        panic!(
            "demo did not exit within {DEADLINE:?}; stderr: {}",
            demo.stderr.text()
        )
    });
    assert_eq!(
        status.code(),
        Some(0),
        "exit after SIGTERM: {status:?}; stderr: {}",
        demo.stderr.text()
    );
    // The client's connection was closed cleanly: EOF, not a reset or a
    // hang.
    let mut rest = Vec::new();
    match client.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "unexpected bytes after SIGTERM: {rest:?}"),
        Err(e) => panic!("client did not see EOF after SIGTERM: {e}"),
    }
}
