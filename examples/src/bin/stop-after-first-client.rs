//! Kamaelia's `serversignal` example (`Kamaelia.Chassis.ConnectedServer`):
//! a protocol handler with a `serversignal` outbox, which ServerCore links
//! to its own `control` (H2), stops the whole server. Here the first
//! client gets its reply and the close, then the server stops (gracefully,
//! H4) and the program exits 0.
//!
//! `stop-after-first-client [ADDR]` (default 127.0.0.1:1601). SIGINT or
//! SIGTERM stops it before any client comes.

use kamaelia::prelude::*;

boxes! {
    /// A handler's four boxes plus `serversignal`.
    pub struct OnceBoxes {
        /// bytes from the client (not read)
        pub inbox: Inbox<Vec<u8>>,
        /// socketShutdown
        pub control: Inbox<Control>,
        /// the reply
        pub outbox: Outbox<Vec<u8>>,
        /// producerFinished: close this connection
        pub signal: Outbox<Control>,
        /// producerFinished: stop the server
        pub serversignal: Outbox<Control>,
    }
}

/// Sends its reply, closes its connection, then stops the server.
struct Once(Option<Vec<u8>>);

impl Component for Once {
    type Boxes = OnceBoxes;

    fn main(&mut self, cx: &mut Cx<OnceBoxes>) -> Step {
        if let Some(msg) = self.0.take() {
            if let Err(full) = cx.outbox.send(msg) {
                self.0 = Some(full.into_inner()); // "no space in box" (A5): keep it
                return Step::Pause; // woken when there is room
            }
        }
        let _ = cx.signal.send(Control::ProducerFinished); // close once written (C5)
        let _ = cx.serversignal.send(Control::ProducerFinished); // stop gracefully (H4)
        Step::Done
    }
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:1601".into());
    let addr = addr.parse().map_err(std::io::Error::other)?;
    let once = || {
        Once(Some(
            b"You are the first and last client. Goodbye.\n".to_vec(),
        ))
    };
    let server = SimpleServer::new(once, addr, Default::default())?;
    server.run_with(|addr| println!("listening on {addr}"))
}
