//! `bench scale`: echo servers spread over N threads, for each N of
//! `--shards`, against several load generators at once.
//!
//! - Contenders: **axon** (`selector-demo --protocol echo --threads N`: N
//!   shards behind one acceptor), **mio** (`mio-echo --threads N`: N
//!   threads, each with its own `SO_REUSEPORT` listener, the ceiling) and
//!   **tokio** (`tokio-echo --threads N`: a multi-thread runtime with N
//!   workers; current-thread at N = 1).
//! - Pinning (`taskset`, when present): the whole server process on cores
//!   `0..N-1` (or `--server-cores`), the load generators on the cores no
//!   shard count's server uses, one core each. A machine short of cores
//!   gets overlapping pins, said on stderr, never a failure.
//! - Load: T processes of `bench loadgen` (T = `--load-threads`, or one
//!   per load core), each with its share of the connections, all sharing
//!   one measured window (`--start-at`, a wall-clock time). The rate is
//!   the sum of theirs; the server's CPU time is read here, from
//!   `/proc/PID/stat`, at the window's two ends, and divided by the
//!   operations of all generators; p99 is the largest of the generators'
//!   p99s (each generator's latencies stay in its own process).
//! - Within each run the contenders go in turn (each run starting with the
//!   next one), each through every shard count (ascending in odd runs,
//!   descending in even ones); figures are medians over the runs, and
//!   every ratio (to raw mio at the same N, or to the same contender at
//!   N = 1) is the median of ratios taken within one run, as in `compare`.
//!   Efficiency E(N) = rate(N) / (N · rate(1)).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::compare::{bin_dir, demo, have_taskset, median, parse, Server};
use crate::loadgen::{cpu_secs, Summary};

/// A server under test, started with `--port 0`, its args and
/// `--threads N`; its first stdout line is `listening on HOST:PORT`.
struct Contender {
    name: &'static str,
    bin: PathBuf,
    args: &'static [&'static str],
}

fn contenders(dir: &Path) -> Vec<Contender> {
    let c = |name, bin: &str, args| Contender {
        name,
        bin: dir.join(bin),
        args,
    };
    vec![
        c("mio", "mio-echo", &[]),
        c("tokio", "tokio-echo", &[]),
        c("axon", "selector-demo", &["--protocol", "echo"]),
    ]
}

/// A workload: the load generator's scenario and connections per shard.
struct Scenario {
    name: &'static str,
    loadgen: &'static [&'static str],
    conns_per_shard: usize,
    unit: &'static str,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "pingpong-64B-x64N",
        loadgen: &["pingpong", "--size", "64"],
        conns_per_shard: 64,
        unit: "rt",
    },
    Scenario {
        name: "churn-x16N",
        loadgen: &["churn"],
        conns_per_shard: 16,
        unit: "conn",
    },
];

/// `scale`'s options.
struct Options {
    quick: bool,
    shards: Vec<usize>,
    runs: Option<usize>,
    server_cores: Option<Vec<u32>>,
    load_threads: Option<usize>,
    /// `--same-conns`: every N gets N = 1's connections (64, 16) instead
    /// of N times as many.
    same_conns: bool,
}

