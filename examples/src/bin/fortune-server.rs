//! Kamaelia's fortune cookie server (`Kamaelia.Protocol.FortuneCookieProtocol`
//! under `SimpleServer`, as in its `Examples/TCP_Systems/FortuneCookie_ServerClient.py`):
//! each client gets one fortune, then the close. Kamaelia read a fortune
//! file; here the fortunes are built in and taken in turn, one connection
//! after another, so which one a client gets is predictable.
//!
//! `fortune-server [ADDR]` (default 127.0.0.1:1601). SIGINT or SIGTERM
//! stops it.

use kamaelia::prelude::*;

/// The fortunes, in the order connections get them.
const FORTUNES: [&str; 3] = [
    "You will write a component that does one thing well.\n",
    "A bounded inbox is a happy inbox.\n",
    "Those who pause when the box is full are never lost.\n",
];

/// Sends its fortune, then `producerFinished` (H6).
struct Fortune(Option<Vec<u8>>);

impl Component for Fortune {
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
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:1601".into());
    let addr = addr.parse().map_err(std::io::Error::other)?;
    let mut next = FORTUNES.iter().cycle();
    let fortune = move || Fortune(next.next().map(|f| f.as_bytes().to_vec()));
    let server = SimpleServer::new(fortune, addr, Default::default())?;
    server.run_with(|addr| println!("listening on {addr}"))
}
