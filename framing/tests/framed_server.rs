//! A framed protocol served for real: a `SimpleServer` on 127.0.0.1
//! whose handler is `pipeline![DeFramer, reverse each message, Framer]`,
//! and blocking clients that behave well, trickle, half-close or lie.

use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Mutex, MutexGuard};

use axon::{pipeline, Pipeline};
use chassis::{ServerOptions, SimpleServer};
use framing::{DeFramer, Framer, MAX_MESSAGE};
use testkit::{any_loopback_port, connect, pattern, read_n, read_to_eof, sees_eof, Proc, Running};
use util::PureTransformer;

/// One test at a time: the memory test measures the whole process.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The protocol handler: each message comes back reversed, framed.
fn reverser() -> Pipeline {
    let reverse = |mut msg: Vec<u8>| {
        msg.reverse();
        Some(msg)
    };
    pipeline![
        DeFramer::new(),
        PureTransformer::new(reverse),
        Framer::new()
    ]
    .expect("the parts fit")
}

/// The server, running on a Selector scheduler of its own.
fn serve() -> (SocketAddr, Running) {
    let server = SimpleServer::new(reverser, any_loopback_port(), ServerOptions::default())
        .expect("bind 127.0.0.1:0");
    let addr = server.local_addr();
    let scheduler = selector::scheduler().expect("a poller");
    scheduler.activate(server).unwrap();
    (addr, Running::start(scheduler))
}

fn frame(msg: &[u8]) -> Vec<u8> {
    let mut f = u32::try_from(msg.len()).unwrap().to_be_bytes().to_vec();
    f.extend_from_slice(msg);
    f
}

fn reversed(msg: &[u8]) -> Vec<u8> {
    msg.iter().rev().copied().collect()
}

/// Reads one frame's message.
#[track_caller]
fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    let len = u32::from_be_bytes(read_n(s, 4).try_into().unwrap());
    read_n(s, len as usize)
}

/// The process's virtual size (`VmSize`): unlike the resident size, it
/// shows memory reserved and never touched, as a buffer sized from a
/// peer's claim would be.
fn vm_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmSize:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[test]
fn messages_come_back_in_order_from_one_write_and_a_half_close() {
    let _serial = serial();
    let (addr, running) = serve();
    let msgs = [
        b"hello".to_vec(),
        Vec::new(),
        pattern(1, 1024 * 1024), // many reads of the connection
        b"!".to_vec(),
    ];
    let mut c = connect(addr);
    c.write_all(&msgs.iter().flat_map(|m| frame(m)).collect::<Vec<u8>>())
        .unwrap();
    for m in &msgs {
        assert_eq!(read_frame(&mut c), reversed(m));
    }
    // Half-closed (C7): the last request's reply still comes, then EOF.
    c.write_all(&frame(b"last")).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_eof(&mut c), frame(b"tsal"));
    running.stop();
}

#[test]
fn a_peer_sending_one_byte_at_a_time_gets_every_reply() {
    let _serial = serial();
    let (addr, running) = serve();
    let msgs = [
        b"one".to_vec(),
        Vec::new(),
        pattern(2, 300),
        b"four".to_vec(),
    ];
    let mut c = connect(addr); // TCP_NODELAY: each byte its own segment
    for m in &msgs {
        for b in frame(m) {
            c.write_all(&[b]).unwrap();
        }
    }
    for m in &msgs {
        assert_eq!(read_frame(&mut c), reversed(m));
    }
    running.stop();
}

#[test]
fn a_huge_length_prefix_closes_the_connection_after_the_replies_before_it() {
    let _serial = serial();
    let (addr, running) = serve();
    let rss = Proc::me().rss_bytes();
    for _ in 0..20 {
        let mut c = connect(addr);
        let mut bytes = frame(b"fine");
        bytes.extend_from_slice(&u32::MAX.to_be_bytes()); // 4 GiB, it says
        bytes.extend_from_slice(b"and some of it");
        c.write_all(&bytes).unwrap();
        assert_eq!(read_frame(&mut c), b"enif");
        assert!(sees_eof(&mut c), "the server answered a 4 GiB claim");
    }
    // One over the maximum is refused too.
    let mut c = connect(addr);
    c.write_all(&u32::try_from(MAX_MESSAGE + 1).unwrap().to_be_bytes())
        .unwrap();
    assert!(sees_eof(&mut c), "the server took a frame over the maximum");
    // The server goes on serving, and the claims cost it nothing.
    let mut c = connect(addr);
    c.write_all(&frame(b"still here")).unwrap();
    assert_eq!(read_frame(&mut c), b"ereh llits");
    let grown = Proc::me().rss_bytes().saturating_sub(rss);
    assert!(grown < 16 << 20, "resident size grew {grown} bytes");
    running.stop();
}

#[test]
fn peers_claiming_the_maximum_and_sending_little_cost_little() {
    let _serial = serial();
    let (addr, running) = serve();
    let mut warm = connect(addr);
    warm.write_all(&frame(b"warm up")).unwrap();
    assert_eq!(read_frame(&mut warm), b"pu mraw");
    let (vm, rss) = (vm_bytes(), Proc::me().rss_bytes());

    // 20 peers each claim a whole 16 MiB message and send 1000 bytes of
    // it: sized from the claims, the buffers would reserve 320 MiB.
    let mut liars: Vec<TcpStream> = (0..20)
        .map(|i| {
            let mut c = connect(addr);
            let mut bytes = u32::try_from(MAX_MESSAGE).unwrap().to_be_bytes().to_vec();
            bytes.extend_from_slice(&pattern(i, 1000));
            c.write_all(&bytes).unwrap();
            c
        })
        .collect();
    // Their bytes were sent before this request, on the same loopback, to
    // the same single-threaded server: a reply to it comes after they were
    // read (were one not yet read, the check below could only pass too
    // easily, never fail wrongly).
    for _ in 0..3 {
        warm.write_all(&frame(b"ping")).unwrap();
        assert_eq!(read_frame(&mut warm), b"gnip");
    }
    let vm_grown = vm_bytes().saturating_sub(vm);
    let rss_grown = Proc::me().rss_bytes().saturating_sub(rss);
    assert!(vm_grown < 128 << 20, "virtual size grew {vm_grown} bytes");
    assert!(rss_grown < 16 << 20, "resident size grew {rss_grown} bytes");

    // A liar that keeps its word after all is answered in full.
    let rest = pattern(99, MAX_MESSAGE - 1000);
    let mut whole = pattern(0, 1000);
    whole.extend_from_slice(&rest);
    liars[0].write_all(&rest).unwrap();
    assert_eq!(read_frame(&mut liars[0]), reversed(&whole));
    drop(liars);
    running.stop();
}
