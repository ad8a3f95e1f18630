//! A6 / "Better than Kamaelia": an idle system uses no CPU. Alone in its own
//! test binary so that no other test's work is counted.

mod util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axon::{Control, Handle, Scheduler};
use testkit::{wait_until, Proc, Running};
use util::*;

#[test]
fn a6_ten_thousand_paused_components_use_no_cpu() {
    const N: usize = 10_000;
    let steps = Arc::new(AtomicUsize::new(0));
    let scheduler = Scheduler::new();
    let handles: Vec<Handle> = (0..N)
        .map(|_| {
            Handle::new(Sleeper {
                steps: steps.clone(),
            })
        })
        .collect();
    for h in &handles {
        scheduler.activate(h).unwrap();
    }
    let running = Running::start(scheduler);

    // Wait (with the deadline) until every component has run once and paused.
    wait_until("every component's first step", || {
        steps.load(Ordering::SeqCst) >= N
    });
    let me = Proc::me();
    let cpu_before = me.cpu_seconds();
    let wall = Instant::now();
    // The measurement window itself (not a synchronisation): 2 s of
    // nothing happening.
    std::thread::sleep(Duration::from_secs(2));
    let cpu = me.cpu_seconds() - cpu_before;
    let elapsed = wall.elapsed().as_secs_f64();
    assert_eq!(
        steps.load(Ordering::SeqCst),
        N,
        "a paused component was stepped"
    );
    assert!(
        cpu < 0.01 * elapsed,
        "idle scheduler used {:.1} ms of CPU over {:.2} s",
        cpu * 1e3,
        elapsed
    );

    // And they still wake: tell each one to stop, the scheduler then ends.
    for h in &handles {
        h.postbox::<Control>("control")
            .unwrap()
            .send(Control::ShutdownMicroprocess)
            .unwrap();
    }
    running.join();
    assert!(handles.iter().all(Handle::is_done));
    assert!(handles.iter().all(|h| !h.panicked()));
}
