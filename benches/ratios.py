#!/usr/bin/env python3
"""procpool's ratios against the best peer and the machine's physical floor,
as a markdown table, from one run_all.sh results folder.

    python3 benches/ratios.py RESULTS_DIR

Values are medians over the runs in the folder (as summarize.py does).
"advantage" > 1 means procpool is better (faster, higher throughput, less
memory); < 1 means a peer is better.
"""
import json
import os
import statistics
import sys

# scenario, label, unit, lower is better
KEY = [
    ("startup", "a. startup: construct -> 1st result", "ms", True),
    ("latency", "b. latency, median", "us", True),
    ("throughput_submit", "c. throughput_submit", "tasks/s", False),
    ("throughput_map", "d. throughput_map", "items/s", False),
    ("payload", "e. payload 16 MiB echo", "MB/s", False),
    ("cancel_running", "f. cancel_running", "ms", True),
    ("crash_detect", "g. crash_detect (exit 1)", "ms", True),
    ("crash_detect_sigkill", "g'. crash_detect (SIGKILL)", "ms", True),
    ("timeout_kill", "h. timeout_kill", "ms", True),
    ("rss_per_worker", "i. rss_per_worker VmRSS", "MiB", True),
]

# procpool figure -> physical floor: (scenario, procpool field or None,
# floor scenarios summed, factor from the floor's unit to procpool's, what)
FLOORS = [
    ("latency", None, ["pipe_pingpong_8B"], 1.0,
     "8-byte pipe ping-pong between two processes (blocking, unpinned: bimodal, same-CPU ~4 us or cross-CPU ~50 us)"),
    ("latency", None, ["pipe_pingpong_8B_cross_cpu"], 1.0,
     "8-byte pipe ping-pong, processes pinned to different CPUs (blocking)"),
    ("latency", None, ["shm_spin_pingpong_cross_cpu"], 1.0,
     "shared-memory spin ping-pong across CPUs (no syscalls)"),
    ("payload", None, ["pipe_echo_16MiB"], 1.0, "16 MiB echo over pipes"),
    ("startup", None, ["spawn_exec_first_byte"], 1.0,
     "spawn+exec of a small binary -> its first byte"),
    ("cancel_running", None, ["kill_to_pidfd_then_waitpid", "spawn_exec_first_byte"], None,
     "SIGKILL -> pidfd readable + reaped, plus spawn+exec -> first byte"),
    ("crash_detect", None, ["kill_to_pidfd_readable"], 1e-3,
     "SIGKILL -> pidfd readable"),
    ("timeout_kill", "overshoot_from_task_start_ms", ["kill_to_pidfd_then_waitpid"], 1e-3,
     "overshoot past 0.2 s vs SIGKILL -> pidfd readable + reaped"),
]


def load(path):
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    return out


def num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def fmt(x):
    ax = abs(x)
    if ax >= 10000:
        return "{:,.0f}".format(x)
    if ax >= 100:
        return "{:.0f}".format(x)
    if ax >= 10:
        return "{:.1f}".format(x)
    return "{:.2f}".format(x)


def main(folder):
    peers = load(os.path.join(folder, "peers.jsonl"))
    limits = load(os.path.join(folder, "limits.jsonl"))
    vals = {}
    for r in peers:
        ex, sc = r.get("executor"), r.get("scenario")
        vals.setdefault((ex, sc, None), []).append(r.get("value"))
        for k, v in r.items():
            if num(v):
                vals.setdefault((ex, sc, k), []).append(v)
    floor = {}
    for r in limits:
        if r.get("executor") == "physical-floor" and num(r.get("value")):
            floor.setdefault(r["scenario"], []).append((r["value"], r.get("unit")))

    def med(ex, sc, field=None):
        xs = [v for v in vals.get((ex, sc, field), []) if num(v)]
        return statistics.median(xs) if xs else None

    execs = sorted({k[0] for k in vals if k[0] != "procpool"})
    print("| scenario | unit | procpool | best peer | best peer's value | procpool's advantage |")
    print("|---|---|---|---|---|---|")
    for sc, label, unit, lower in KEY:
        pp = med("procpool", sc)
        cands = [(med(e, sc), e) for e in execs]
        cands = [(v, e) for v, e in cands if v is not None and v > 0]
        if pp is None or not cands:
            print("| %s | %s | %s | | | |" % (label, unit, fmt(pp) if pp is not None else "n/a"))
            continue
        best, who = min(cands) if lower else max(cands)
        adv = (best / pp if lower else pp / best) if pp > 0 else float("inf")
        words = "%.1fx better" % adv if adv >= 1 else "%.1fx worse" % (1 / adv)
        print("| %s | %s | %s | %s | %s | %s (%.2f) |" % (label, unit, fmt(pp), who, fmt(best), words, adv))
    print()
    print("| procpool figure | procpool | physical floor | floor | procpool / floor |")
    print("|---|---|---|---|---|")
    for sc, field, fscs, factor, what in FLOORS:
        pp = med("procpool", sc, field)
        parts = []
        for fsc in fscs:
            xs = floor.get(fsc)
            if not xs:
                parts = None
                break
            v = statistics.median([x for x, _ in xs])
            unit = xs[0][1]
            # bring the floor to ms when procpool's figure is in ms
            if factor is None:
                v = v * (1e-3 if unit == "us" else 1.0)
            else:
                v = v * factor
            parts.append(v)
        if pp is None or not parts:
            continue
        fl = sum(parts)
        label = sc if field is None else "%s %s" % (sc, field)
        print("| %s | %s | %s | %s | %s |" % (label, fmt(pp), what, fmt(fl),
                                             "%.2f" % (pp / fl) if fl else "n/a"))
    print()
    print("| procpool only (not in summarize.py's table) | median over runs |")
    print("|---|---|")
    for sc, field, label in [
        ("latency", "cpu_us_per_call", "latency: CPU per call, parent + both workers (us)"),
        ("latency", "cpu_parent_us_per_call", "latency: CPU per call, parent only (us)"),
        ("latency_gapped", None, "latency_gapped (500 us sleep between calls), median (us)"),
        ("latency_gapped", "p99_us", "latency_gapped p99 (us)"),
        ("latency_gapped", "cpu_us_per_call", "latency_gapped: CPU per call, parent + both workers (us)"),
        ("cancel_running", "t_future_resolved_ms", "cancel_running: abort() -> future resolved (ms)"),
        ("cancel_running", "t_worker_dead_ms", "cancel_running: abort() -> victim process gone (ms)"),
        ("startup", "repeat_median_ms", "startup, 5 more pools in the same process (ms)"),
    ]:
        v = med("procpool", sc, field)
        if v is not None:
            print("| %s | %s |" % (label, fmt(v)))


if __name__ == "__main__":
    main(sys.argv[1])
