//! The selector demo: an echo or chat server on the Kamaelia-in-Rust stack.
//!
//! `selector-demo [--host 127.0.0.1] [--port 1601] [--protocol echo|chat]
//! [--idle-timeout SECS] [--stall-timeout SECS] [--request-timeout SECS]
//! [--tls-cert PATH --tls-key PATH] [--threads N] [--accept handoff|reuseport]
//! [--introspect HOST:PORT]`
//!
//! Prints `listening on HOST:PORT` as its first line on stdout (`listening
//! on HOST:PORT (tls)` with `--tls-cert`/`--tls-key`) and, with
//! `--introspect`, `introspection on http://HOST:PORT/` as its second
//! (the `introspect` crate's server, on the same scheduler); logs go to
//! stderr (`RUST_LOG=debug` shows each connect and disconnect). SIGINT or
//! SIGTERM stops accepting, lets queued output drain (at most
//! [`chassis::DRAIN`]) and exits 0.

use std::io::Write;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use axon::Handle;
use chassis::{Accept, ServerOptions, SignalStop, SimpleServer, DRAIN};
use examples::{chat, Echo};
use tls::{HandshakeLimit, ServerSessions};

/// The chat's backplane name.
const CHAT: &str = "CHAT";
/// With TLS, the most handshakes in progress at once (issue 11's cap);
/// above it accepting pauses.
const HANDSHAKES: usize = 256;

const HELP: &str = "\
selector-demo: an echo or chat server on Kamaelia's Selector/TCPServer/CSA stack

USAGE:
    selector-demo [--host HOST] [--port PORT] [--protocol echo|chat]
                  [--idle-timeout SECS] [--stall-timeout SECS] [--request-timeout SECS]
                  [--tls-cert PATH --tls-key PATH] [--threads N]
                  [--accept handoff|reuseport] [--introspect HOST:PORT]

OPTIONS:
    --host HOST          address or name to listen on (default 127.0.0.1, loopback only)
    --port PORT          port to listen on; 0 picks a free one (default 1601)
    --protocol NAME      echo: send every byte back to its sender (default)
                         chat: send every line to all the other clients
    --idle-timeout SECS  close a connection on which no byte has moved either way
                         for SECS (default 0: off)
    --stall-timeout SECS close a connection whose output the client has not taken
                         for SECS, such as one that sent a large request and never
                         reads (default 60)
    --request-timeout SECS
                         close a connection once SECS have passed since the first
                         byte of a request with nothing written back: a client
                         trickling a request that never ends, a slowloris (default
                         0: off; for request-response protocols, not chat)
    --tls-cert PATH      serve TLS: every connection is TLS from its first byte,
                         with this PEM certificate chain (leaf first); needs
                         --tls-key. At most 256 handshakes in progress (10 s
                         deadline each); above that, accepting pauses
    --tls-key PATH       the PEM private key for --tls-cert; needs --tls-cert
    --threads N          serve on N threads (shards), each with its own poller:
                         one acceptor hands every new connection to the least
                         busy shard (default 1; 0: one per CPU)
    --accept HOW         how --threads shards get connections: handoff (one
                         acceptor; limits are global; the default) or
                         reuseport (a SO_REUSEPORT listener per shard, spread
                         by the kernel; limits per shard)
    --introspect HOST:PORT
                         serve a live view of the running components over HTTP
                         on HOST:PORT (off by default; keep HOST loopback: it
                         has no authentication); PORT 0 picks a free one.
                         With --threads above 1 it shows the main thread's
                         scheduler (the acceptor), not the shards'
    -h, --help           print this help

SECS may have a fraction (0.5); 0 turns that timeout off. Values may also
be given as --port=PORT. The first line on stdout is
`listening on HOST:PORT` with the real port (`listening on HOST:PORT (tls)`
with --tls-cert and --tls-key); with --introspect the second is
`introspection on http://HOST:PORT/`. Logs go to stderr; set
RUST_LOG=debug to see connects and disconnects. SIGINT or SIGTERM stops
accepting, lets queued output drain (at most 5 s) and exits 0.";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Protocol {
    Echo,
    Chat,
}

