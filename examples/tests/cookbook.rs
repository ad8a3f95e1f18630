//! Kamaelia's small cookbook servers (`motd-server`, `fortune-server`,
//! `stop-after-first-client`), as a user runs them: real processes, real
//! sockets on 127.0.0.1.

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::process::{Command, ExitStatus};

use testkit::{read_to_eof, Listening};

/// The default message of `motd-server`.
const MOTD: &[u8] = b"Welcome to Kamaelia, in Rust. Have a nice day.\n";

/// The fortunes of `fortune-server`, in the order it hands them out.
const FORTUNES: [&[u8]; 3] = [
    b"You will write a component that does one thing well.\n",
    b"A bounded inbox is a happy inbox.\n",
    b"Those who pause when the box is full are never lost.\n",
];

/// The reply of `stop-after-first-client`.
const ONCE: &[u8] = b"You are the first and last client. Goodbye.\n";

/// A binary started on 127.0.0.1:0.
struct Server(Listening);

impl Server {
    fn start(bin: &str, extra: &[&str]) -> Server {
        Server(Listening::start(
            Command::new(bin).arg("127.0.0.1:0").args(extra),
        ))
    }

    fn connect(&self) -> TcpStream {
        testkit::connect(self.0.addr)
    }

    /// What one client gets before the server closes the connection.
    fn one_reply(&self) -> Vec<u8> {
        read_to_eof(&mut self.connect())
    }

    /// Its exit status, once it exits by itself (within the deadline).
    fn exit(&mut self) -> ExitStatus {
        self.0.exit()
    }

    /// SIGTERM, and its exit status (within the deadline).
    fn stop(self) -> ExitStatus {
        self.0.stop()
    }
}

#[test]
fn motd_server_sends_its_built_in_message_to_each_client_then_closes() {
    let server = Server::start(env!("CARGO_BIN_EXE_motd-server"), &[]);
    for _ in 0..3 {
        assert_eq!(server.one_reply(), MOTD);
    }
    assert!(server.stop().success());
}

#[test]
fn motd_server_sends_the_file_given_with_file() {
    let path = std::env::temp_dir().join(format!("motd-{}.txt", std::process::id()));
    let motd = b"Today: the Selector is idle.\nTomorrow: 10,000 clients.\n";
    std::fs::write(&path, motd).unwrap();
    let server = Server::start(
        env!("CARGO_BIN_EXE_motd-server"),
        &["--file", path.to_str().unwrap()],
    );
    std::fs::remove_file(&path).unwrap(); // read once, at start
    assert_eq!(server.one_reply(), motd);
    // A client that talks and half-closes still gets the message, then EOF.
    let mut c = server.connect();
    c.write_all(b"hello?\n").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_eof(&mut c), motd);
    assert!(server.stop().success());
}

#[test]
fn motd_server_refuses_a_file_it_cannot_read() {
    let out = Command::new(env!("CARGO_BIN_EXE_motd-server"))
        .args(["127.0.0.1:0", "--file", "/nonexistent/motd"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "it listened anyway");
}

#[test]
fn fortune_server_hands_out_its_fortunes_in_turn() {
    let server = Server::start(env!("CARGO_BIN_EXE_fortune-server"), &[]);
    for fortune in FORTUNES.iter().chain(&FORTUNES[..1]) {
        assert_eq!(server.one_reply(), *fortune);
    }
    assert!(server.stop().success());
}

#[test]
fn stop_after_first_client_answers_it_then_exits_0_by_itself() {
    let mut server = Server::start(env!("CARGO_BIN_EXE_stop-after-first-client"), &[]);
    assert_eq!(server.one_reply(), ONCE);
    assert!(server.exit().success());
    assert!(
        TcpStream::connect(server.0.addr).is_err(),
        "still listening after it exited"
    );
}

#[test]
fn stop_after_first_client_stops_on_sigterm_before_any_client() {
    let server = Server::start(env!("CARGO_BIN_EXE_stop-after-first-client"), &[]);
    assert!(server.stop().success());
}
