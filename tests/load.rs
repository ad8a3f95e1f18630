//! Load: S6 under a ping-pong stress, 1,000 concurrent echo clients, a
//! 64 MiB stream echoed byte-exact. Every loop is bounded in count and time.

mod util;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use util::*;

#[test]
fn s6_ping_pong_over_many_connections_never_stalls() {
    const CONNS: usize = 64;
    const THREADS: usize = 4;
    const RUN_FOR: Duration = Duration::from_secs(3);
    const MAX_ROUNDS: usize = 20_000; // per connection, whichever comes first
    let (addr, _core, _running) = echo_server();
    let start = Instant::now();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                let mut conns: Vec<_> = (0..CONNS / THREADS).map(|_| connect(addr)).collect();
                let mut rounds = 0;
                while start.elapsed() < RUN_FOR && rounds < MAX_ROUNDS {
                    for (i, c) in conns.iter_mut().enumerate() {
                        let msg = pattern((t * 1000 + i + rounds) as u64, 64);
                        // A lost wake-up shows up here as a read timeout.
                        round_trip(c, &msg);
                    }
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    for w in workers {
        assert!(w.join().unwrap() > 0);
    }
}

#[test]
fn echo_serves_1000_concurrent_clients() {
    const CLIENTS: usize = 1000;
    let (addr, _core, _running) = echo_server();
    // All connected at once, then each echoed, from 8 threads.
    let mut clients: Vec<_> = (0..CLIENTS).map(|_| connect(addr)).collect();
    let chunks: Vec<Vec<_>> = {
        let mut out: Vec<Vec<_>> = (0..8).map(|_| Vec::new()).collect();
        for (i, c) in clients.drain(..).enumerate() {
            out[i % 8].push((i, c));
        }
        out
    };
    let workers: Vec<_> = chunks
        .into_iter()
        .map(|mut part| {
            std::thread::spawn(move || {
                for (i, c) in &mut part {
                    c.write_all(&pattern(*i as u64, 100)).unwrap();
                }
                for (i, c) in &mut part {
                    assert_eq!(read_n(c, 100), pattern(*i as u64, 100), "client {i}");
                }
                part.len()
            })
        })
        .collect();
    let served: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(served, CLIENTS);
}

#[test]
fn c4_a_64_mib_stream_is_echoed_byte_exact() {
    const TOTAL: usize = 64 * 1024 * 1024;
    let (addr, _core, _running) = echo_server();
    let mut client = connect(addr);
    let mut writer = client.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let block = pattern(64, 1024 * 1024 + 7);
        let mut sent = 0;
        while sent < TOTAL {
            let n = (TOTAL - sent).min(block.len());
            writer.write_all(&block[..n]).unwrap();
            sent += n;
        }
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let block = pattern(64, 1024 * 1024 + 7);
    let mut received = 0;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = client.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        for (k, &b) in buf[..n].iter().enumerate() {
            let pos = (received + k) % block.len();
            assert_eq!(b, block[pos], "byte {} differs", received + k);
        }
        received += n;
    }
    sender.join().unwrap();
    assert_eq!(received, TOTAL);
}