/// `0,2-3`: a list of cores (or numbers), each at most once, ascending.
fn number_list(text: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("{text:?}: {part:?} is neither N nor N-M");
        let (a, b): (u32, u32) = match part.split_once('-') {
            Some((a, b)) => (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?),
            None => {
                let n = part.parse().map_err(|_| bad())?;
                (n, n)
            }
        };
        if a > b || b - a > 4096 {
            return Err(bad());
        }
        out.extend(a..=b);
    }
    if out.is_empty() {
        return Err(format!("{text:?}: an empty list"));
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn options(mut parser: lexopt::Parser) -> Result<Options, lexopt::Error> {
    use lexopt::prelude::*;
    let mut o = Options {
        quick: false,
        shards: vec![1, 2, 4, 8],
        runs: None,
        server_cores: None,
        load_threads: None,
        same_conns: false,
    };
    while let Some(arg) = parser.next()? {
        match arg {
            Long("quick") => o.quick = true,
            Long("same-conns") => o.same_conns = true,
            Long("shards") => {
                let text: String = crate::value(&mut parser, "--shards")?;
                let list = number_list(&text).map_err(|e| format!("--shards: {e}"))?;
                if list.contains(&0) || list.iter().any(|&n| n > 256) {
                    return Err("--shards: each count must be 1 to 256".into());
                }
                o.shards = list.into_iter().map(|n| n as usize).collect();
            }
            Long("runs") => o.runs = Some(crate::at_least_one(&mut parser, "--runs")?),
            Long("server-cores") => {
                let text: String = crate::value(&mut parser, "--server-cores")?;
                o.server_cores =
                    Some(number_list(&text).map_err(|e| format!("--server-cores: {e}"))?);
            }
            Long("load-threads") => {
                o.load_threads = Some(crate::at_least_one(&mut parser, "--load-threads")?)
            }
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(o)
}

/// The cores this process may run on (`Cpus_allowed_list`), or `0..n`.
fn allowed_cores() -> Vec<u32> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .and_then(|l| number_list(l.trim()).ok())
        })
        .unwrap_or_else(|| {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            (0..n as u32).collect()
        })
}

/// Where everything runs: the server's cores for each shard count, and
/// the load generators' cores (one per generator, repeating when there
/// are more generators than load cores).
struct Plan {
    server: BTreeMap<usize, Vec<u32>>,
    load: Vec<u32>,
    generators: usize,
}

fn cores_text(cores: &[u32]) -> String {
    cores
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Chooses the pins; every shortage is said on stderr and overlapped.
fn plan(allowed: &[u32], opts: &Options) -> Plan {
    let max_n = opts.shards.iter().copied().max().unwrap_or(1);
    let (server_pool, mut load): (Vec<u32>, Vec<u32>) = match &opts.server_cores {
        Some(list) => {
            let mut ok: Vec<u32> = list
                .iter()
                .copied()
                .filter(|c| allowed.contains(c))
                .collect();
            if ok.len() < list.len() {
                eprintln!(
                    "scale: --server-cores {}: only {} of them are usable here (allowed: {})",
                    cores_text(list),
                    cores_text(&ok),
                    cores_text(allowed)
                );
            }
            if ok.is_empty() {
                ok.push(allowed[0]);
            }
            let load = allowed
                .iter()
                .copied()
                .filter(|c| !ok.contains(c))
                .collect();
            (ok, load)
        }
        None => {
            // The load keeps at least one core of its own when there are two.
            let split = max_n.min(allowed.len().saturating_sub(1)).max(1);
            let split = split.min(allowed.len());
            (allowed[..split].to_vec(), allowed[split..].to_vec())
        }
    };
    if load.is_empty() {
        let last = *allowed.last().expect("at least one core");
        eprintln!(
            "scale: no core left for the load generators: they share core {last} with the server"
        );
        load.push(last);
    }
    let mut server = BTreeMap::new();
    for &n in &opts.shards {
        let cores: Vec<u32> = if opts.server_cores.is_some() {
            server_pool.clone()
        } else {
            server_pool.iter().copied().take(n).collect()
        };
        if opts.server_cores.is_none() && cores.len() < n {
            eprintln!(
                "scale: {n} shard(s) need {} cores ({n} + 1 for the load), this machine has {}: \
                 the server's {n} shard(s) share core(s) {}",
                n + 1,
                allowed.len(),
                cores_text(&cores)
            );
        }
        server.insert(n, cores);
    }
    let generators = opts.load_threads.unwrap_or(load.len());
    if generators > load.len() {
        eprintln!(
            "scale: {generators} load generators on {} core(s) ({}): they share",
            load.len(),
            cores_text(&load)
        );
    }
    Plan {
        server,
        load,
        generators,
    }
}

/// `bin`, pinned to `cores` when `taskset` exists.
fn pinned(cores: &[u32], bin: &Path, taskset: bool) -> Command {
    if taskset {
        let mut c = Command::new("taskset");
        c.arg("-c").arg(cores_text(cores)).arg(bin);
        c
    } else {
        Command::new(bin)
    }
}

fn start_server(
    c: &Contender,
    shards: usize,
    cores: &[u32],
    taskset: bool,
) -> Result<(Server, String), String> {
    let mut cmd = pinned(cores, &c.bin, taskset);
    cmd.args(c.args).args(["--threads", &shards.to_string()]);
    crate::compare::start_server(cmd, &c.bin)
}

/// CPU seconds of each thread of `pid`, by thread id.
fn thread_cpu(pid: u32) -> BTreeMap<u32, f64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return BTreeMap::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .map(|tid| {
            // /proc/PID/task/TID/stat has the thread's own utime+stime.
            (tid, cpu_secs_of(&format!("/proc/{pid}/task/{tid}/stat")))
        })
        .collect()
}

