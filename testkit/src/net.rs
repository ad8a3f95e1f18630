//! Blocking loopback clients with deadlines, and byte patterns that show
//! loss or reordering.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};

use crate::DEADLINE;

/// 127.0.0.1, port 0: the kernel picks a free port.
pub fn any_loopback_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A blocking client with connect, read and write deadlines and
/// `TCP_NODELAY`, or the error that stopped it.
pub fn try_connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, DEADLINE)?;
    s.set_read_timeout(Some(DEADLINE))?;
    s.set_write_timeout(Some(DEADLINE))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// [`try_connect`], panicking (at the caller's line) if it fails.
#[track_caller]
pub fn connect(addr: SocketAddr) -> TcpStream {
    try_connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
}

/// Reads exactly `n` bytes (deadline per read).
#[track_caller]
pub fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    s.read_exact(&mut buf)
        .unwrap_or_else(|e| panic!("reading {n} bytes: {e}"));
    buf
}

/// Reads until EOF (deadline per read).
#[track_caller]
pub fn read_to_eof(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    s.read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("reading to EOF after {} bytes: {e}", out.len()));
    out
}

/// True if the peer closed: a read returns 0 (or a reset) within the
/// deadline; false if a byte arrived instead.
#[track_caller]
pub fn sees_eof(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => true,
        Err(e) => panic!("waiting for EOF: {e}"),
    }
}

/// Connects to `addr`, sends `msg`, and says whether the server closed
/// the connection without a byte of reply (within the deadline): what a
/// server does when the handler of a connection fails.
#[track_caller]
pub fn closed_unanswered(addr: SocketAddr, msg: &[u8]) -> bool {
    let mut s = connect(addr);
    s.write_all(msg).expect("sending to the server");
    sees_eof(&mut s)
}

/// [`closed_unanswered`] `times` times over, asserting each: a server
/// that closes a failed handler's connection does so for every one.
#[track_caller]
pub fn assert_each_closed_unanswered(addr: SocketAddr, msg: &[u8], times: usize) {
    for _ in 0..times {
        assert!(
            closed_unanswered(addr, msg),
            "the server sent bytes instead of closing"
        );
    }
}

/// `len` pseudo-random bytes from `seed` (xorshift): lost, duplicated or
/// misordered bytes show as a mismatch.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// One echo round trip of `msg`: writes it and reads the same bytes back.
#[track_caller]
pub fn round_trip(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).unwrap();
    assert_eq!(read_n(s, msg.len()), msg);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_differ_by_seed_and_repeat_by_seed() {
        assert_eq!(pattern(1, 64), pattern(1, 64));
        assert_ne!(pattern(1, 64), pattern(2, 64));
    }

    #[test]
    fn a_loopback_round_trip_and_eof() {
        let listener = std::net::TcpListener::bind(any_loopback_port()).unwrap();
        let addr = listener.local_addr().unwrap();
        let echo = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
        });
        let mut c = connect(addr);
        round_trip(&mut c, b"hello");
        echo.join().unwrap();
        assert!(sees_eof(&mut c));
    }
}
