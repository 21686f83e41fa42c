//! bench-chart: small multiples of the side-by-side benchmark, as one SVG.
//!
//! ```text
//! bench-chart RESULTS_DIR_OR_PEERS_JSONL [OUT.svg]     (default docs/bench.svg)
//! ```
//!
//! Reads the JSON lines of a `shared/bench/run_all.sh` results folder
//! (`peers.jsonl`, which holds procpool-bench's lines too; `limits.jsonl` and
//! `machine.txt` beside it when present) and draws one horizontal bar chart
//! per key scenario, one bar per executor: the median of `value` over the
//! runs. A scenario an executor cannot do ("unsupported", "failed", ...) is
//! written instead of a bar. Where the machine's physical floor applies
//! (latency: pipe ping-pong; payload: pipe echo; startup: spawn+exec), it is
//! a dashed line. The SVG is written by hand: it needs no font files and no
//! dependencies.

use procpool_benches::median;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// One chart: which scenario, how it is labelled, and the physical floor
/// drawn on it (a `physical-floor` scenario of limits.jsonl, and the factor
/// from its unit to the panel's).
struct Panel {
    scenario: &'static str,
    title: &'static str,
    unit: &'static str,
    higher_is_better: bool,
    floor: Option<(&'static str, f64)>,
}

const fn panel(
    scenario: &'static str,
    title: &'static str,
    unit: &'static str,
    higher_is_better: bool,
    floor: Option<(&'static str, f64)>,
) -> Panel {
    Panel {
        scenario,
        title,
        unit,
        higher_is_better,
        floor,
    }
}

const PANELS: &[Panel] = &[
    panel(
        "latency",
        "latency: submit(noop) -> result, median",
        "us",
        false,
        Some(("pipe_pingpong_8B", 1.0)),
    ),
    panel(
        "throughput_submit",
        "throughput: 20k submit(noop), then results",
        "tasks/s",
        true,
        None,
    ),
    panel(
        "throughput_map",
        "throughput: map(square, 200k, chunksize 1000)",
        "items/s",
        true,
        None,
    ),
    panel(
        "payload",
        "payload: 16 MiB echo, each way",
        "MB/s",
        true,
        Some(("pipe_echo_16MiB", 1.0)),
    ),
    panel(
        "cancel_running",
        "stop a running task -> new task done",
        "ms",
        false,
        None,
    ),
    panel(
        "crash_detect",
        "crash (exit 1) -> future fails",
        "ms",
        false,
        None,
    ),
    panel(
        "timeout_kill",
        "0.2 s time limit on a 60 s task -> fails",
        "ms",
        false,
        None,
    ),
    panel(
        "startup",
        "startup: new pool -> first result",
        "ms",
        false,
        Some(("spawn_exec_first_byte", 1.0)),
    ),
    panel(
        "rss_per_worker",
        "memory: VmRSS per worker",
        "MiB",
        false,
        None,
    ),
];

const EXEC_ORDER: &[&str] = &[
    "procpool",
    "procspawn",
    "cpython-fork",
    "cpython-spawn",
    "cpython-forkserver",
    "loky",
    "pebble",
    "deadpool",
];

const PANEL_W: f64 = 440.0;
const LABEL_W: f64 = 130.0;
const BAR_W: f64 = 200.0;
const ROW_H: f64 = 22.0;
const COLS: usize = 3;

/// Per (executor, scenario): the numeric values and the other values.
#[derive(Default)]
struct Cell {
    nums: Vec<f64>,
    words: Vec<String>,
}

fn load(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn fmt_num(x: f64) -> String {
    let ax = x.abs();
    if ax >= 10000.0 {
        let s = format!("{:.0}", x);
        // thousands separators
        let (sign, digits) = s.split_at(usize::from(s.starts_with('-')));
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("{sign}{out}")
    } else if ax >= 100.0 {
        format!("{:.0}", x)
    } else if ax >= 10.0 {
        format!("{:.1}", x)
    } else {
        format!("{:.2}", x)
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn executor_rank(e: &str) -> (usize, String) {
    (
        EXEC_ORDER.iter().position(|x| *x == e).unwrap_or(99),
        e.to_owned(),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(input) = args.get(1).map(PathBuf::from) else {
        eprintln!("usage: bench-chart RESULTS_DIR_OR_PEERS_JSONL [OUT.svg]");
        std::process::exit(2);
    };
    let out = args
        .get(2)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("docs/bench.svg"));
    let (peers, dir) = if input.is_dir() {
        (input.join("peers.jsonl"), input.clone())
    } else {
        let dir = input.parent().map(Path::to_path_buf).unwrap_or_default();
        (input.clone(), dir)
    };
    let recs = load(&peers);
    if recs.is_empty() {
        eprintln!("bench-chart: no JSON lines in {}", peers.display());
        std::process::exit(1);
    }
    let floors = load(&dir.join("limits.jsonl"));
    let machine = fs::read_to_string(dir.join("machine.txt")).unwrap_or_default();

    let mut cells: HashMap<(String, String), Cell> = HashMap::new();
    let mut runs: BTreeMap<String, usize> = BTreeMap::new();
    let mut execs: Vec<String> = vec![];
    for r in &recs {
        let (Some(ex), Some(sc)) = (
            r.get("executor").and_then(Value::as_str),
            r.get("scenario").and_then(Value::as_str),
        ) else {
            continue;
        };
        if !execs.iter().any(|e| e == ex) {
            execs.push(ex.to_owned());
        }
        let c = cells.entry((ex.to_owned(), sc.to_owned())).or_default();
        match r.get("value") {
            Some(Value::Number(n)) => c.nums.push(n.as_f64().unwrap_or(f64::NAN)),
            Some(Value::Bool(b)) => c.words.push(b.to_string()),
            Some(Value::String(s)) => c.words.push(s.clone()),
            _ => c.words.push("?".into()),
        }
        if sc == "latency" {
            *runs.entry(ex.to_owned()).or_default() += 1;
        }
    }
    execs.sort_by_key(|e| executor_rank(e));
    let mut floor: HashMap<String, Vec<f64>> = HashMap::new();
    for r in &floors {
        if r.get("executor").and_then(Value::as_str) != Some("physical-floor") {
            continue;
        }
        if let (Some(sc), Some(v)) = (
            r.get("scenario").and_then(Value::as_str),
            r.get("value").and_then(Value::as_f64),
        ) {
            floor.entry(sc.to_owned()).or_default().push(v);
        }
    }

    let n_exec = execs.len().max(1);
    let panel_h = 44.0 + n_exec as f64 * ROW_H + 26.0;
    let rows = PANELS.len().div_ceil(COLS);
    let head_h = 64.0;
    let width = PANEL_W * COLS as f64 + 20.0;
    let height = head_h + panel_h * rows as f64 + 10.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(
        svg,
        "<rect x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" fill=\"white\"/>"
    );
    let n_runs = runs.values().copied().max().unwrap_or(0);
    let cpu = machine
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|s| s.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        .unwrap_or_default();
    let nproc = machine
        .lines()
        .find_map(|l| l.strip_prefix("nproc:"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let _ = writeln!(
        svg,
        "<text x=\"10\" y=\"24\" font-size=\"17\" font-weight=\"bold\">procpool and its peers, pool of 2 workers \
         (median of {n_runs} run(s))</text>"
    );
    let _ = writeln!(
        svg,
        "<text x=\"10\" y=\"44\" fill=\"#555\">{}{}; dashed line: the machine's physical floor (shared/bench/limits); \
         source: {}</text>",
        esc(&cpu),
        if nproc.is_empty() {
            String::new()
        } else {
            format!(", {nproc} CPUs")
        },
        esc(&dir
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default())
    );

    for (i, p) in PANELS.iter().enumerate() {
        let (sc, title, unit, higher, floor_sc) =
            (p.scenario, p.title, p.unit, p.higher_is_better, p.floor);
        let px = 10.0 + (i % COLS) as f64 * PANEL_W;
        let py = head_h + (i / COLS) as f64 * panel_h;
        let _ = writeln!(
            svg,
            "<rect x=\"{px}\" y=\"{py}\" width=\"{}\" height=\"{}\" fill=\"#fafafa\" stroke=\"#ddd\"/>",
            PANEL_W - 10.0,
            panel_h - 8.0
        );
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" font-weight=\"bold\">{}</text>",
            px + 8.0,
            py + 18.0,
            esc(title)
        );
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" fill=\"#666\" font-size=\"11\">{} - {} is better</text>",
            px + 8.0,
            py + 33.0,
            esc(unit),
            if higher { "higher" } else { "lower" }
        );
        let vals: Vec<(String, Option<f64>, String)> = execs
            .iter()
            .map(|e| match cells.get(&(e.clone(), sc.to_string())) {
                Some(c) if !c.nums.is_empty() => (e.clone(), Some(median(&c.nums)), String::new()),
                Some(c) => (
                    e.clone(),
                    None,
                    c.words.first().cloned().unwrap_or_default(),
                ),
                None => (e.clone(), None, "not measured".into()),
            })
            .collect();
        let floor_v = floor_sc.and_then(|(fs_, k)| floor.get(fs_).map(|v| median(v) * k));
        let max = vals
            .iter()
            .filter_map(|v| v.1)
            .chain(floor_v)
            .fold(0.0f64, f64::max)
            .max(f64::MIN_POSITIVE);
        let x0 = px + LABEL_W;
        let y0 = py + 44.0;
        for (j, (ex, v, word)) in vals.iter().enumerate() {
            let y = y0 + j as f64 * ROW_H;
            let mine = ex == "procpool";
            let _ = writeln!(
                svg,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"end\"{}>{}</text>",
                x0 - 6.0,
                y + 14.0,
                if mine { " font-weight=\"bold\"" } else { "" },
                esc(ex)
            );
            match v {
                Some(v) => {
                    let w = (v / max * BAR_W).max(1.0);
                    let _ = writeln!(
                        svg,
                        "<rect x=\"{x0}\" y=\"{}\" width=\"{w:.1}\" height=\"{}\" fill=\"{}\"/>",
                        y + 3.0,
                        ROW_H - 6.0,
                        if mine { "#d9480f" } else { "#74a9cf" }
                    );
                    let _ = writeln!(
                        svg,
                        "<text x=\"{:.1}\" y=\"{}\"{}>{}</text>",
                        x0 + w + 4.0,
                        y + 14.0,
                        if mine { " font-weight=\"bold\"" } else { "" },
                        fmt_num(*v)
                    );
                }
                None => {
                    let _ = writeln!(
                        svg,
                        "<text x=\"{}\" y=\"{}\" fill=\"#999\" font-style=\"italic\">{}</text>",
                        x0 + 2.0,
                        y + 14.0,
                        esc(word)
                    );
                }
            }
        }
        if let Some(f) = floor_v {
            let x = x0 + f / max * BAR_W;
            let y1 = y0 + n_exec as f64 * ROW_H;
            let _ = writeln!(
                svg,
                "<line x1=\"{x:.1}\" y1=\"{}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#333\" stroke-dasharray=\"4,3\"/>",
                y0 - 2.0,
                y1
            );
            let _ = writeln!(
                svg,
                "<text x=\"{x:.1}\" y=\"{}\" fill=\"#333\" font-size=\"10\" text-anchor=\"middle\">floor {}</text>",
                y1 + 12.0,
                fmt_num(f)
            );
        }
    }
    svg.push_str("</svg>\n");
    if let Some(parent) = out.parent() {
        if !parent.as_os_str().is_empty() {
            fs::create_dir_all(parent).expect("create output folder");
        }
    }
    fs::write(&out, svg).expect("write svg");
    eprintln!("bench-chart: wrote {}", out.display());
}
