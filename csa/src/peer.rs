//! [`Peer`]: a connection's peer address in 16 bytes, for records kept
//! per connection (a CSA's, ServerCore's), where a `SocketAddr` takes 32.
//!
//! ```
//! use csa::Peer;
//! use std::net::SocketAddr;
//!
//! let addr: SocketAddr = "127.0.0.1:4000".parse().unwrap();
//! let peer = Peer::from(addr);
//! assert_eq!(peer.to_string(), "127.0.0.1:4000");
//! assert_eq!(peer.addr(), addr);
//! assert_eq!(std::mem::size_of::<Peer>(), 16);
//! ```

use std::fmt;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};

/// A peer's address: an IPv4 one inline, an IPv6 one (with its flow and
/// scope, 28 bytes) boxed, so that the record is 16 bytes either way.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Peer(Repr);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    V4(SocketAddrV4),
    V6(Box<SocketAddrV6>),
}

impl Peer {
    /// The address, as a `SocketAddr`.
    pub fn addr(&self) -> SocketAddr {
        match &self.0 {
            Repr::V4(a) => SocketAddr::V4(*a),
            Repr::V6(a) => SocketAddr::V6(**a),
        }
    }
}

impl From<SocketAddr> for Peer {
    fn from(addr: SocketAddr) -> Peer {
        Peer(match addr {
            SocketAddr::V4(a) => Repr::V4(a),
            SocketAddr::V6(a) => Repr::V6(Box::new(a)),
        })
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::V4(a) => a.fmt(f),
            Repr::V6(a) => a.fmt(f),
        }
    }
}

impl fmt::Debug for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// It stays 16 bytes (an `Option` of it too), and reads as the address
    /// it was made from, IPv6 scope included.
    #[test]
    fn a_peer_is_16_bytes_and_reads_as_its_address() {
        assert_eq!(std::mem::size_of::<Peer>(), 16);
        assert_eq!(std::mem::size_of::<Option<Peer>>(), 16);
        for addr in ["127.0.0.1:4000", "[::1]:4000", "[fe80::1%2]:80"] {
            let addr: SocketAddr = addr.parse().unwrap();
            assert_eq!(Peer::from(addr).to_string(), addr.to_string());
            assert_eq!(Peer::from(addr).addr(), addr);
        }
    }
}
