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
use crate::tlsload::Certs;

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

/// The TLS contenders (the demo and every `--extra` one with the
/// certificate flags added), all given the same certificate and key.
/// With the `aws-lc-rs` feature, `mio-tls-awslc` too: the raw contender
/// on the other provider, for the provider choice.
fn tls_contenders(dir: &Path, plain: &[Contender], certs: &Certs) -> Vec<Contender> {
    let cert_args = |mut args: Vec<String>| {
        args.extend([
            "--tls-cert".to_string(),
            certs.cert.display().to_string(),
            "--tls-key".to_string(),
            certs.key.display().to_string(),
        ]);
        args
    };
    let c = |name: &str, bin: &str, args: &[&str]| Contender {
        name: name.to_string(),
        bin: dir.join(bin),
        args: cert_args(args.iter().map(|a| a.to_string()).collect()),
    };
    let mut v = vec![
        c(TLS_BASE, "mio-tls-echo", &[]),
        c("tokio-tls", "tokio-tls-echo", &[]),
    ];
    if cfg!(feature = "aws-lc-rs") {
        v.push(c(
            "mio-tls-awslc",
            "mio-tls-echo",
            &["--provider", "aws-lc-rs"],
        ));
    }
    // The demo, then every --extra: selector-demo-compatible binaries.
    v.extend(
        plain
            .iter()
            .filter(|p| p.args.first().map(String::as_str) == Some("--protocol"))
            .map(|p| Contender {
                name: p.name.clone(),
                bin: p.bin.clone(),
                args: cert_args(p.args.clone()),
            }),
    );
    v
}

/// What every TLS ratio is taken against: raw mio + rustls.
const TLS_BASE: &str = "mio-tls";

struct Scenario {
    name: &'static str,
    loadgen: Vec<String>,
}

/// The TLS scenarios; `ca` is the CA the load generator trusts.
fn tls_scenarios(quick: bool, ca: &Path) -> Vec<Scenario> {
    // `--quick` (CI) only proves the TLS path works: the shortest windows.
    let (warm, window, idle_n) = if quick {
        ("0.02", "0.1", 100)
    } else {
        ("0.3", "1.5", 5000)
    };
    let ca = ca.display().to_string();
    let sc = |name: &'static str, args: &[&str], timed: bool| Scenario {
        name,
        loadgen: args
            .iter()
            .map(|s| s.to_string())
            .chain(["--ca".to_string(), ca.clone()])
            .chain(
                if timed {
                    vec!["--warmup", warm, "--window", window]
                } else {
                    vec!["--window", if quick { "0.05" } else { "1" }]
                }
                .into_iter()
                .map(String::from),
            )
            .collect(),
    };
    let idle_n = idle_n.to_string();
    vec![
        sc(
            "tls-handshake-full-x64",
            &["tls-handshake", "--conns", "64"],
            true,
        ),
        sc(
            "tls-handshake-resumed-x64",
            &["tls-handshake", "--conns", "64", "--resume"],
            true,
        ),
        sc(
            "tls-pingpong-64B-x64",
            &["tls-pingpong", "--conns", "64"],
            true,
        ),
        sc("tls-bulk-x8", &["tls-bulk", "--conns", "8"], true),
        sc("tls-idle", &["tls-idle", "--conns", &idle_n], false),
    ]
}

fn scenarios(quick: bool) -> Vec<Scenario> {
    let (warm, window, idle_n) = if quick {
        ("0.05", "0.2", 100)
    } else {
        ("0.3", "1.5", 5000)
    };
    let sc = |name: &'static str, args: &[&str]| Scenario {
        name,
        loadgen: args
            .iter()
            .map(|s| s.to_string())
            .chain([
                "--warmup".into(),
                warm.into(),
                "--window".into(),
                window.into(),
            ])
            .collect(),
    };
    vec![
        sc("pingpong-64B-x1", &["pingpong", "--conns", "1"]),
        sc("pingpong-64B-x64", &["pingpong", "--conns", "64"]),
        sc("pingpong-64B-x512", &["pingpong", "--conns", "512"]),
        sc("bulk-x8", &["bulk", "--conns", "8"]),
        sc("churn-x16", &["churn", "--conns", "16"]),
        Scenario {
            name: "idle",
            loadgen: vec![
                "idle".into(),
                "--conns".into(),
                idle_n.to_string(),
                "--window".into(),
                if quick { "0.2".into() } else { "1".into() },
            ],
        },
    ]
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

/// Starts `cmd` (a server binary `bin`, its arguments given, pinned as
/// the caller wants) with `--port 0` and reads its first stdout line,
/// `listening on HOST:PORT` (anything after the address, such as the
/// demo's ` (tls)`, is ignored). Shared with `bench scale`.
pub(crate) fn start_server(mut cmd: Command, bin: &Path) -> Result<(Server, String), String> {
    cmd.args(["--port", "0"])
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
        .strip_prefix("listening on ")
        .and_then(|rest| rest.split_whitespace().next())
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
    /// The plain scenarios (not with `--tls`).
    plain: bool,
    /// The TLS scenarios (not with `--no-tls`).
    tls: bool,
    /// `--only NAME`: these scenarios alone (all when empty).
    only: Vec<String>,
}

