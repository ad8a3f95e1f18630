//! The upper-casing line server and its client (`upper-server`,
//! `upper-client`), as a user runs them: real processes, real sockets on
//! 127.0.0.1.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use testkit::{Listening, DEADLINE};

/// `upper-server 127.0.0.1:0`.
struct Server(Listening);

impl Server {
    fn start() -> Server {
        Server(Listening::start(
            Command::new(env!("CARGO_BIN_EXE_upper-server")).arg("127.0.0.1:0"),
        ))
    }

    fn connect(&self) -> TcpStream {
        testkit::connect(self.0.addr)
    }

    /// SIGTERM, and its exit status (within the deadline).
    fn stop(self) -> std::process::ExitStatus {
        self.0.stop()
    }
}

fn lines(n: usize) -> (Vec<u8>, Vec<u8>) {
    let mut sent = Vec::new();
    for i in 0..n {
        sent.extend_from_slice(format!("line {i} of the test, lower case\n").as_bytes());
    }
    let expected = sent.to_ascii_uppercase();
    (sent, expected)
}

#[test]
fn upper_server_answers_every_line_of_a_slow_reader() {
    let server = Server::start();
    let mut client = server.connect();
    let (sent, expected) = lines(500_000); // about 17 MB each way
    let writer = {
        let mut w = client.try_clone().unwrap();
        std::thread::spawn(move || w.write_all(&sent).unwrap())
    };
    let mut got = vec![0u8; expected.len()];
    let mut at = 0;
    while at < got.len() {
        let n = client
            .read(&mut got[at..(at + 32 * 1024).min(expected.len())])
            .unwrap();
        assert!(n > 0, "EOF after {at} bytes");
        at += n;
        std::thread::sleep(Duration::from_millis(1)); // a slow reader
    }
    writer.join().unwrap();
    assert!(got == expected, "lines lost, changed or reordered");
    drop(client);
    assert!(server.stop().success());
}

#[test]
fn upper_server_replies_in_full_to_a_half_close_then_closes() {
    let server = Server::start();
    let mut client = server.connect();
    let (mut sent, mut expected) = lines(20_000);
    sent.extend_from_slice(b"and a last line with no newline");
    expected.extend_from_slice(b"AND A LAST LINE WITH NO NEWLINE\n");
    let writer = {
        let mut w = client.try_clone().unwrap();
        std::thread::spawn(move || {
            w.write_all(&sent).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        })
    };
    let mut got = Vec::new();
    client.read_to_end(&mut got).expect("the reply, then EOF");
    writer.join().unwrap();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "reply lost or changed");
    assert!(server.stop().success());
}

#[test]
fn upper_client_prints_the_reply_to_each_line_and_ends() {
    let server = Server::start();
    let mut client = Command::new(env!("CARGO_BIN_EXE_upper-client"))
        .arg(server.0.addr.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start upper-client");
    client
        .stdin
        .take()
        .unwrap()
        .write_all(b"hello\nworld\nno newline")
        .unwrap(); // dropped: EOF
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(client.wait_with_output());
    });
    let out = rx
        .recv_timeout(DEADLINE)
        .expect("upper-client did not end after its input did")
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "HELLO\nWORLD\nNO NEWLINE\n"
    );
    assert!(server.stop().success());
}

/// A bug found by CI: the example servers printed their address before
/// `run` watched SIGTERM, so a signal sent as soon as the line was read
/// could kill the server by the signal's default action (exit status not
/// 0). `ServerCore::run_with` announces only once the signals are
/// watched. Each round stops the server the moment its line is read,
/// while two threads keep both cores busy (bounded: they stop with the
/// test) so the server is likely to be preempted inside the window the
/// bug had.
#[test]
fn a_server_stopped_the_moment_it_printed_its_address_died_by_the_signal() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let stop = Arc::new(AtomicBool::new(false));
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let start = std::time::Instant::now();
                while !stop.load(Ordering::Relaxed) && start.elapsed() < DEADLINE {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    let mut failed = None;
    for round in 0..40 {
        let status = Server::start().stop();
        if !status.success() {
            failed = Some((round, status));
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for s in spinners {
        s.join().unwrap();
    }
    assert_eq!(failed, None, "a server died by SIGTERM");
}
