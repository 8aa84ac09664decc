"""Bench output: the contract's JSON, a terminal table, and a report folder with the JSON and PNG plots."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from alice.bench.stats import Outcome, hit_rates, windows
from alice.cli.scoring import format_table

CONTRACT_KEYS = ("n", "offered_rate", "achieved_rate", "success_rate", "tool_accuracy", "tool_precision",
                 "cache_hit_rate", "cache_hit_rate_all", "latency_ms", "by_route", "errors_by_code", "slo", "passed")
"""The keys spec/intents.md ("Bench command contract") requires; extra keys follow them."""


def default_report_dir(root: Path = Path("reports")) -> Path:
    return root / f"bench-{dt.datetime.now():%Y%m%d-%H%M%S}"


def ordered(result: Mapping[str, Any]) -> dict[str, Any]:
    """Contract keys first (all present), then the extras."""
    missing = [key for key in CONTRACT_KEYS if key not in result]
    if missing:
        raise KeyError(f"bench result lacks contract keys: {', '.join(missing)}")
    return {**{k: result[k] for k in CONTRACT_KEYS}, **{k: v for k, v in result.items() if k not in CONTRACT_KEYS}}


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def terminal_report(result: Mapping[str, Any]) -> str:
    """The human view: headline KPIs, routes, errors, SLOs, phases and breakers."""
    lat = result["latency_ms"]
    lines = [
        f"bench {result.get('mode', '')}: n={result['n']} offered {result['offered_rate']:.2f}/s "
        f"achieved {result['achieved_rate']:.2f}/s  weather: {result.get('weather', '?')}",
        f"success {_pct(result['success_rate'])} (valid answer within {result.get('deadline_s', '?')} s; "
        f"replies {_pct(result.get('answered_rate', 0.0))})  tool accuracy {_pct(result['tool_accuracy'])}  "
        f"tool precision {_pct(result['tool_precision'])}",
        f"cache hit rate {_pct(result['cache_hit_rate'])} of {result.get('cacheable_requests', '?')} cacheable "
        f"requests, {_pct(result['cache_hit_rate_all'])} of all {result['n']}  tiers {result.get('hits_by_tier', {})}",
        f"latency ms p50 {lat['p50']:.0f}  p95 {lat['p95']:.0f}  p99 {lat['p99']:.0f}",
        "",
        format_table([(route, v["n"], v["latency_ms"]["p50"], v["latency_ms"]["p95"], v["latency_ms"]["p99"])
                      for route, v in result["by_route"].items()], ("route", "n", "p50_ms", "p95_ms", "p99_ms")),
    ]
    if result["errors_by_code"]:
        lines += ["", "errors by gRPC code: " + ", ".join(f"{k} {v}" for k, v in result["errors_by_code"].items())]
    if result.get("degradations"):
        lines += ["degradations: " + ", ".join(f"{k} {v}" for k, v in result["degradations"].items())]
    lines += ["", format_table(
        [(name, row["op"] + " " + f"{row['target']:g}", f"{row['value']:g}", "PASS" if row["passed"] else "FAIL",
          f"{row['margin']:+g} ({row['margin_pct']:+g} %)" if row.get("margin_pct") is not None else "")
         for name, row in result["slo"].items()], ("slo", "target", "value", "result", "margin (+ headroom)"))]
    phases = result.get("phases")
    if phases:
        lines += ["", format_table(
            [(phase, v["n"], _pct(v["success_rate"]), f"{v['latency_ms']['p95']:.0f}", _pct(v["cache_hit_rate"]),
              v["past_deadline"], ", ".join(f"{k} {n}" for k, n in v["errors_by_code"].items()) or "-",
              ", ".join(f"{k} {n}" for k, n in v["degradations"].items()) or "-")
             for phase, v in phases.items() if v["n"]],
            ("phase", "n", "success", "p95_ms", "hit_rate", "past_deadline", "errors", "degradations"))]
    breakers = result.get("breakers")
    if breakers:
        seen = breakers.get("transitions", [])
        lines += ["", f"breaker transitions seen: {len(seen)}"]
        lines += [f"  {t['at_s']:7.1f} s  {t['breaker']}: {t['transition']}" for t in seen[:30]]
    for key in ("faults", "knee", "soak", "notes"):
        if result.get(key):
            lines += ["", f"{key}: {json.dumps(result[key], ensure_ascii=False)[:2000]}"]
    lines += ["", "PASSED" if result["passed"] else "FAILED: " + ", ".join(
        name for name, row in result["slo"].items() if not row["passed"])]
    return "\n".join(lines)


def write_report(folder: Path, result: Mapping[str, Any], outcomes: Sequence[Outcome],
                 p95_target_ms: float | None, hit_target: float | None, event_times_s: Sequence[float] = (),
                 process_samples: Mapping[str, Sequence[tuple[float, int, int]]] | None = None) -> list[Path]:
    """result.json, outcomes.jsonl and the PNG plots; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "result.json", folder / "outcomes.jsonl"]
    written[0].write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    with written[1].open("w", encoding="utf-8") as handle:
        for outcome in outcomes:
            handle.write(json.dumps(dataclasses.asdict(outcome), ensure_ascii=False) + "\n")
    try:
        written += plot(folder, outcomes, p95_target_ms, hit_target, event_times_s, process_samples or {})
    except ImportError:
        (folder / "NO_PLOTS.txt").write_text("matplotlib is not installed: pip install matplotlib\n")
    return written


