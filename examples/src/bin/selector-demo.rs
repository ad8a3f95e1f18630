//! The selector demo: an echo or chat server on the Kamaelia-in-Rust stack.
//!
//! `selector-demo [--host 127.0.0.1] [--port 1601] [--protocol echo|chat]`
//!
//! Prints `listening on HOST:PORT` as its first line on stdout; logs go to
//! stderr (`RUST_LOG=debug` shows each connect and disconnect). SIGINT or
//! SIGTERM stops accepting, lets queued output drain (at most
//! `LINGER` seconds) and exits 0.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axon::{Boxes, Component, Control, Cx, Handle, Postbox, SchedulerHandle, Step};
use chassis::{ServerOptions, SimpleServer};
use examples::{ChatClient, ChatHub, Echo};

/// How long queued output may take to drain after SIGINT/SIGTERM.
const LINGER: Duration = Duration::from_secs(5);

const HELP: &str = "\
selector-demo: an echo or chat server on Kamaelia's Selector/TCPServer/CSA stack

USAGE:
    selector-demo [--host HOST] [--port PORT] [--protocol echo|chat]

OPTIONS:
    --host HOST          address to listen on (default 127.0.0.1, loopback only)
    --port PORT          port to listen on; 0 picks a free one (default 1601)
    --protocol NAME      echo: send every byte back to its sender (default)
                         chat: send every line to all the other clients
    -h, --help           print this help

The first line on stdout is `listening on HOST:PORT` with the real port.
Logs go to stderr; set RUST_LOG=debug to see connects and disconnects.
SIGINT or SIGTERM stops accepting, lets queued output drain (at most 5 s)
and exits 0.";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Protocol {
    Echo,
    Chat,
}

struct Options {
    host: IpAddr,
    port: u16,
    protocol: Protocol,
}

fn parse(args: &[String]) -> Result<Option<Options>, String> {
    let mut opts = Options {
        host: IpAddr::from([127, 0, 0, 1]),
        port: 1601,
        protocol: Protocol::Echo,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--host" => {
                let v = value("--host")?;
                opts.host = v
                    .parse()
                    .map_err(|_| format!("--host: {v:?} is not an IP address"))?;
            }
            "--port" => {
                let v = value("--port")?;
                opts.port = v
                    .parse()
                    .map_err(|_| format!("--port: {v:?} is not a port number"))?;
            }
            "--protocol" => {
                opts.protocol = match value("--protocol")?.as_str() {
                    "echo" => Protocol::Echo,
                    "chat" => Protocol::Chat,
                    other => {
                        return Err(format!(
                            "--protocol: unknown protocol {other:?} (echo or chat)"
                        ))
                    }
                };
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(opts))
}

/// A threaded component (A8) that waits for SIGINT/SIGTERM and asks the
/// server to finish gracefully.
struct SignalWatcher {
    signals: signal_hook::iterator::Signals,
    server_control: Postbox<Control>,
    scheduler: SchedulerHandle,
}

impl Component for SignalWatcher {
    fn boxes(&self) -> Boxes {
        Boxes::new()
    }

    fn main(&mut self, _cx: &mut Cx<'_>) -> Step {
        if let Some(sig) = self.signals.forever().next() {
            log::info!("signal {sig}: stopping; draining queued output for at most {LINGER:?}");
            let _ = self.server_control.send(Control::ProducerFinished);
            let scheduler = self.scheduler.clone();
            // The linger bound: if some client will not take its output,
            // stop anyway.
            std::thread::spawn(move || {
                std::thread::sleep(LINGER);
                log::warn!("linger time over; stopping with output undelivered");
                scheduler.stop();
            });
        }
        Step::Done
    }
}

fn run(opts: Options) -> Result<(), String> {
    let scheduler = selector::scheduler().map_err(|e| format!("cannot start the poller: {e}"))?;
    let addr = SocketAddr::new(opts.host, opts.port);
    let next_id = AtomicU64::new(1);
    let hub = Handle::new(ChatHub::new());
    let server = match opts.protocol {
        Protocol::Echo => {
            SimpleServer::new(|| Handle::new(Echo::new()), addr, ServerOptions::default())
        }
        Protocol::Chat => {
            let hub = hub.clone();
            SimpleServer::new(
                move || {
                    let id = next_id.fetch_add(1, Ordering::Relaxed);
                    match ChatClient::new(id, &hub) {
                        Ok(c) => Handle::new(c),
                        Err(e) => {
                            log::error!("chat: {e}");
                            Handle::new(Echo::new())
                        }
                    }
                },
                addr,
                ServerOptions::default(),
            )
        }
    }
    .map_err(|e| e.to_string())?;
    let local = server.local_addr();
    let core = Handle::new(server);
    // Watch for signals before announcing the port, so a script that stops
    // us as soon as it reads the line gets the graceful path.
    let signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .map_err(|e| format!("cannot watch signals: {e}"))?;
    println!("listening on {local}");
    let _ = std::io::stdout().flush();
    log::info!("selector-demo: {:?} server on {local}", opts.protocol);

    let watcher = Handle::new(SignalWatcher {
        signals,
        server_control: core.postbox("control").map_err(|e| e.to_string())?,
        scheduler: scheduler.handle(),
    });
    if opts.protocol == Protocol::Chat {
        // The hub ends when the server has.
        axon::link((&core, "signal"), (&hub, "control")).map_err(|e| e.to_string())?;
        scheduler.activate(&hub).map_err(|e| e.to_string())?;
    }
    scheduler.activate(&core).map_err(|e| e.to_string())?;
    scheduler
        .activate_threaded(&watcher)
        .map_err(|e| e.to_string())?;
    scheduler.run();
    log::info!("selector-demo: stopped");
    Ok(())
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .target(env_logger::Target::Stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&args) {
        Ok(None) => {
            println!("{HELP}");
            ExitCode::SUCCESS
        }
        Ok(Some(opts)) => match run(opts) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("selector-demo: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("selector-demo: {e}\n\n{HELP}");
            ExitCode::from(2)
        }
    }
}
