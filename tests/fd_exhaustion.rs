//! T5: out of descriptors, the server neither dies nor spins, keeps serving
//! the connections it has, and accepts again once descriptors free up.
//!
//! Alone in its own test binary: it lowers this process's RLIMIT_NOFILE
//! (with util-linux `prlimit`, so no unsafe code) and must not starve other
//! tests.

mod util;

use std::io::Write;
use std::time::{Duration, Instant};

use chassis::{ServerOptions, SimpleServer};
use util::*;

#[test]
fn t5_out_of_descriptors_the_server_neither_dies_nor_spins_and_resumes() {
    const CLIENTS: usize = 40;
    const ROOM: usize = 10; // descriptors left for the server to accept into

    // Opened in advance: opening /proc/self/stat while starved of
    // descriptors would fail.
    let mut clock = CpuClock::open().unwrap();
    // The first reading also learns the clock's tick rate (`getconf`),
    // which could not be run once starved.
    clock.seconds();
    // Not running yet: the clients below queue in the backlog first.
    let (addr, _core, scheduler) = activate_on_new_scheduler(
        SimpleServer::new(
            examples::Echo::new,
            any_loopback_port(),
            ServerOptions::default(),
        )
        .unwrap(),
    );

    // Room for our clients plus ROOM accepted connections, no more.
    let limit = open_fds() + CLIENTS + ROOM;
    let status = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &std::process::id().to_string(),
            &format!("--nofile={limit}:{limit}"),
        ])
        .status()
        .expect("prlimit (util-linux) is needed for this test");
    assert!(status.success(), "prlimit failed");

    // All clients wait in the backlog before the server starts accepting.
    let mut clients: Vec<_> = (0..CLIENTS).map(|_| connect(addr)).collect();
    let _running = Running::start(scheduler);
    for (i, c) in clients.iter_mut().enumerate() {
        c.write_all(format!("{i:04}").as_bytes()).unwrap();
    }
    // The first connections are accepted and served.
    assert_eq!(read_n(&mut clients[0], 4), b"0000");

    // Starved: the rest wait. The server must not spin meanwhile.
    let before = clock.seconds();
    let window = Instant::now();
    std::thread::sleep(Duration::from_secs(1)); // the measurement window
    let used = clock.seconds() - before;
    let elapsed = window.elapsed().as_secs_f64();
    assert!(
        used < 0.2 * elapsed,
        "starved server used {used:.2} s of CPU in {elapsed:.2} s"
    );
    // An established connection is still served.
    round_trip(&mut clients[0], b"still here");

    // Free descriptors: close the first half. The server resumes accepting
    // and every remaining client is echoed.
    let mut rest = clients.split_off(CLIENTS / 2);
    drop(clients);
    for (k, c) in rest.iter_mut().enumerate() {
        let i = CLIENTS / 2 + k;
        assert_eq!(read_n(c, 4), format!("{i:04}").as_bytes(), "client {i}");
    }
}