def plot(folder: Path, outcomes: Sequence[Outcome], p95_target_ms: float | None, hit_target: float | None,
         event_times_s: Sequence[float], process_samples: Mapping[str, Sequence[tuple[float, int, int]]]
         ) -> list[Path]:
    """Latency over time with the SLO line, latency histogram per route, hit rate over time, RSS in a soak."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files: list[Path] = []
    span = max((o.sent_s for o in outcomes), default=0.0)
    width = max(1.0, span / 40)
    rows = windows(outcomes, width)

    fig, ax = plt.subplots(figsize=(10, 4.5))
    routes = sorted({o.route or "error" for o in outcomes})
    for route in routes:
        group = [o for o in outcomes if (o.route or "error") == route]
        ax.scatter([o.sent_s for o in group], [max(o.latency_ms, 0.1) for o in group], s=6, alpha=0.5, label=route)
    ax.plot([t for t, _ in rows], [max(r["p95_ms"], 0.1) for _, r in rows], color="black", lw=1.5,
            label=f"p95 per {width:.0f} s window")
    if p95_target_ms:
        ax.axhline(p95_target_ms, color="red", ls="--", label=f"SLO p95 < {p95_target_ms:g} ms")
    for at in event_times_s:
        ax.axvline(at, color="grey", ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("seconds since start (due time)")
    ax.set_ylabel("latency ms (log)")
    ax.set_title("Latency over time")
    ax.legend(fontsize=7, loc="upper left", ncol=2)
    files.append(_save(fig, folder / "latency_over_time.png", plt))

    fig, ax = plt.subplots(figsize=(10, 4.5))
    values = [o.latency_ms for o in outcomes if o.ok]
    if values:
        low, high = max(min(values), 0.1), max(max(values), 1.0)
        bins = [low * (high / low) ** (i / 40) for i in range(41)] if high > low else 20
        for route in sorted({o.route or "unknown" for o in outcomes if o.ok}):
            ax.hist([o.latency_ms for o in outcomes if o.ok and (o.route or "unknown") == route], bins=bins,
                    histtype="step", lw=1.5, label=route)
        ax.set_xscale("log")
    if p95_target_ms:
        ax.axvline(p95_target_ms, color="red", ls="--", label=f"SLO {p95_target_ms:g} ms")
    ax.set_xlabel("latency ms (log)")
    ax.set_ylabel("requests")
    ax.set_title("Latency histogram per route (answered requests)")
    ax.legend(fontsize=8)
    files.append(_save(fig, folder / "latency_histogram_by_route.png", plt))

    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.plot([t for t, _ in rows], [r["cache_hit_rate"] for _, r in rows], marker="o", ms=3,
            label=f"cacheable requests, per {width:.0f} s window")
    ordered_outcomes = sorted(outcomes, key=lambda o: o.sent_s)
    cumulative = [hit_rates(ordered_outcomes[: i + 1])[0] for i in range(0, len(ordered_outcomes),
                                                                         max(1, len(ordered_outcomes) // 200))]
    steps = range(0, len(ordered_outcomes), max(1, len(ordered_outcomes) // 200))
    ax.plot([ordered_outcomes[i].sent_s for i in steps], cumulative, color="black", lw=1.2,
            label="cacheable requests, cumulative")
    if hit_target is not None:
        ax.axhline(hit_target, color="red", ls="--", label=f"SLO >= {hit_target:g}")
    for at in event_times_s:
        ax.axvline(at, color="grey", ls=":", lw=1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("cache hit rate")
    ax.set_title("Cache hit rate over time")
    ax.legend(fontsize=8)
    files.append(_save(fig, folder / "hit_rate_over_time.png", plt))

    if process_samples:
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
        for name, samples in sorted(process_samples.items()):
            top.plot([s[0] for s in samples], [s[1] / 1024 for s in samples], label=name)
            bottom.plot([s[0] for s in samples], [s[2] for s in samples], label=name)
        top.set_ylabel("RSS MiB")
        bottom.set_ylabel("open fds")
        bottom.set_xlabel("seconds since start")
        top.set_title("Soak: memory and file descriptors per process")
        top.legend(fontsize=8)
        files.append(_save(fig, folder / "soak_rss_fds.png", plt))
    return files


def _save(fig: Any, path: Path, plt: Any) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