struct Options {
    host: String,
    port: u16,
    protocol: Protocol,
    /// The connection timeouts (C9, C10, C11); `None` is off.
    idle_timeout: Option<Duration>,
    stall_timeout: Option<Duration>,
    request_timeout: Option<Duration>,
    /// `--tls-cert` and `--tls-key`: serve TLS. Both or neither.
    tls: Option<(PathBuf, PathBuf)>,
    /// `--threads`: shards (`ServerCore::threads`); 0 is one per CPU.
    threads: usize,
    /// `--accept`: how the shards get their connections.
    accept: Accept,
    /// `--introspect HOST:PORT`: the introspection server's host and port.
    introspect: Option<(String, u16)>,
}

/// `--introspect`'s value: `HOST:PORT` (`[::1]:PORT` for an IPv6 address).
fn host_port(value: &str) -> Result<(String, u16), String> {
    let bad = || format!("--introspect: {value:?} is not HOST:PORT (127.0.0.1:1602, say)");
    let (host, port) = value.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = port.parse().map_err(|_| bad())?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

/// A timeout option's value: seconds, maybe with a fraction; 0 is off.
fn timeout(flag: &str, value: &str) -> Result<Option<Duration>, String> {
    let secs = value
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("{flag}: {value:?} is not a number of seconds (0 turns it off)"))?;
    Ok(Some(secs).filter(|s| !s.is_zero()))
}

/// The options, or `None` for `--help`.
fn parse() -> Result<Option<Options>, lexopt::Error> {
    use lexopt::prelude::*;
    let defaults = ServerOptions::default();
    let mut opts = Options {
        host: "127.0.0.1".into(),
        port: 1601,
        protocol: Protocol::Echo,
        idle_timeout: defaults.idle_timeout,
        stall_timeout: defaults.stall_timeout,
        request_timeout: defaults.request_timeout,
        tls: None,
        introspect: None,
        threads: 1,
        accept: Accept::HandOff,
    };
    let (mut tls_cert, mut tls_key) = (None::<PathBuf>, None::<PathBuf>);
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(None),
            Long("host") => opts.host = parser.value()?.string()?,
            Long("port") => {
                let v = parser.value()?.string()?;
                opts.port = v
                    .parse()
                    .map_err(|_| format!("--port: {v:?} is not a port number (0 to 65535)"))?;
            }
            Long("protocol") => {
                opts.protocol = match parser.value()?.string()?.as_str() {
                    "echo" => Protocol::Echo,
                    "chat" => Protocol::Chat,
                    other => {
                        return Err(format!("unknown protocol {other:?} (echo or chat)").into())
                    }
                }
            }
            Long("idle-timeout") => {
                opts.idle_timeout = timeout("--idle-timeout", &parser.value()?.string()?)?;
            }
            Long("stall-timeout") => {
                opts.stall_timeout = timeout("--stall-timeout", &parser.value()?.string()?)?;
            }
            Long("request-timeout") => {
                opts.request_timeout = timeout("--request-timeout", &parser.value()?.string()?)?;
            }
            Long("threads") => {
                let v = parser.value()?.string()?;
                opts.threads = v.parse().map_err(|_| {
                    format!("--threads: {v:?} is not a number of threads (0: one per CPU)")
                })?;
            }
            Long("accept") => {
                opts.accept = match parser.value()?.string()?.as_str() {
                    "handoff" => Accept::HandOff,
                    "reuseport" => Accept::ReusePort,
                    other => {
                        return Err(format!(
                            "--accept: unknown way {other:?} (handoff or reuseport)"
                        )
                        .into())
                    }
                }
            }
            Long("tls-cert") => tls_cert = Some(parser.value()?.into()),
            Long("tls-key") => tls_key = Some(parser.value()?.into()),
            Long("introspect") => opts.introspect = Some(host_port(&parser.value()?.string()?)?),
            _ => return Err(arg.unexpected()),
        }
    }
    opts.tls = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        (Some(_), None) => return Err("--tls-cert needs --tls-key (give both or neither)".into()),
        (None, Some(_)) => return Err("--tls-key needs --tls-cert (give both or neither)".into()),
    };
    Ok(Some(opts))
}

/// `--host` as an address: an IP address, or a name (`localhost`)
/// resolved, IPv4 first.
fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("--host {host:?}: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("--host {host:?}: no address"))
}

/// Warns when `addr` can be reached from other machines.
fn warn_if_reachable(what: &str, addr: SocketAddr) {
    if addr.ip().is_unspecified() {
        log::warn!("{what} on {addr}: every interface, reachable from other machines");
    } else if !addr.ip().is_loopback() {
        log::warn!("{what} on {addr}: not a loopback address, reachable from other machines");
    }
}