fn options(mut parser: lexopt::Parser) -> Result<Options, lexopt::Error> {
    use lexopt::prelude::*;
    let mut o = Options {
        quick: false,
        runs: None,
        extras: Vec::new(),
        plain: true,
        tls: true,
        only: Vec::new(),
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
            Long("tls") => o.plain = false,
            Long("no-tls") => o.tls = false,
            Long("only") => o.only.push(parser.value()?.string()?),
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(o)
}

/// Runs the comparison: the plain scenarios, then the TLS ones (with a
/// certificate generated under the target directory). Returns an error
/// message on any failure.
pub fn compare(parser: lexopt::Parser) -> Result<(), String> {
    let opts = options(parser).map_err(|e| format!("compare: {e}"))?;
    if !opts.plain && !opts.tls {
        return Err("compare: --tls and --no-tls leave nothing to run".into());
    }
    let quick = opts.quick;
    let runs = opts.runs.unwrap_or(if quick { 1 } else { 5 });
    let dir = bin_dir();
    let mut contenders = contenders(&dir);
    for spec in &opts.extras {
        let c = extra(spec, &contenders).map_err(|e| format!("compare: {e}"))?;
        contenders.push(c);
    }
    demo(&dir)?;
    let taskset = have_taskset();
    if !taskset {
        eprintln!("taskset not found: running unpinned");
    }
    let certs = crate::tlsload::write_certs(&dir.join("bench-tls"))?;
    let tls = tls_contenders(&dir, &contenders, &certs);
    let mut plain_scenarios = if opts.plain {
        scenarios(quick)
    } else {
        Vec::new()
    };
    let mut tls_scenarios = if opts.tls {
        tls_scenarios(quick, &certs.ca)
    } else {
        Vec::new()
    };
    if !opts.only.is_empty() {
        let known: Vec<&str> = plain_scenarios
            .iter()
            .chain(&tls_scenarios)
            .map(|s| s.name)
            .collect();
        if let Some(unknown) = opts.only.iter().find(|n| !known.contains(&n.as_str())) {
            return Err(format!(
                "compare: --only {unknown}: no such scenario here (there are: {})",
                known.join(", ")
            ));
        }
        plain_scenarios.retain(|s| opts.only.iter().any(|n| n == s.name));
        tls_scenarios.retain(|s| opts.only.iter().any(|n| n == s.name));
    }
    let mut raw = Vec::new();
    let plain_results = run_all(&plain_scenarios, &contenders, runs, taskset, &mut raw)?;
    let tls_results = run_all(&tls_scenarios, &tls, runs, taskset, &mut raw)?;
    // One record per line: easy to grep, and still one JSON array.
    let json_path = dir.join("bench-compare.json");
    std::fs::write(&json_path, format!("[\n{}\n]\n", raw.join(",\n")))
        .map_err(|e| e.to_string())?;
    let how = if taskset {
        ", server on core 0, load on core 1"
    } else {
        ", unpinned"
    };
    if !plain_scenarios.is_empty() {
        println!(
            "\nEcho servers, medians of {runs} run(s){how}; ratio = median over the runs of \
             contender / mio in the same run"
        );
        print_table(&plain_results, &contenders, "mio");
    }
    if !tls_scenarios.is_empty() {
        println!(
            "\nTLS echo servers (rustls, ring unless named), medians of {runs} run(s){how}; \
             ratio = median over the runs of contender / {TLS_BASE} in the same run"
        );
        print_table(&tls_results, &tls, TLS_BASE);
    }
    println!("raw results: {}", json_path.display());
    Ok(())
}

/// Every contender through every scenario, `runs` times, in turn within
/// each run; appends each result to `raw` as a JSON record.
fn run_all<'a>(
    scenarios: &'a [Scenario],
    contenders: &'a [Contender],
    runs: usize,
    taskset: bool,
    raw: &mut Vec<String>,
) -> Result<Results<'a>, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    // scenario -> contender -> runs of parsed results
    let mut results: Results = BTreeMap::new();
    for scenario in scenarios {
        for run in 0..runs {
            // Each run starts with the next contender, so a slow spell of
            // the machine does not always land on the same one.
            let order = (0..contenders.len()).map(|i| &contenders[(i + run) % contenders.len()]);
            for c in order {
                let mut cmd = pinned(0, &c.bin, taskset);
                cmd.args(&c.args);
                let (server, addr) = start_server(cmd, &c.bin)?;
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
                eprintln!("{:<26} run {} {:<9} {json}", scenario.name, run + 1, c.name);
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
    Ok(results)
}

/// A column of the table: which figure of a summary, and its heading.
type Column = (fn(&Summary) -> Option<f64>, &'static str);

/// One table: each scenario's figures for each contender, with the ratio
/// to `base` measured in the same run.
fn print_table(results: &Results, contenders: &[Contender], base: &str) {
    let columns: &[(&str, &[Column])] = &[
        (
            "tls-handshake",
            &[
                (|r| Some(r.ops_per_s), "hs/s"),
                (|r| Some(r.server_cpu_us_per_op), "CPU µs/hs"),
                (|r| Some(r.p50_us), "p50 µs"),
                (|r| Some(r.p99_us), "p99 µs"),
                (|r| r.resumed, "resumed"),
            ],
        ),
        (
            "tls-pingpong",
            &[
                (|r| Some(r.ops_per_s), "rt/s"),
                (|r| Some(r.server_cpu_us_per_op), "CPU µs/rt"),
                (|r| Some(r.p50_us), "p50 µs"),
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
            "tls-idle",
            &[
                (|r| r.rss_kib_per_conn, "KiB/conn"),
                (|r| Some(r.server_cpu_us_per_op), "idle CPU µs/conn"),
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

#[cfg(test)]
mod tests {
    use super::options;

    #[test]
    fn only_is_repeatable_and_keeps_its_order() {
        let o = options(lexopt::Parser::from_args([
            "--only",
            "churn-x16",
            "--only=idle",
        ]))
        .expect("valid options");
        assert_eq!(o.only, ["churn-x16", "idle"]);
        assert!(o.plain && o.tls);
        let none = options(lexopt::Parser::from_args(["--no-tls"])).expect("valid options");
        assert!(none.only.is_empty());
        assert!(options(lexopt::Parser::from_args(["--only"])).is_err());
    }
}
