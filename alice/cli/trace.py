"""`alice trace list|show|stats|serve`: read the local trace store (a SQLite file) directly."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from alice.tracestore.config import DEFAULT_DB, DEFAULT_WEB_PORT
from alice.tracestore.store import (
    KEY_ATTRIBUTES,
    AmbiguousTraceId,
    TraceFilter,
    TraceNotFound,
    TraceStore,
    TraceSummary,
    WaterfallRow,
    parse_since,
    trace_document,
    waterfall,
)

BAR_WIDTH = 30


def register(commands: Any) -> None:
    trace = commands.add_parser("trace", help="inspect the traces in the local trace store")
    add_actions(trace.add_subparsers(dest="trace_command", required=True, metavar="ACTION"))


def add_actions(sub: Any) -> None:
    """`list`, `show`, `stats` and `serve` under `alice trace` (or directly, for `python -m alice.cli.trace`)."""

    def db_arg(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--db", type=Path, default=DEFAULT_DB, help=f"trace store file (default {DEFAULT_DB})")

    listing = sub.add_parser("list", help="recent traces: time, root operation, route, status, duration")
    db_arg(listing)
    listing.add_argument("--slowest", type=_positive_int, metavar="N", help="the N slowest traces instead")
    listing.add_argument("--route", help="only this route (fast, micro, planner, cache)")
    listing.add_argument("--min-ms", type=float, metavar="X", help="only traces taking at least X ms")
    listing.add_argument("--errors", action="store_true", help="only traces with a failed span")
    listing.add_argument("--since", metavar="AGE", help="only traces started since, e.g. 10m, 2h, 1d or ISO time")
    listing.add_argument("--limit", type=_positive_int, default=20, help="how many (default 20)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(run=run_list)

    show = sub.add_parser("show", help="one trace as a terminal waterfall, critical path marked")
    db_arg(show)
    show.add_argument("trace_id", metavar="TRACE_ID", help="32 hex digits (a unique prefix will do)")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(run=run_show)

    stats = sub.add_parser("stats", help="where the time goes: P50/P95/P99 per service and per span name")
    db_arg(stats)
    stats.add_argument("--since", metavar="AGE", help="only spans started since, e.g. 10m, 2h, 1d")
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.set_defaults(run=run_stats)

    serve = sub.add_parser("serve", help="the read-only web view on loopback")
    db_arg(serve)
    serve.add_argument("--port", type=int, default=DEFAULT_WEB_PORT, help=f"port (default {DEFAULT_WEB_PORT})")
    serve.set_defaults(run=run_serve)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _open(db: Path) -> TraceStore | None:
    try:
        return TraceStore(db, readonly=True)
    except FileNotFoundError:
        print(f"no trace store at {db}: start one with `alice up` (or `python -m alice.tracestore`), "
              "or pass --db", file=sys.stderr)
        return None


# -- list ------------------------------------------------------------------------------------------------


def run_list(args: argparse.Namespace) -> int:
    store = _open(args.db)
    if store is None:
        return 1
    with store:
        try:
            since = parse_since(args.since, time.time_ns()) if args.since else None
        except ValueError as error:
            print(error, file=sys.stderr)
            return 2
        traces = store.list_traces(TraceFilter(limit=args.limit, slowest=args.slowest, route=args.route,
                                               min_ms=args.min_ms, errors_only=args.errors, since_ns=since))
    if args.json:
        print(json.dumps({"traces": [trace.to_dict() for trace in traces]}, ensure_ascii=False))
    else:
        print(format_list(traces))
    return 0


def format_list(traces: list[TraceSummary]) -> str:
    if not traces:
        return "no traces match"
    lines = [f"{'time':<23}  {'duration':>10}  {'spans':>5}  {'status':<6}  {'route':<8}  {'trace id':<32}  root"]
    for trace in traces:
        when = dt.datetime.fromtimestamp(trace.start_ns / 1e9).strftime("%Y-%m-%d %H:%M:%S.%f")[:23]
        lines.append(f"{when:<23}  {_ms(trace.duration_ns):>10}  {trace.span_count:>5}  {trace.status:<6}  "
                     f"{trace.route or '-':<8}  {trace.trace_id:<32}  {trace.root_service} {trace.root_name}")
    return "\n".join(lines)


# -- show ------------------------------------------------------------------------------------------------


def run_show(args: argparse.Namespace) -> int:
    store = _open(args.db)
    if store is None:
        return 1
    with store:
        try:
            spans = store.get_trace(args.trace_id)
        except (TraceNotFound, AmbiguousTraceId) as error:
            print(error.args[0], file=sys.stderr)
            return 1
    rows = waterfall(spans)
    if args.json:
        print(json.dumps(trace_document(rows), ensure_ascii=False))
    else:
        print(format_waterfall(rows, shutil.get_terminal_size((160, 40)).columns))
    return 0


def format_waterfall(rows: list[WaterfallRow], columns: int = 160) -> str:
    """An indented span tree with start offset, duration bar, service and key attributes; `*` = critical path."""
    if not rows:
        return "empty trace"
    start = min(row.span.start_ns for row in rows)
    total = max(row.span.end_ns for row in rows) - start
    root = rows[0].span
    services = sorted({row.span.service for row in rows})
    errors = sum(row.span.status_code == "ERROR" for row in rows)
    route = root.attributes.get("alice.route")
    head = (f"trace {root.trace_id}  {_ms(total)}  {len(rows)} spans  {len(services)} services"
            + (f"  route {route}" if route else "") + (f"  {errors} error(s)" if errors else "  OK"))
    service_width = max(len(service) for service in services)
    lines = [head, f"* = critical path   bar = 0 … {_ms(total)}", "",
             f"  {'offset':>10} {'duration':>10} {'timeline':<{BAR_WIDTH + 2}} {'service':<{service_width}}  span"]
    for row in rows:
        span = row.span
        offset = row.offset_ns
        begin = round(offset / total * BAR_WIDTH) if total else 0
        length = max(1, round(span.duration_ns / total * BAR_WIDTH)) if total else BAR_WIDTH
        begin = min(begin, BAR_WIDTH - 1)
        length = min(length, BAR_WIDTH - begin)
        bar = "·" * begin + "█" * length + "·" * (BAR_WIDTH - begin - length)
        name = "  " * row.depth + span.name
        details = [f"{key}={_short(span.attributes[key])}" for key in KEY_ATTRIBUTES if key in span.attributes]
        if span.status_code == "ERROR":
            details.insert(0, f"ERROR {span.status_message}".strip())
        marker = "*" if row.critical else " "
        line = (f"{marker} {_ms(offset):>10} {_ms(span.duration_ns):>10} |{bar}| {span.service:<{service_width}}  "
                f"{name}" + (f"  {' '.join(details)}" if details else ""))
        lines.append(line if len(line) <= columns or columns < 80 else line[:columns - 1] + "…")
    return "\n".join(lines)


def _ms(ns: int) -> str:
    return f"{ns / 1e6:.2f} ms"


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:39] + "…"


# -- stats -----------------------------------------------------------------------------------------------


def run_stats(args: argparse.Namespace) -> int:
    store = _open(args.db)
    if store is None:
        return 1
    with store:
        try:
            since = parse_since(args.since, time.time_ns()) if args.since else None
        except ValueError as error:
            print(error, file=sys.stderr)
            return 2
        report = store.stats(since)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
        return 0
    if not report.spans:
        print("no spans stored")
        return 0
    print(f"{report.traces} traces, {report.spans} spans\n")
    header = f"{'count':>7} {'p50':>10} {'p95':>10} {'p99':>10} {'total':>12}"
    print(f"{'service':<40} {header}")
    for service, stats in report.by_service.items():
        print(f"{service:<40} {_row(stats.to_dict())}")
    print(f"\n{'service / span name':<60} {header}")
    for (service, name), stats in report.by_name.items():
        label = f"{service} {name}"
        label = label if len(label) <= 60 else label[:59] + "…"
        print(f"{label:<60} {_row(stats.to_dict())}")
    return 0


def _row(stats: dict[str, Any]) -> str:
    return (f"{stats['count']:>7} {stats['p50_ms']:>7.2f} ms {stats['p95_ms']:>7.2f} ms {stats['p99_ms']:>7.2f} ms "
            f"{stats['total_ms']:>9.1f} ms")


# -- serve -----------------------------------------------------------------------------------------------


def run_serve(args: argparse.Namespace) -> int:
    from alice.tracestore.web import WebServer

    if not args.db.exists():
        _open(args.db)
        return 1
    try:
        server = WebServer("127.0.0.1", args.port, args.db).start()
    except OSError as error:
        print(f"cannot listen on 127.0.0.1:{args.port}: {error}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"trace view of {args.db} at {server.url}  (read-only; Ctrl-C stops)", flush=True)
    stop.wait()
    server.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m alice.cli.trace show ID`: the same commands without loading the rest of the CLI."""
    parser = argparse.ArgumentParser(prog="alice trace", description="inspect the traces in the local trace store")
    add_actions(parser.add_subparsers(dest="trace_command", required=True, metavar="ACTION"))
    args = parser.parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