fn run(opts: Options) -> Result<(), String> {
    let addr = resolve(&opts.host, opts.port)?;
    // Load the certificate and key before binding, so a bad file is an
    // error before anything listens; the error names the file.
    let tls = opts
        .tls
        .as_ref()
        .map(|(cert, key)| tls::server_config_from_pem(cert, key))
        .transpose()
        .map_err(|e| format!("TLS: {e}"))?;
    warn_if_reachable("listening", addr);
    let introspect_addr = opts
        .introspect
        .as_ref()
        .map(|(host, port)| resolve(host, *port).map_err(|e| format!("--introspect: {e}")))
        .transpose()?;
    let scheduler = selector::scheduler().map_err(|e| format!("cannot start the poller: {e}"))?;
    // Chat: the backplane every member publishes to and subscribes from.
    let plane = Handle::new(chat::backplane(CHAT));
    // With TLS: at most HANDSHAKES handshakes in progress; above it,
    // accepting pauses (the limit is the server's accept gate) and new
    // clients wait in the kernel's backlog.
    let limit = HandshakeLimit::new(HANDSHAKES);
    let options = ServerOptions {
        reuse_port: opts.accept == Accept::ReusePort,
        idle_timeout: opts.idle_timeout,
        stall_timeout: opts.stall_timeout,
        request_timeout: opts.request_timeout,
        accept_gate: tls.is_some().then(|| limit.accept_gate()),
        // With TLS, every connection's CSA runs a TLS session (rustls on
        // its own socket) and its handler, the plain one, is given
        // plaintext.
        session: tls.as_ref().map(|config| {
            ServerSessions::new(config.clone())
                .with_handshake_limit(&limit)
                .factory()
        }),
        ..ServerOptions::default()
    };
    let tls_suffix = if tls.is_some() { " (tls)" } else { "" };
    let server = match opts.protocol {
        Protocol::Echo => SimpleServer::new(Echo::new, addr, options),
        Protocol::Chat => SimpleServer::new(|| chat::member(CHAT), addr, options),
    }
    .map_err(|e| e.to_string())?;
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let server = server
        .accept(opts.accept)
        .threads(threads)
        .map_err(|e| format!("cannot start {threads} threads: {e}"))?;
    let local = server.local_addr();
    let core = Handle::new(server);
    // The introspection server: a second ServerCore on this scheduler,
    // stopped when the served one has (its `signal`), and passing that on.
    let introspection = introspect_addr
        .map(|at| {
            warn_if_reachable("introspection", at);
            introspect::serve(&scheduler, at).map_err(|e| format!("--introspect: {e}"))
        })
        .transpose()?;
    let stopped_by = match &introspection {
        Some(seen) => {
            axon::link((&core, "signal"), (seen.introspector(), "control"))
                .map_err(|e| e.to_string())?;
            seen.introspector().clone()
        }
        None => core.clone(),
    };
    // Watch for signals before announcing the port, so a script that stops
    // us as soon as it reads the line gets the graceful path.
    let _signals = SignalStop::install(&core, &scheduler.handle(), DRAIN)
        .map_err(|e| format!("cannot watch signals: {e}"))?;
    println!("listening on {local}{tls_suffix}");
    if let Some(seen) = &introspection {
        println!("introspection on http://{}/", seen.local_addr());
    }
    let _ = std::io::stdout().flush();
    log::info!(
        "selector-demo: {:?} server on {local}{tls_suffix}",
        opts.protocol
    );

    if opts.protocol == Protocol::Chat {
        // The backplane ends when the server (and the introspection
        // server, if any) has; it is activated first, so it is registered
        // before the first member looks for it.
        axon::link((&stopped_by, "signal"), (&plane, "control")).map_err(|e| e.to_string())?;
        scheduler.activate(&plane).map_err(|e| e.to_string())?;
    }
    scheduler.activate(&core).map_err(|e| e.to_string())?;
    scheduler.run();
    log::info!("selector-demo: stopped");
    Ok(())
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .target(env_logger::Target::Stderr)
        .init();
    match parse() {
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
            eprintln!("selector-demo: {e}\nTry 'selector-demo --help' for more information.");
            ExitCode::from(2)
        }
    }
}
