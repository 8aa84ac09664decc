"""`alice trace show` of a 10-span trace in a trace store holding 100,000 spans (target: under 200 ms).

Run: .venv/bin/python benchmarks/trace_show_bench.py [--spans 100000] [--runs 7]

Measures three things: the query and rendering in-process, `python -m alice.cli.trace show` as a process (the
trace command alone), and the full `alice trace show` console command (which also loads the rest of the CLI).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from alice.cli.trace import format_waterfall
from alice.tracestore.store import SpanRecord, TraceStore, waterfall

FULL_CLI = ("import sys; from alice.cli import main as m; m.COMMANDS += ('alice.cli.trace',); "
            "sys.exit(m.main(sys.argv[1:]))")


def request_trace(rng: random.Random, start_ns: int) -> list[SpanRecord]:
    """Ten spans shaped like a router request that misses the cache and takes the fast route."""
    trace_id = f"{rng.getrandbits(128):032x}"
    ids = [f"{rng.getrandbits(64):016x}" for _ in range(10)]
    ms = 1_000_000
    layout = [  # (index, parent index, service, name, kind, start ms, duration ms)
        (0, None, "alice-router", "/alice.router.v1.RouterService/Ask", "SERVER", 0.0, 40.0),
        (1, 0, "alice-router", "router.nlu", "INTERNAL", 0.2, 12.0),
        (2, 1, "alice-router", "/alice.nlu.v1.NluService/Parse", "CLIENT", 0.3, 11.5),
        (3, 2, "alice-nlu", "/alice.nlu.v1.NluService/Parse", "SERVER", 0.6, 10.8),
        (4, 3, "alice-nlu", "nlu.classify", "INTERNAL", 0.8, 8.0),
        (5, 0, "alice-router", "router.cache_alias", "INTERNAL", 0.2, 3.0),
        (6, 5, "alice-router", "/alice.cache.v1.CacheService/Lookup", "CLIENT", 0.3, 2.8),
        (7, 6, "alice-cache", "/alice.cache.v1.CacheService/Lookup", "SERVER", 0.5, 2.2),
        (8, 0, "alice-router", "router.route", "INTERNAL", 12.5, 0.1),
        (9, 0, "alice-router", "router.tool", "INTERNAL", 12.7, 25.0 + rng.random() * 50),
    ]
    spans = []
    for index, parent, service, name, kind, offset, duration in layout:
        begin = start_ns + int(offset * ms)
        attributes: dict[str, object] = {"rpc.system": "grpc"} if kind != "INTERNAL" else {}
        if index == 0:
            attributes.update({"alice.route": "fast", "alice.intent": "time.now", "alice.confidence": 0.97})
        spans.append(SpanRecord(trace_id, ids[index], ids[parent] if parent is not None else "", service, name, kind,
                                begin, begin + int(duration * ms), "UNSET", "", attributes, []))
    return spans


def build_store(path: Path, total_spans: int, seed: int = 7) -> str:
    """Fill a store with `total_spans` spans of 10-span traces; returns the id of one trace in the middle."""
    rng = random.Random(seed)
    now = time.time_ns()
    traces = total_spans // 10
    target = ""
    with TraceStore(path, max_spans=max(200_000, total_spans), max_age_s=86_400) as store:
        batch: list[SpanRecord] = []
        for number in range(traces):
            spans = request_trace(rng, now - (traces - number) * 5_000_000)
            if number == traces // 2:
                target = spans[0].trace_id
            batch.extend(spans)
            if len(batch) >= 5_000:
                store.insert(batch)
                batch = []
        store.insert(batch)
        assert store.span_count() == traces * 10, store.span_count()
    return target


def timed_process(command: list[str], runs: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU (user + system) milliseconds per run; CPU time is what a busy machine cannot inflate."""
    wall, cpu = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, check=False)
        wall.append((time.perf_counter() - started) * 1000)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed: {done.stderr.decode()}")
    return wall, cpu


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": round(statistics.median(values), 1), "max": round(max(values), 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "traces.db"
        started = time.perf_counter()
        trace_id = build_store(db, args.spans)
        fill_s = time.perf_counter() - started
        print(f"store: {args.spans} spans in {db.stat().st_size / 1e6:.1f} MB, filled in {fill_s:.1f} s; "
              f"trace {trace_id}", file=sys.stderr)

        in_process = []
        for _ in range(args.runs * 3):
            started = time.perf_counter()
            with TraceStore(db, readonly=True) as store:
                text = format_waterfall(waterfall(store.get_trace(trace_id)))
            in_process.append((time.perf_counter() - started) * 1000)
        assert text.count("\n") >= 10
        bin_dir = Path(sys.executable).parent
        baseline = timed_process([sys.executable, "-c", "pass"], args.runs)
        trace_only = timed_process([sys.executable, "-m", "alice.cli.trace", "show", trace_id,
                                    "--db", str(db)], args.runs)
        alice = bin_dir / "alice"
        registered = alice.exists() and subprocess.run([str(alice), "trace", "--help"], capture_output=True,
                                                       check=False).returncode == 0
        if registered:
            full = timed_process([str(alice), "trace", "show", trace_id, "--db", str(db)], args.runs)
        else:
            # Until alice.cli.main lists alice.cli.trace: the same start-up, with the module added to COMMANDS.
            full = timed_process([sys.executable, "-c", FULL_CLI, "trace", "show", trace_id, "--db", str(db)],
                                 args.runs)

    result = {
        "spans_in_store": args.spans,
        "in_process_ms": {"p50": round(statistics.median(in_process), 2), "max": round(max(in_process), 2)},
        "python_startup_ms": {"wall": summary(baseline[0]), "cpu": summary(baseline[1])},
        "trace_module_process_ms": {"wall": summary(trace_only[0]), "cpu": summary(trace_only[1])},
        "alice_cli_process_ms": {"wall": summary(full[0]), "cpu": summary(full[1])},
        "alice_cli_registered": registered,
        "target_ms": 200,
    }
    print(f"in-process (open store, query, render): P50 {result['in_process_ms']['p50']:7.2f} ms")
    print(f"python -c pass (interpreter baseline):  P50 {summary(baseline[0])['p50']:7.1f} ms wall, "
          f"{summary(baseline[1])['p50']:.1f} ms CPU")
    print(f"python -m alice.cli.trace show:         P50 {summary(trace_only[0])['p50']:7.1f} ms wall, "
          f"{summary(trace_only[1])['p50']:.1f} ms CPU")
    print(f"alice trace show (full CLI{'' if registered else ', simulated'}):{'' if registered else ' '}"
          f"{'           ' if registered else ''}P50 {summary(full[0])['p50']:7.1f} ms wall, "
          f"{summary(full[1])['p50']:.1f} ms CPU")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
