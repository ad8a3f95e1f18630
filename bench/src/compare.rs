//! `bench compare`: every contender through every scenario, in turn within
//! each run (each run starting with the next contender), server pinned to
//! core 0 and load generator to core 1 (when `taskset` exists), medians of
//! the runs (5 by default); each ratio to raw mio is the median over the
//! runs of the ratio measured within one run, so a slow spell of the
//! machine cancels out instead of landing on one contender.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde::Serialize;

use crate::loadgen::Summary;

/// A server under test: a binary started as a child process with
/// `--port 0` and `args`, whose first stdout line is `listening on
/// HOST:PORT`.
struct Contender {
    name: String,
    bin: PathBuf,
    args: Vec<String>,
}

/// How the axon contender (and every `--extra` one) is started.
const DEMO_ARGS: &[&str] = &["--protocol", "echo"];

/// The built-in contenders, found next to this binary.
fn contenders(dir: &Path) -> Vec<Contender> {
    let c = |name: &str, bin: &str, args: &[&str]| Contender {
        name: name.to_string(),
        bin: dir.join(bin),
        args: args.iter().map(|a| a.to_string()).collect(),
    };
    vec![
        c("mio", "mio-echo", &[]),
        c("tokio", "tokio-echo", &[]),
        c("axon", "selector-demo", DEMO_ARGS),
        // mio's documented read-until-WouldBlock pattern, for reference.
        c("mio-strict", "mio-echo", &["--strict"]),
    ]
}

/// `--extra NAME=PATH`: another `selector-demo`-compatible binary (an
/// older build, say), started exactly as the axon contender is.
fn extra(spec: &str, taken: &[Contender]) -> Result<Contender, String> {
    let (name, path) = spec
        .split_once('=')
        .ok_or_else(|| format!("--extra {spec:?}: expected NAME=PATH"))?;
    if name.is_empty() || path.is_empty() {
        return Err(format!("--extra {spec:?}: expected NAME=PATH"));
    }
    if taken.iter().any(|c| c.name == name) {
        return Err(format!(
            "--extra {spec:?}: there is already a contender {name:?}"
        ));
    }
    let bin = std::fs::canonicalize(path).map_err(|e| format!("--extra {spec:?}: {path}: {e}"))?;
    if !bin.is_file() {
        return Err(format!("--extra {spec:?}: {path} is not a file"));
    }
    Ok(Contender {
        name: name.to_string(),
        bin,
        args: DEMO_ARGS.iter().map(|a| a.to_string()).collect(),
    })
}

/// The TLS contenders (`--tls`), serving `pki`'s certificate: raw mio +
/// rustls (the reference), tokio-rustls, and ours (last: `--extra` ones
/// are started as it is).
fn tls_contenders(dir: &Path, pki: &crate::tlsload::Pki) -> Vec<Contender> {
    let files = |cert: &str, key: &str| {
        vec![
            cert.to_string(),
            pki.cert.display().to_string(),
            key.to_string(),
            pki.key.display().to_string(),
        ]
    };
    let mut demo = DEMO_ARGS.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    demo.extend(files("--tls-cert", "--tls-key"));
    vec![
        Contender {
            name: "mio+rustls".into(),
            bin: dir.join("mio-tls-echo"),
            args: files("--cert", "--key"),
        },
        Contender {
            name: "tokio-rustls".into(),
            bin: dir.join("tokio-tls-echo"),
            args: files("--cert", "--key"),
        },
        Contender {
            name: "axon".into(),
            bin: dir.join("selector-demo"),
            args: demo,
        },
    ]
}

/// The TLS scenarios (`--tls`): as [`scenarios`], each also told `--ca`.
fn tls_scenarios(quick: bool, ca: &Path) -> Vec<Scenario> {
    let ca = ca.display().to_string();
    let tls = |args: &[&str]| -> Vec<String> {
        args.iter()
            .map(|s| s.to_string())
            .chain(["--ca".into(), ca.clone()])
            .collect()
    };
    timed(
        quick,
        vec![
            (
                "tls-handshake-x64",
                tls(&["tls-handshake", "--conns", "64"]),
            ),
            // Few at once: each finds a ticket of its own in the session cache.
            ("tls-resume-x4", tls(&["tls-resume", "--conns", "4"])),
            (
                "tls-pingpong-64B-x64",
                tls(&["tls-pingpong", "--conns", "64"]),
            ),
            ("tls-bulk-x8", tls(&["tls-bulk", "--conns", "8"])),
        ],
        ("tls-idle", tls(&["tls-idle"])),
    )
}

