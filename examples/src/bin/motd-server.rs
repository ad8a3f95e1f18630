//! Kamaelia's "message of the day" server, from its cookbook:
//! `SimpleServer(protocol=MOTD, port=…)`, where the protocol sends one
//! fixed message and then `producerFinished`, so each client reads the
//! message and sees the connection close.
//!
//! `motd-server [ADDR] [--file PATH]` (default 127.0.0.1:1601): the message
//! is the file's bytes, or a built-in one. SIGINT or SIGTERM stops it.

use kamaelia::prelude::*;

/// Sends its message, then `producerFinished` (H6).
struct Motd(Option<Vec<u8>>);

impl Component for Motd {
    type Boxes = Standard<Vec<u8>, Vec<u8>>;

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        if let Some(msg) = self.0.take() {
            if let Err(full) = cx.outbox.send(msg) {
                self.0 = Some(full.into_inner()); // "no space in box" (A5): keep it
                return Step::Pause; // woken when there is room
            }
        }
        let _ = cx.signal.send(Control::ProducerFinished); // close once written (C5)
        Step::Done
    }
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args.first().filter(|a| !a.starts_with("--"));
    let addr = addr.map_or("127.0.0.1:1601", |a| a.as_str());
    let addr = addr.parse().map_err(std::io::Error::other)?;
    let file = args
        .iter()
        .position(|a| a == "--file")
        .map(|i| args.get(i + 1));
    let msg = match file {
        Some(Some(path)) => std::fs::read(path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("--file {path}: {e}")))?,
        Some(None) => return Err(std::io::Error::other("--file needs a PATH")),
        None => b"Welcome to Kamaelia, in Rust. Have a nice day.\n".to_vec(),
    };
    let server = SimpleServer::new(move || Motd(Some(msg.clone())), addr, Default::default())?;
    server.run_with(|addr| println!("listening on {addr}"))
}
