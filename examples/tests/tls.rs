//! End-to-end tests of `selector-demo --tls-cert PATH --tls-key PATH`
//! against the real binary: echo and chat over TLS with blocking rustls
//! clients trusting an rcgen CA, and the command-line errors (one of the
//! pair alone is a usage error, exit 2; a missing or invalid file is a
//! one-line error naming it, exit 1).
//!
//! Nothing here sleeps to synchronise: every wait is a read with a
//! deadline ([`DEADLINE`]), and a guard kills the child even when a test
//! fails.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{await_joined, connect, run_to_exit, ChatPeer, Demo, TimedStream, DEADLINE};
use tls::rustls::pki_types::{CertificateDer, ServerName};
use tls::rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// A CA and a `localhost` certificate signed by it, written as PEM files
/// to a directory of this process and test (removed on drop).
struct Pki {
    dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    ca: CertificateDer<'static>,
}

impl Pki {
    fn new(test: &str) -> Pki {
        let dir =
            std::env::temp_dir().join(format!("kamaelia-tls-demo-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        let pki = Pki {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            dir,
            ca: ca.der().clone(),
        };
        std::fs::write(&pki.cert, leaf.pem()).unwrap();
        std::fs::write(&pki.key, key.serialize_pem()).unwrap();
        pki
    }

    fn args(&self) -> Vec<&str> {
        vec![
            "--tls-cert",
            self.cert.to_str().unwrap(),
            "--tls-key",
            self.key.to_str().unwrap(),
        ]
    }

    /// A client config trusting this CA.
    fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        tls::client_config(roots).unwrap()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

type Client = StreamOwned<ClientConnection, TcpStream>;

/// A blocking rustls client of `addr` for `localhost`, with deadlines.
fn client(addr: SocketAddr, config: Arc<ClientConfig>) -> Client {
    let sock = connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    sock.set_read_timeout(Some(DEADLINE)).unwrap();
    sock.set_write_timeout(Some(DEADLINE)).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    StreamOwned::new(ClientConnection::new(config, name).unwrap(), sock)
}

/// Starts the demo over TLS and checks its first line says so.
fn start_tls(pki: &Pki, extra: &[&str]) -> Demo {
    let mut args = pki.args();
    args.extend_from_slice(extra);
    let demo = Demo::start(&args);
    assert_eq!(
        demo.first_line,
        format!("listening on {} (tls)", demo.addr),
        "the first line should mark TLS"
    );
    demo
}

#[test]
fn tls_echo_of_256_kib_is_byte_exact() {
    let pki = Pki::new("echo");
    let demo = start_tls(&pki, &["--protocol", "echo"]);
    let mut c = client(demo.addr, pki.client_config());
    let sent = testkit::pattern(3, 256 * 1024);
    // One rustls connection is not shared between threads: write and read
    // in turns, in pieces small enough that the echo never stalls.
    let mut got = Vec::with_capacity(sent.len());
    let mut buf = vec![0u8; 64 * 1024];
    for piece in sent.chunks(16 * 1024) {
        c.write_all(piece).unwrap();
        c.flush().unwrap();
        let want = got.len() + piece.len();
        while got.len() < want {
            let n = c.read(&mut buf).expect("read the echo");
            assert!(n > 0, "EOF after {} bytes", got.len());
            got.extend_from_slice(&buf[..n]);
        }
    }
    assert_eq!(got.len(), sent.len());
    assert!(got == sent, "the echo changed bytes");
    // close_notify: the server answers with its own and closes cleanly.
    c.conn.send_close_notify();
    c.flush().unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest)
        .expect("a clean close_notify from the server");
    assert!(rest.is_empty(), "{} bytes after the echo", rest.len());
}

impl TimedStream for Client {
    fn set_read_timeout(&self, t: Option<Duration>) -> std::io::Result<()> {
        self.sock.set_read_timeout(t)
    }
}

#[test]
fn tls_chat_members_exchange_lines() {
    let pki = Pki::new("chat");
    let demo = start_tls(&pki, &["--protocol", "chat"]);
    let mut a = ChatPeer::new("a", client(demo.addr, pki.client_config()));
    let mut b = ChatPeer::new("b", client(demo.addr, pki.client_config()));
    await_joined(&mut a, &mut [&mut b]);
    await_joined(&mut b, &mut [&mut a]);

    a.send("hello from ");
    a.send("a\n");
    assert_eq!(b.next_message(), "hello from a\n");
    // b answers only after it has a's line, so a's own line, had it been
    // sent back, would come first.
    b.send("reply from b\n");
    assert_eq!(
        a.next_message(),
        "reply from b\n",
        "the sender got its own line back"
    );
}

#[test]
fn tls_help_lists_the_options() {
    let out = run_to_exit(&["--help"]);
    assert!(out.status.success(), "{:?}", out.status);
    for word in ["--tls-cert", "--tls-key"] {
        assert!(
            out.stdout.contains(word),
            "help lacks {word}:\n{}",
            out.stdout
        );
    }
}

#[test]
fn tls_one_of_the_pair_alone_is_a_usage_error() {
    let pki = Pki::new("usage");
    let cert = pki.cert.to_str().unwrap();
    let key = pki.key.to_str().unwrap();
    for (args, needs) in [
        (["--port", "0", "--tls-cert", cert], "--tls-key"),
        (["--port", "0", "--tls-key", key], "--tls-cert"),
    ] {
        let out = run_to_exit(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: a usage error should exit 2; stderr: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "{args:?}: stdout {:?}", out.stdout);
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 2, "{args:?}: stderr {:?}", out.stderr);
        assert!(
            lines[0].starts_with("selector-demo: ") && lines[0].contains(needs),
            "{args:?}: {:?}",
            lines[0]
        );
        assert_eq!(lines[1], "Try 'selector-demo --help' for more information.");
    }
}

/// The demo's stderr lines that are not log lines (env_logger's start
/// with `[`).
fn error_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| !l.starts_with('[')).collect()
}

fn assert_file_error(args: &[&str], path: &Path) {
    let out = run_to_exit(args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?}: should exit 1; stderr: {}",
        out.stderr
    );
    assert!(
        !out.stdout.contains("listening on"),
        "{args:?}: it listened: {}",
        out.stdout
    );
    let lines = error_lines(&out.stderr);
    assert_eq!(lines.len(), 1, "{args:?}: stderr {:?}", out.stderr);
    assert!(
        lines[0].starts_with("selector-demo: ") && lines[0].contains(path.to_str().unwrap()),
        "{args:?}: the error should name {}: {:?}",
        path.display(),
        lines[0]
    );
}

#[test]
fn tls_a_missing_or_invalid_file_is_an_error_naming_it() {
    let pki = Pki::new("files");
    let missing = pki.dir.join("no-such-cert.pem");
    let key = pki.key.to_str().unwrap();
    assert_file_error(
        &[
            "--port",
            "0",
            "--tls-cert",
            missing.to_str().unwrap(),
            "--tls-key",
            key,
        ],
        &missing,
    );
    // A key file that holds no key.
    let garbage = pki.dir.join("garbage-key.pem");
    std::fs::write(&garbage, "not a key\n").unwrap();
    assert_file_error(
        &[
            "--port",
            "0",
            "--tls-cert",
            pki.cert.to_str().unwrap(),
            "--tls-key",
            garbage.to_str().unwrap(),
        ],
        &garbage,
    );
}
