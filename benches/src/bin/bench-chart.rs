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
//! a dashed line. Drawn with `plotters`' SVG backend and its built-in text
//! metrics, so it needs no font files.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use procpool_benches::median;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
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

const PANEL_W: u32 = 440;
const ROW_H: u32 = 24;
const COLS: usize = 3;
const HEAD_H: u32 = 60;
const MINE: RGBColor = RGBColor(0xd9, 0x48, 0x0f);
const PEER: RGBColor = RGBColor(0x74, 0xa9, 0xcf);

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

fn executor_rank(e: &str) -> (usize, String) {
    (
        EXEC_ORDER.iter().position(|x| *x == e).unwrap_or(99),
        e.to_owned(),
    )
}

/// `RESULTS_DIR_OR_PEERS_JSONL [OUT.svg]`: the input and the output, or
/// `None` when the command line is not that.
fn parse_args(mut args: pico_args::Arguments) -> Option<(PathBuf, PathBuf)> {
    let input = args.opt_free_from_str().ok()??;
    let out = args.opt_free_from_str().ok()?;
    let out = out.unwrap_or_else(|| PathBuf::from("docs/bench.svg"));
    args.finish().is_empty().then_some((input, out))
}

fn main() {
    let Some((input, out)) = parse_args(pico_args::Arguments::from_env()) else {
        eprintln!("usage: bench-chart RESULTS_DIR_OR_PEERS_JSONL [OUT.svg]");
        std::process::exit(2);
    };
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

    let n_runs = runs.values().copied().max().unwrap_or(0);
    let cpu = machine
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|s| s.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        .unwrap_or_default();
    let nproc = machine
        .lines()
        .find_map(|l| l.strip_prefix("nproc:"))
        .map(|s| format!(", {} CPUs", s.trim()))
        .unwrap_or_default();
    let source = dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let panels: Vec<PanelData> = PANELS
        .iter()
        .map(|p| {
            let bars = execs
                .iter()
                .map(|e| match cells.get(&(e.clone(), p.scenario.to_owned())) {
                    Some(c) if !c.nums.is_empty() => (e.clone(), Ok(median(&c.nums))),
                    Some(c) => (e.clone(), Err(c.words.first().cloned().unwrap_or_default())),
                    None => (e.clone(), Err("not measured".to_owned())),
                })
                .collect();
            let floor = p
                .floor
                .and_then(|(sc, k)| floor.get(sc).map(|v| median(v) * k));
            PanelData {
                panel: p,
                bars,
                floor,
            }
        })
        .collect();

    if let Some(parent) = out.parent() {
        if !parent.as_os_str().is_empty() {
            fs::create_dir_all(parent).expect("create output folder");
        }
    }
    let title = format!("procpool and its peers, pool of 2 workers (median of {n_runs} run(s))");
    let subtitle = format!(
        "{cpu}{nproc}; dashed line: the machine's physical floor (shared/bench/limits); source: {source}"
    );
    if let Err(e) = draw(&out, &title, &subtitle, &panels) {
        eprintln!("bench-chart: drawing {} failed: {e}", out.display());
        std::process::exit(1);
    }
    eprintln!("bench-chart: wrote {}", out.display());
}