/// Context switches (voluntary + involuntary) of all threads of `pid`
/// alive now, from `/proc/PID/task/*/status`.
fn context_switches(pid: u32) -> u64 {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    dir.filter_map(|e| {
        let tid = e.ok()?.file_name();
        let status =
            std::fs::read_to_string(format!("/proc/{pid}/task/{}/status", tid.to_str()?)).ok()?;
        Some(
            status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>(),
        )
    })
    .sum()
}

/// Busy time of `cores` so far, seconds (`/proc/stat`: user, nice, system
/// and steal; USER_HZ = 100). Interrupt and softirq time, which the
/// kernel charges to no process, are left out: on loopback much of it is
/// the benchmark's own traffic.
fn cores_busy(cores: &[u32]) -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return 0.0;
    };
    stat.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let core: u32 = f.next()?.strip_prefix("cpu")?.parse().ok()?;
            if !cores.contains(&core) {
                return None;
            }
            let v: Vec<f64> = f.filter_map(|x| x.parse().ok()).collect();
            // user nice system idle iowait irq softirq steal
            Some(
                [0, 1, 2, 5, 6, 7]
                    .iter()
                    .filter_map(|&i| v.get(i))
                    .sum::<f64>(),
            )
        })
        .sum::<f64>()
        / 100.0
}

/// utime+stime of one `stat` file, seconds (as [`cpu_secs`]).
fn cpu_secs_of(path: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// What one (scenario, contender, shard count, run) measured, all
/// generators merged.
#[derive(Serialize, Clone)]
struct Merged {
    /// Sum of the generators' operations per second.
    rate: f64,
    ops: u64,
    /// The server's CPU over the shared window / all generators' ops.
    server_cpu_us_per_op: f64,
    /// The largest of the generators' p99s.
    p99_us: f64,
    /// The server threads' context switches (voluntary: waits in
    /// `epoll_wait` or a lock; involuntary: preempted) per operation.
    server_csw_per_op: f64,
    /// Noise: the share of the server's cores that other processes (and
    /// the hypervisor's steal) used in the window: (busy − server CPU) /
    /// (window × cores), 0 to 1. Load generators sharing those cores count
    /// here too.
    others_on_server_cores: f64,
    /// The server's busiest threads' CPU over the window, seconds,
    /// descending (how evenly the work spread).
    thread_cpu_s: Vec<f64>,
}

/// One line of `bench-scale.json`.
#[derive(Serialize)]
struct Record<'a> {
    scenario: &'a str,
    run: usize,
    contender: &'a str,
    shards: usize,
    server_cores: &'a [u32],
    load_cores: &'a [u32],
    conns: usize,
    merged: &'a Merged,
    generators: &'a [Summary],
}

/// Window timing: warm-up and window length, and how long the generators
/// get to start and connect before the warm-up counts.
struct Timing {
    setup: Duration,
    warmup: Duration,
    window: Duration,
}

/// A child's stdout, read to the end on a thread of its own (so a full pipe
/// never stalls it), with the child killed if it outlives `deadline`.
fn collect(mut child: Child, deadline: Instant, what: &str) -> Result<String, String> {
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) => break status,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{what}: load generator still running at its deadline"
                ));
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    let out = reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    if !err.trim().is_empty() {
        eprint!("{what}: {err}");
    }
    if !status.success() {
        return Err(format!("{what}: load generator failed ({status})"));
    }
    Ok(out)
}

