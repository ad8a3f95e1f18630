//! An upper-casing line server, composed of parts: `upper-server [ADDR]`
//! (default 127.0.0.1:1601). Each line a client sends comes back in upper
//! case; SIGINT or SIGTERM stops it gracefully.

use kamaelia::prelude::*;

fn upper() -> Pipeline {
    let shout = |line: Vec<u8>| Some([line.to_ascii_uppercase(), b"\n".to_vec()].concat());
    pipeline![LineSplit::new(), PureTransformer::new(shout)].expect("lines fit the transformer")
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:1601".into());
    let addr = addr.parse().map_err(std::io::Error::other)?;
    let server = SimpleServer::new(upper, addr, Default::default())?;
    server.run_with(|addr| println!("listening on {addr}"))
}