/// One panel's numbers: per executor its median or the word it reported
/// instead, and the physical floor.
struct PanelData {
    panel: &'static Panel,
    bars: Vec<(String, Result<f64, String>)>,
    floor: Option<f64>,
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn draw(out: &Path, title: &str, subtitle: &str, panels: &[PanelData]) -> DrawResult {
    let n_exec = panels.first().map_or(1, |p| p.bars.len().max(1));
    let panel_h = 70 + n_exec as u32 * ROW_H;
    let rows = panels.len().div_ceil(COLS) as u32;
    let size = (PANEL_W * COLS as u32 + 20, HEAD_H + panel_h * rows + 10);
    let root = SVGBackend::new(out, size).into_drawing_area();
    root.fill(&WHITE)?;
    root.draw(&Text::new(
        title.to_owned(),
        (10, 10),
        ("sans-serif", 18).into_font().style(FontStyle::Bold),
    ))?;
    root.draw(&Text::new(
        subtitle.to_owned(),
        (10, 36),
        ("sans-serif", 12)
            .into_font()
            .color(&RGBColor(0x55, 0x55, 0x55)),
    ))?;
    let body = root.margin(HEAD_H, 10, 10, 10);
    let cells = body.split_evenly((rows as usize, COLS));
    for (area, data) in cells.iter().zip(panels) {
        draw_panel(area, data)?;
    }
    root.present()?;
    Ok(())
}

/// A horizontal bar chart: one bar per executor (procpool first, at the
/// top), the value written after the bar, the floor as a dashed line.
fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, data: &PanelData) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let p = data.panel;
    let n = data.bars.len().max(1);
    let max = data
        .bars
        .iter()
        .filter_map(|(_, v)| v.as_ref().ok().copied())
        .chain(data.floor)
        .fold(0.0f64, f64::max)
        .max(f64::MIN_POSITIVE);
    // Room on the right for the value written after the longest bar.
    let x_end = max * 1.35;
    let better = if p.higher_is_better {
        "higher"
    } else {
        "lower"
    };
    let mut chart = ChartBuilder::on(&area.margin(4, 4, 4, 8))
        .caption(
            p.title,
            ("sans-serif", 13).into_font().style(FontStyle::Bold),
        )
        .x_label_area_size(28)
        .y_label_area_size(120)
        .build_cartesian_2d(0.0..x_end, (0..n).into_segmented())?;
    // Row 0 is the bottom of the chart; executors are listed top down.
    let row = |j: usize| n - 1 - j;
    let names: Vec<&str> = data.bars.iter().map(|(e, _)| e.as_str()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(TRANSPARENT)
        .x_labels(4)
        .x_label_formatter(&|x| fmt_num(*x))
        .x_desc(format!("{} - {better} is better", p.unit))
        .y_labels(n)
        .y_label_formatter(&|y| match y {
            SegmentValue::CenterOf(r) | SegmentValue::Exact(r) if *r < n => {
                names.get(n - 1 - r).copied().unwrap_or("").to_owned()
            }
            _ => String::new(),
        })
        .label_style(("sans-serif", 11))
        .draw()?;
    for (j, (ex, v)) in data.bars.iter().enumerate() {
        let mine = ex == "procpool";
        let font = if mine {
            ("sans-serif", 11).into_font().style(FontStyle::Bold)
        } else {
            ("sans-serif", 11).into_font()
        };
        match v {
            Ok(v) => {
                let color = if mine { MINE } else { PEER };
                chart.draw_series(
                    Histogram::horizontal(&chart)
                        .style(color.filled())
                        .margin(4)
                        .data([(row(j), *v)]),
                )?;
                chart.draw_series(std::iter::once(Text::new(
                    format!(" {}", fmt_num(*v)),
                    (*v, SegmentValue::CenterOf(row(j))),
                    font.color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center)),
                )))?;
            }
            Err(word) => {
                chart.draw_series(std::iter::once(Text::new(
                    format!(" {word}"),
                    (0.0, SegmentValue::CenterOf(row(j))),
                    ("sans-serif", 11)
                        .into_font()
                        .style(FontStyle::Italic)
                        .color(&RGBColor(0x99, 0x99, 0x99))
                        .pos(Pos::new(HPos::Left, VPos::Center)),
                )))?;
            }
        }
    }
    if let Some(f) = data.floor {
        chart.draw_series(DashedLineSeries::new(
            [(f, SegmentValue::Exact(0)), (f, SegmentValue::Exact(n))],
            5,
            4,
            BLACK.stroke_width(1),
        ))?;
        chart.draw_series(std::iter::once(Text::new(
            format!("floor {}", fmt_num(f)),
            (f, SegmentValue::Exact(n)),
            ("sans-serif", 10)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Bottom)),
        )))?;
    }
    Ok(())
}
