//! `selector-demo --introspect HOST:PORT` against the real binary: its
//! second stdout line, graph.json with 3 clients connected and after they
//! close, a warning off loopback, usage errors, and a prompt SIGTERM.
//! No sleeps: reads with deadlines, and `testkit::wait_until` for a count
//! in a later snapshot.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::Child;
use std::time::{Duration, Instant};

use common::{demo_command, run_to_exit, DEADLINE};
use serde_json::Value;
use testkit::{drain, pattern, read_to_eof, round_trip, wait_until, wait_with_deadline, Drained};

/// The demo with `--introspect`, once it has printed both lines.
struct Introspected {
    child: Child,
    echo: SocketAddr,
    web: SocketAddr,
    lines: Vec<String>,
    stderr: Drained,
    _stdout: Drained,
}

impl Drop for Introspected {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(args: &[&str]) -> Introspected {
    let mut child = demo_command()
        .args(args)
        .spawn()
        .expect("spawn selector-demo");
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let text = stdout.wait_until(DEADLINE, |t| t.lines().count() >= 2 && t.ends_with('\n'));
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let parse = |line: Option<&String>, prefix: &str, suffix: &str| {
        line.and_then(|l| l.strip_prefix(prefix))
            .and_then(|a| a.strip_suffix(suffix))
            .and_then(|a| a.parse::<SocketAddr>().ok())
    };
    let (Some(echo), Some(web)) = (
        parse(lines.first(), "listening on ", ""),
        parse(lines.get(1), "introspection on http://", "/"),
    ) else {
        let _ = child.kill();
        panic!("stdout {lines:?}; stderr: {}", stderr.text());
    };
    Introspected {
        child,
        echo,
        web,
        lines,
        stderr,
        _stdout: stdout,
    }
}

fn graph(web: SocketAddr) -> Value {
    let mut s = testkit::connect(web);
    s.write_all(b"GET /graph.json HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let reply = String::from_utf8(read_to_eof(&mut s)).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").expect("head and body");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    serde_json::from_str(body).expect("graph.json is JSON")
}

fn count(g: &Value, id: &str) -> u64 {
    g["kinds"]
        .as_array()
        .and_then(|k| k.iter().find(|k| k["id"] == id))
        .map_or(0, |k| k["count"].as_u64().unwrap())
}

#[test]
fn introspect_is_the_second_line_and_shows_three_connections_then_none() {
    let mut demo = start(&["--port", "0", "--introspect", "127.0.0.1:0"]);
    assert_eq!(demo.lines.len(), 2, "{:?}", demo.lines);
    let mut clients: Vec<TcpStream> = (0..3).map(|_| testkit::connect(demo.echo)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        round_trip(c, &pattern(i as u64, 64));
    }
    let g = graph(demo.web);
    assert_eq!(count(&g, "Csa"), 3, "{g}");
    assert_eq!(count(&g, "Echo"), 3, "{g}");
    assert!(count(&g, "HttpHandler@introspect") >= 1, "own, tagged: {g}");
    drop(clients);
    wait_until("the closed connections to leave the graph", || {
        let g = graph(demo.web);
        count(&g, "Csa") == 0 && count(&g, "Echo") == 0
    });
    // SIGTERM stops both servers and the process, promptly (the
    // introspection server follows the served one).
    let asked = Instant::now();
    testkit::sigterm(demo.child.id());
    let status = wait_with_deadline(&mut demo.child, DEADLINE).expect("exit after SIGTERM");
    assert_eq!(status.code(), Some(0), "stderr: {}", demo.stderr.text());
    assert!(
        asked.elapsed() < Duration::from_secs(4),
        "took {:?}",
        asked.elapsed()
    );
}

#[test]
fn introspect_with_chat_stops_the_backplane_too() {
    let mut demo = start(&[
        "--port",
        "0",
        "--protocol",
        "chat",
        "--introspect",
        "127.0.0.1:0",
    ]);
    let g = graph(demo.web);
    assert_eq!(count(&g, "Backplane"), 1, "{g}");
    testkit::sigterm(demo.child.id());
    let status = wait_with_deadline(&mut demo.child, DEADLINE).expect("exit after SIGTERM");
    assert_eq!(status.code(), Some(0), "stderr: {}", demo.stderr.text());
}

#[test]
fn introspect_off_loopback_warns() {
    let demo = start(&["--port", "0", "--introspect", "0.0.0.0:0"]);
    let err = demo
        .stderr
        .wait_until(DEADLINE, |t| t.contains("introspection on"));
    assert!(
        err.contains("every interface, reachable from other machines"),
        "{err}"
    );
}

#[test]
fn introspect_usage_errors() {
    for bad in ["nonsense", "127.0.0.1", "127.0.0.1:99999", ":80"] {
        let out = run_to_exit(&["--port", "0", "--introspect", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", out.stderr);
        assert!(out.stderr.contains("--introspect"), "{bad}: {}", out.stderr);
        assert_eq!(out.stdout, "");
    }
    // A port in use is an error naming the address, before anything listens.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let at = taken.local_addr().unwrap().to_string();
    let out = run_to_exit(&["--port", "0", "--introspect", &at]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains(&at), "{}", out.stderr);
    assert!(!out.stdout.contains("listening on"), "{}", out.stdout);
}

/// The one real-browser test: Debian's chromium, headless, loads the page
/// with 3 clients connected and its DOM shows the CSA kind with count 3.
/// Skips (passing, with a message) where `/usr/bin/chromium` is absent;
/// `.ci/run` installs it. With `KAMAELIA_SCREENSHOT=PATH` it also saves a
/// screenshot of the page there (the README's).
#[test]
fn introspect_page_in_a_real_browser_shows_three_csas() {
    let chromium = std::path::Path::new("/usr/bin/chromium");
    if !chromium.exists() {
        eprintln!("skipped: /usr/bin/chromium is absent (apt-get install chromium to run it)");
        return;
    }
    let demo = start(&["--port", "0", "--introspect", "127.0.0.1:0"]);
    let mut clients: Vec<TcpStream> = (0..3).map(|_| testkit::connect(demo.echo)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        round_trip(c, &pattern(i as u64, 64));
    }
    let url = format!("http://{}/", demo.web);
    let profile = std::env::temp_dir().join(format!("kamaelia-chromium-{}", std::process::id()));
    let browser = |extra: &[&str]| {
        let mut cmd = std::process::Command::new(chromium);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--virtual-time-budget=2000", "--window-size=1200,900"])
        .args(extra)
        .arg(&url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("start chromium");
        let out = drain(child.stdout.take().expect("stdout"));
        let err = drain(child.stderr.take().expect("stderr"));
        let status = wait_with_deadline(&mut child, Duration::from_secs(90));
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert!(
            status.is_some_and(|s| s.success()),
            "chromium: {status:?}: {}",
            err.finish()
        );
        out.finish()
    };
    let dom = browser(&["--dump-dom"]);
    assert!(
        dom.contains("<td id=\"count-Csa\">3</td>"),
        "the page: {dom}"
    );
    assert!(
        dom.contains("<td id=\"count-Echo\">3</td>"),
        "the page: {dom}"
    );
    if let Ok(path) = std::env::var("KAMAELIA_SCREENSHOT") {
        browser(&[&format!("--screenshot={path}")]);
    }
    let _ = std::fs::remove_dir_all(&profile);
}