/// One measurement: the server already started, `gens` generators with
/// `conns` connections between them, one shared window.
#[allow(clippy::too_many_arguments)]
fn measure(
    me: &Path,
    scenario: &Scenario,
    addr: &str,
    pid: u32,
    server_cores: &[u32],
    conns: usize,
    load: &[u32],
    gens: usize,
    timing: &Timing,
    taskset: bool,
    what: &str,
) -> Result<(Merged, Vec<Summary>), String> {
    let gens = gens.min(conns).max(1);
    // One clock for all: the window opens at a wall-clock time every
    // generator is told, and at the matching instant here.
    let (now_sys, now) = (SystemTime::now(), Instant::now());
    let lead = timing.setup + timing.warmup;
    let at_ms = (now_sys + lead)
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_millis() as u64;
    let at_sys = UNIX_EPOCH + Duration::from_millis(at_ms);
    let open = now + at_sys.duration_since(now_sys).unwrap_or(Duration::ZERO);
    let close = open + timing.window;
    let mut children = Vec::with_capacity(gens);
    for i in 0..gens {
        let share = conns / gens + usize::from(i < conns % gens);
        let child = pinned(&[load[i % load.len()]], me, taskset)
            .arg("loadgen")
            .args(scenario.loadgen)
            .args(["--addr", addr])
            .args(["--conns", &share.to_string()])
            .args(["--start-at", &at_ms.to_string()])
            .args(["--window", &timing.window.as_secs_f64().to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{what}: cannot start a load generator: {e}"))?;
        children.push(child);
    }
    std::thread::sleep(open.saturating_duration_since(Instant::now()));
    let busy0 = cores_busy(server_cores);
    let (cpu0, threads0, csw0) = (cpu_secs(pid), thread_cpu(pid), context_switches(pid));
    std::thread::sleep(close.saturating_duration_since(Instant::now()));
    let (cpu1, threads1, csw1) = (cpu_secs(pid), thread_cpu(pid), context_switches(pid));
    let busy1 = cores_busy(server_cores);
    // Generators end on their own just after the window; 10 s more at most.
    let deadline = close + Duration::from_secs(10);
    let mut summaries = Vec::with_capacity(gens);
    let mut first_err = None;
    for child in children {
        match collect(child, deadline, what).and_then(|out| {
            let json = out
                .lines()
                .find_map(|l| l.strip_prefix("RESULT "))
                .ok_or_else(|| format!("{what}: a load generator printed no RESULT"))?
                .to_string();
            parse(&json)
        }) {
            Ok(s) => summaries.push(s),
            Err(e) => first_err = first_err.or(Some(e)),
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    let ops: u64 = summaries.iter().map(|s| s.ops).sum();
    let mut thread_cpu_s: Vec<f64> = threads1
        .iter()
        .map(|(tid, t)| t - threads0.get(tid).copied().unwrap_or(0.0))
        .filter(|&d| d > 0.0)
        .collect();
    thread_cpu_s.sort_by(|a, b| b.total_cmp(a));
    let merged = Merged {
        rate: summaries.iter().map(|s| s.ops_per_s).sum(),
        ops,
        server_cpu_us_per_op: (cpu1 - cpu0) * 1e6 / ops.max(1) as f64,
        p99_us: summaries.iter().map(|s| s.p99_us).fold(0.0, f64::max),
        server_csw_per_op: csw1.saturating_sub(csw0) as f64 / ops.max(1) as f64,
        others_on_server_cores: (((busy1 - busy0) - (cpu1 - cpu0))
            / (timing.window.as_secs_f64() * server_cores.len().max(1) as f64))
            .clamp(0.0, 1.0),
        thread_cpu_s,
    };
    Ok((merged, summaries))
}

/// (scenario, contender, shards) → one merged result per run.
type Results = BTreeMap<(&'static str, &'static str, usize), Vec<Merged>>;

/// Runs the scaling benchmark.
pub fn scale(parser: lexopt::Parser) -> Result<(), String> {
    let opts = options(parser).map_err(|e| format!("scale: {e}"))?;
    let runs = opts.runs.unwrap_or(if opts.quick { 1 } else { 5 });
    let timing = if opts.quick {
        Timing {
            setup: Duration::from_millis(100),
            warmup: Duration::from_millis(50),
            window: Duration::from_millis(200),
        }
    } else {
        Timing {
            setup: Duration::from_millis(200),
            warmup: Duration::from_millis(300),
            window: Duration::from_millis(1500),
        }
    };
    let dir = bin_dir();
    let contenders = contenders(&dir);
    demo(&dir)?;
    let taskset = have_taskset();
    if !taskset {
        eprintln!("scale: taskset not found: running unpinned");
    }
    let allowed = allowed_cores();
    let plan = plan(&allowed, &opts);
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut results: Results = BTreeMap::new();
    let mut raw = Vec::new();
    for scenario in SCENARIOS {
        for run in 0..runs {
            let order = (0..contenders.len()).map(|i| &contenders[(i + run) % contenders.len()]);
            for c in order {
                let mut shard_order = opts.shards.clone();
                if run % 2 == 1 {
                    shard_order.reverse();
                }
                for &n in &shard_order {
                    let cores = &plan.server[&n];
                    let conns = if opts.same_conns {
                        scenario.conns_per_shard
                    } else {
                        scenario.conns_per_shard * n
                    };
                    let gens = plan.generators.min(conns);
                    let load: Vec<u32> =
                        (0..gens).map(|i| plan.load[i % plan.load.len()]).collect();
                    let what = format!("{} run {} {} x{n}", scenario.name, run + 1, c.name);
                    let (server, addr) = start_server(c, n, cores, taskset)?;
                    let pid = server.0.id();
                    let (merged, summaries) = measure(
                        &me, scenario, &addr, pid, cores, conns, &load, gens, &timing, taskset,
                        &what,
                    )?;
                    drop(server);
                    eprintln!(
                        "{:<18} run {} {:<6} N={n:<2} {:>10.0} {}/s {:>7.3} CPU µs/{} p99 {:>8.1} µs ({gens} gen; others {:.0}% of the server's cores)",
                        scenario.name,
                        run + 1,
                        c.name,
                        merged.rate,
                        scenario.unit,
                        merged.server_cpu_us_per_op,
                        scenario.unit,
                        merged.p99_us,
                        merged.others_on_server_cores * 100.0,
                    );
                    raw.push(
                        serde_json::to_string(&Record {
                            scenario: scenario.name,
                            run: run + 1,
                            contender: c.name,
                            shards: n,
                            server_cores: cores,
                            load_cores: &load,
                            conns,
                            merged: &merged,
                            generators: &summaries,
                        })
                        .map_err(|e| e.to_string())?,
                    );
                    results
                        .entry((scenario.name, c.name, n))
                        .or_default()
                        .push(merged);
                }
            }
        }
    }
    let json_path = dir.join("bench-scale.json");
    std::fs::write(&json_path, format!("[\n{}\n]\n", raw.join(",\n")))
        .map_err(|e| e.to_string())?;
    print_table(&results, &contenders, &opts, &plan, runs, taskset);
    println!("raw results: {}", json_path.display());
    Ok(())
}

/// The median over the runs of `f(run of a) / g(run of b)`, runs paired.
fn paired(a: &[Merged], b: &[Merged], f: impl Fn(&Merged, &Merged) -> f64) -> f64 {
    let v: Vec<f64> = a
        .iter()
        .zip(b)
        .map(|(x, y)| f(x, y))
        .filter(|r| r.is_finite())
        .collect();
    median(v)
}

fn fmt(v: f64, places: usize, width: usize) -> String {
    if v.is_finite() {
        format!("{v:>width$.places$}")
    } else {
        format!("{:>width$}", "-")
    }
}

fn print_table(
    results: &Results,
    contenders: &[Contender],
    opts: &Options,
    plan: &Plan,
    runs: usize,
    taskset: bool,
) {
    println!(
        "\nEcho servers on N threads, medians of {runs} run(s){}; load: up to {} generator \
         process(es) on core(s) {}.",
        if taskset { "" } else { ", unpinned" },
        plan.generators,
        cores_text(&plan.load)
    );
    println!(
        "rate = sum over the generators; CPU = server CPU over the shared window / all ops; \
         p99 = the largest generator p99;"
    );
    println!(
        "x mio = contender / mio at the same N, vs N=1 = CPU per op / the same contender's at \
         N=1, E(N) = rate(N) / (N * rate(1)): medians of ratios within one run."
    );
    for scenario in SCENARIOS {
        let unit = scenario.unit;
        if opts.same_conns {
            println!(
                "\n{} ({} connections for every N: --same-conns)",
                scenario.name, scenario.conns_per_shard
            );
        } else {
            println!(
                "\n{} ({} connections per shard)",
                scenario.name, scenario.conns_per_shard
            );
        }
        println!(
            "  {:<6} {:>3} {:>9} {:>11} {:>6} {:>11} {:>6} {:>7} {:>9} {:>5} {:>9} {:>6} {:>6}",
            "server",
            "N",
            "cores",
            format!("{unit}/s"),
            "x mio",
            format!("CPU µs/{unit}"),
            "x mio",
            "vs N=1",
            "p99 µs",
            "E(N)",
            "thr max/min",
            "csw/op",
            "other"
        );
        for c in contenders {
            for &n in &opts.shards {
                let Some(mine) = results.get(&(scenario.name, c.name, n)) else {
                    continue;
                };
                let mio = results
                    .get(&(scenario.name, "mio", n))
                    .map_or(&[][..], |v| &v[..]);
                let one = results
                    .get(&(scenario.name, c.name, 1))
                    .map_or(&[][..], |v| &v[..]);
                let rate = median(mine.iter().map(|m| m.rate).collect());
                let cpu = median(mine.iter().map(|m| m.server_cpu_us_per_op).collect());
                // churn records no latencies: its p99 is 0, shown as "-".
                let p99 = median(mine.iter().map(|m| m.p99_us).collect());
                let p99 = if p99 > 0.0 { p99 } else { f64::NAN };
                let csw = median(mine.iter().map(|m| m.server_csw_per_op).collect());
                let other = median(mine.iter().map(|m| m.others_on_server_cores).collect());
                let rate_x = paired(mine, mio, |a, b| a.rate / b.rate);
                let cpu_x = paired(mine, mio, |a, b| {
                    a.server_cpu_us_per_op / b.server_cpu_us_per_op
                });
                let vs_one = paired(mine, one, |a, b| {
                    a.server_cpu_us_per_op / b.server_cpu_us_per_op
                });
                let e = paired(mine, one, |a, b| a.rate / (n as f64 * b.rate));
                // The spread of work over the N busiest threads.
                let spread = median(
                    mine.iter()
                        .map(|m| {
                            let top = &m.thread_cpu_s[..n.min(m.thread_cpu_s.len())];
                            match (top.first(), top.last()) {
                                (Some(max), Some(min)) if *min > 0.0 => max / min,
                                _ => f64::NAN,
                            }
                        })
                        .collect(),
                );
                println!(
                    "  {:<6} {n:>3} {:>9} {} {} {} {} {} {} {} {} {} {:>5.0}%",
                    c.name,
                    cores_text(&plan.server[&n]),
                    fmt(rate, 0, 11),
                    fmt(rate_x, 2, 5) + "x",
                    fmt(cpu, 3, 11),
                    fmt(cpu_x, 2, 5) + "x",
                    fmt(vs_one, 3, 7),
                    fmt(p99, 1, 9),
                    fmt(e, 2, 5),
                    fmt(spread, 2, 9),
                    fmt(csw, 3, 6),
                    other * 100.0,
                );
            }
        }
    }
}
