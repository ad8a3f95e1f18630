//! A client of `upper-server`: `upper-client [ADDR]` (default
//! 127.0.0.1:1601) sends the lines of its standard input and prints the
//! replies; it ends when the server has answered them all.

use kamaelia::prelude::*;

fn main() -> std::io::Result<()> {
    env_logger::init(); // RUST_LOG=warn shows a refused connection
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:1601".into());
    let client = TcpClient::new(addr.parse().map_err(std::io::Error::other)?);
    let parts = pipeline![ConsoleReader::new(), client, ConsoleEchoer::new()];
    kamaelia::run(parts.map_err(std::io::Error::other)?)
}