struct Scenario {
    name: &'static str,
    loadgen: Vec<String>,
}

fn scenarios(quick: bool) -> Vec<Scenario> {
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    timed(
        quick,
        vec![
            ("pingpong-64B-x1", args(&["pingpong", "--conns", "1"])),
            ("pingpong-64B-x64", args(&["pingpong", "--conns", "64"])),
            ("pingpong-64B-x512", args(&["pingpong", "--conns", "512"])),
            ("bulk-x8", args(&["bulk", "--conns", "8"])),
            ("churn-x16", args(&["churn", "--conns", "16"])),
        ],
        ("idle", args(&["idle"])),
    )
}

/// The timed scenarios, each given its warm-up and window, then the idle
/// one, given its connection count and idle window.
fn timed(
    quick: bool,
    windowed: Vec<(&'static str, Vec<String>)>,
    idle: (&'static str, Vec<String>),
) -> Vec<Scenario> {
    let (warm, window, idle_n, idle_for) = if quick {
        ("0.05", "0.2", "100", "0.2")
    } else {
        ("0.3", "1.5", "5000", "1")
    };
    let with = |mut args: Vec<String>, extra: [&str; 4]| {
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let mut all: Vec<Scenario> = windowed
        .into_iter()
        .map(|(name, args)| Scenario {
            name,
            loadgen: with(args, ["--warmup", warm, "--window", window]),
        })
        .collect();
    all.push(Scenario {
        name: idle.0,
        loadgen: with(idle.1, ["--conns", idle_n, "--window", idle_for]),
    });
    all
}

/// Parsed results: scenario → contender → one summary per run.
type Results<'a> = BTreeMap<&'a str, BTreeMap<&'a str, Vec<Summary>>>;

/// One line of `bench-compare.json`.
#[derive(Serialize)]
struct Record<'a> {
    scenario: &'a str,
    run: usize,
    contender: &'a str,
    result: &'a Summary,
}

pub(crate) fn have_taskset() -> bool {
    Command::new("taskset")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub(crate) fn pinned(core: u32, bin: &Path, taskset: bool) -> Command {
    if taskset {
        let mut c = Command::new("taskset");
        c.arg("-c").arg(core.to_string()).arg(bin);
        c
    } else {
        Command::new(bin)
    }
}

pub(crate) struct Server(pub(crate) Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(bin: &Path, args: &[&str], taskset: bool) -> Result<(Server, String), String> {
    let mut cmd = pinned(0, bin, taskset);
    cmd.args(["--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .env("RUST_LOG", "warn");
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let server = Server(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let addr = line
        .trim()
        .trim_end_matches(" (tls)")
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("{}: unexpected first line {line:?}", bin.display()))?
        .to_string();
    Ok((server, addr))
}

/// Parses the JSON object the load generator prints.
pub(crate) fn parse(json: &str) -> Result<Summary, String> {
    serde_json::from_str(json)
        .map_err(|e| format!("unreadable load generator result {json:?}: {e}"))
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

pub(crate) fn bin_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `selector-demo` next to this binary, built first if it is missing.
pub(crate) fn demo(dir: &Path) -> Result<PathBuf, String> {
    let demo = dir.join("selector-demo");
    if !demo.exists() {
        eprintln!("building selector-demo …");
        let profile = if dir.ends_with("release") {
            vec!["--release"]
        } else {
            vec![]
        };
        let ok = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "-p", "kamaelia-examples", "--bin", "selector-demo"])
            .args(profile)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err("could not build selector-demo".into());
        }
    }
    Ok(demo)
}

/// `compare`'s options.
struct Options {
    quick: bool,
    runs: Option<usize>,
    extras: Vec<String>,
    tls: bool,
}

fn options(mut parser: lexopt::Parser) -> Result<Options, lexopt::Error> {
    use lexopt::prelude::*;
    let mut o = Options {
        quick: false,
        runs: None,
        extras: Vec::new(),
        tls: false,
    };
    while let Some(arg) = parser.next()? {
        match arg {
            Long("quick") => o.quick = true,
            Long("runs") => {
                let runs: usize = crate::value(&mut parser, "--runs")?;
                if runs == 0 {
                    return Err("--runs must be at least 1".into());
                }
                o.runs = Some(runs);
            }
            Long("extra") => o.extras.push(parser.value()?.string()?),
            Long("tls") => o.tls = true,
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(o)
}

/// Runs the comparison. Returns an error message on any failure.
pub fn compare(parser: lexopt::Parser) -> Result<(), String> {
    let opts = options(parser).map_err(|e| format!("compare: {e}"))?;
    let quick = opts.quick;
    let runs = opts.runs.unwrap_or(if quick { 1 } else { 5 });
    let dir = bin_dir();
    let pki = if opts.tls {
        Some(crate::tlsload::Pki::make(&dir.join("bench-tls"))?)
    } else {
        None
    };
    let mut contenders = match &pki {
        Some(pki) => tls_contenders(&dir, pki),
        None => contenders(&dir),
    };
    for spec in &opts.extras {
        let mut c = extra(spec, &contenders).map_err(|e| format!("compare: {e}"))?;
        if let Some(pki) = &pki {
            // Started as the axon contender is: with the certificate.
            let axon = tls_contenders(&dir, pki).pop();
            c.args = axon.map(|a| a.args).unwrap_or_default();
        }
        contenders.push(c);
    }
    let base = contenders[0].name.clone();
    demo(&dir)?;
    let taskset = have_taskset();
    if !taskset {
        eprintln!("taskset not found: running unpinned");
    }
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    // scenario -> contender -> runs of parsed results
    let mut results: Results = BTreeMap::new();
    let mut raw = Vec::new();
    let scenarios = match &pki {
        Some(pki) => tls_scenarios(quick, &pki.ca),
        None => scenarios(quick),
    };
    for scenario in &scenarios {
        for run in 0..runs {
            // Each run starts with the next contender, so a slow spell of
            // the machine does not always land on the same one.
            let order = (0..contenders.len()).map(|i| &contenders[(i + run) % contenders.len()]);
            for c in order {
                let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
                let (server, addr) = start_server(&c.bin, &args, taskset)?;
                let pid = server.0.id();
                let out = pinned(1, &me, taskset)
                    .arg("loadgen")
                    .args(&scenario.loadgen)
                    .args(["--addr", &addr, "--pid", &pid.to_string()])
                    .output()
                    .map_err(|e| e.to_string())?;
                drop(server);
                let text = String::from_utf8_lossy(&out.stdout);
                let json = text
                    .lines()
                    .find_map(|l| l.strip_prefix("RESULT "))
                    .ok_or_else(|| {
                        format!(
                            "{} / {}: load generator failed: {}",
                            scenario.name,
                            c.name,
                            String::from_utf8_lossy(&out.stderr)
                        )
                    })?;
                eprintln!("{:<18} run {} {:<6} {json}", scenario.name, run + 1, c.name);
                let summary =
                    parse(json).map_err(|e| format!("{} / {}: {e}", scenario.name, c.name))?;
                raw.push(
                    serde_json::to_string(&Record {
                        scenario: scenario.name,
                        run: run + 1,
                        contender: &c.name,
                        result: &summary,
                    })
                    .map_err(|e| e.to_string())?,
                );
                results
                    .entry(scenario.name)
                    .or_default()
                    .entry(&c.name)
                    .or_default()
                    .push(summary);
            }
        }
    }
    // One record per line: easy to grep, and still one JSON array.
    let json_path = dir.join("bench-compare.json");
    std::fs::write(&json_path, format!("[\n{}\n]\n", raw.join(",\n")))
        .map_err(|e| e.to_string())?;
    print_table(&results, &contenders, runs, taskset, &base);
    println!("raw results: {}", json_path.display());
    Ok(())
}

/// A column of the table: which figure of a summary, and its heading.
type Column = (fn(&Summary) -> Option<f64>, &'static str);

fn print_table(
    results: &Results,
    contenders: &[Contender],
    runs: usize,
    taskset: bool,
    base: &str,
) {
    println!(
        "\nEcho servers, medians of {runs} run(s){}; ratio = median over the runs of \
         contender / {base} in the same run",
        if taskset {
            ", server on core 0, load on core 1"
        } else {
            ", unpinned"
        }
    );
    let columns: &[(&str, &[Column])] = &[
        (
            "tls-handshake",
            &[
                (|r| Some(r.ops_per_s), "handshakes/s"),
                (|r| Some(r.server_cpu_us_per_op), "CPU µs/hs"),
                (|r| Some(r.p99_us), "p99 µs"),
            ],
        ),
        (
            "tls-resume",
            &[
                (|r| Some(r.ops_per_s), "handshakes/s"),
                (|r| Some(r.server_cpu_us_per_op), "CPU µs/hs"),
            ],
        ),
        (
            "tls-idle",
            &[
                (|r| r.rss_kib_per_conn, "KiB/conn"),
                (|r| Some(r.server_cpu_us_per_op), "idle CPU µs/conn"),
            ],
        ),
        (
            "tls-pingpong",
            &[
                (|r| Some(r.ops_per_s), "rt/s"),
                (|r| Some(r.server_cpu_us_per_op), "CPU µs/rt"),
                (|r| Some(r.p99_us), "p99 µs"),
            ],
        ),
        (
            "tls-bulk",
            &[
                (|r| Some(r.mb_per_s), "MB/s"),
                (|r| Some(r.server_cpu_us_per_op), "CPU µs/MB"),
            ],
        ),
        (
            "pingpong",
            &[
                (|r| Some(r.ops_per_s), "rt/s"),
                (|r| Some(r.server_cpu_us_per_op), "CPU µs/rt"),
                (|r| Some(r.p50_us), "p50 µs"),
                (|r| Some(r.p99_us), "p99 µs"),
                (|r| Some(r.p999_us), "p99.9 µs"),
            ],
        ),
        (
            "bulk",
            &[
                (|r| Some(r.mb_per_s), "MB/s"),
                (|r| Some(r.server_cpu_us_per_op), "CPU µs/MB"),
            ],
        ),
        (
            "churn",
            &[
                (|r| Some(r.ops_per_s), "conn/s"),
                (|r| Some(r.server_cpu_us_per_op), "CPU µs/conn"),
            ],
        ),
        (
            "idle",
            &[
                (|r| r.rss_kib_per_conn, "KiB/conn"),
                (|r| Some(r.server_cpu_us_per_op), "idle CPU µs/conn"),
            ],
        ),
    ];
    let width = contenders
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0)
        .max(8);
    for (scenario, by) in results {
        let cols = columns
            .iter()
            .find(|(prefix, _)| scenario.starts_with(prefix))
            .map(|(_, c)| *c)
            .unwrap_or(&[]);
        println!("\n{scenario}");
        print!("  {:<width$}", "server");
        for (_, label) in cols {
            print!(" {label:>14} {:>7}", "ratio");
        }
        println!();
        let values = |c: &str, figure: fn(&Summary) -> Option<f64>| -> Vec<f64> {
            by.get(c).map_or(Vec::new(), |rs| {
                rs.iter().map(|r| figure(r).unwrap_or(f64::NAN)).collect()
            })
        };
        for c in contenders {
            print!("  {:<width$}", c.name);
            for (figure, _) in cols {
                let mine = values(&c.name, *figure);
                let base = values(base, *figure);
                let v = median(mine.clone());
                let ratios: Vec<f64> = mine
                    .iter()
                    .zip(&base)
                    .filter(|(_, b)| b.abs() > 1e-12)
                    .map(|(m, b)| m / b)
                    .collect();
                let ratio = if ratios.is_empty() {
                    f64::NAN
                } else {
                    median(ratios)
                };
                if ratio.is_nan() {
                    print!(" {v:>14.3} {:>7}", "-"); // nothing to compare against (0)
                } else {
                    print!(" {v:>14.3} {ratio:>6.2}x");
                }
            }
            println!();
        }
    }
}
