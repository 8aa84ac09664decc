"""Spans in SQLite with bounded retention, and the queries behind `alice trace` and the web view."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from alice.runtime.stats import percentile

SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_id TEXT NOT NULL DEFAULT '',
    service TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    status_code TEXT NOT NULL,
    status_message TEXT NOT NULL DEFAULT '',
    attributes TEXT NOT NULL DEFAULT '{}',
    events TEXT NOT NULL DEFAULT '[]'
);
CREATE UNIQUE INDEX IF NOT EXISTS spans_trace ON spans (trace_id, span_id);
CREATE INDEX IF NOT EXISTS spans_start ON spans (start_ns);
CREATE TABLE IF NOT EXISTS traces (
    trace_id TEXT PRIMARY KEY,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    duration_ns INTEGER NOT NULL,
    span_count INTEGER NOT NULL,
    error_count INTEGER NOT NULL,
    services TEXT NOT NULL,
    root_span_id TEXT NOT NULL,
    root_service TEXT NOT NULL,
    root_name TEXT NOT NULL,
    root_status TEXT NOT NULL,
    route TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS traces_start ON traces (start_ns);
CREATE INDEX IF NOT EXISTS traces_duration ON traces (duration_ns);
"""
"""`spans` holds every span; `traces` is a per-trace summary kept up to date on insert, so listing traces
never scans spans."""

ROUTE_ATTRIBUTE = "alice.route"
STATUS_ERROR = "ERROR"
KEY_ATTRIBUTES = (
    "alice.route", "alice.intent", "alice.confidence", "alice.cache.tier", "alice.cache.similarity",
    "alice.cache.guard", "alice.tool", "alice.tool.name", "alice.degraded", "alice.quota.share",
    "gen_ai.request.model", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "alice.llm.ttft_ms",
    "db.statement", "db.operation.name", "rpc.grpc.status_code", "error.type",
)
"""Attributes worth a glance in the terminal waterfall (all attributes are in `--json` and the web view)."""



class TraceNotFound(LookupError):
    """No stored trace has this id (or the prefix matches none)."""


class AmbiguousTraceId(LookupError):
    """A trace id prefix matches more than one stored trace."""


@dataclass(frozen=True)
class SpanRecord:
    """One finished span, flattened from OTLP; ids are lowercase hex, times are Unix nanoseconds."""

    trace_id: str
    span_id: str
    parent_id: str
    service: str
    name: str
    kind: str
    start_ns: int
    end_ns: int
    status_code: str = "UNSET"
    status_message: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def duration_ns(self) -> int:
        return max(0, self.end_ns - self.start_ns)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"duration_ms": round(self.duration_ns / 1e6, 3)}


@dataclass(frozen=True)
class TraceSummary:
    """One line of `alice trace list`: the root span's operation and the trace's extent."""

    trace_id: str
    start_ns: int
    duration_ns: int
    span_count: int
    error_count: int
    services: tuple[str, ...]
    root_service: str
    root_name: str
    root_status: str
    route: str

    @property
    def status(self) -> str:
        """ERROR when the root failed or any span did; otherwise the root's status (OK or UNSET)."""
        return STATUS_ERROR if self.root_status == STATUS_ERROR or self.error_count else self.root_status

    def to_dict(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id, "start_ns": self.start_ns, "duration_ms": round(self.duration_ns / 1e6, 3),
            "span_count": self.span_count, "error_count": self.error_count, "services": list(self.services),
            "root_service": self.root_service, "root_name": self.root_name, "status": self.status,
            "route": self.route,
        }


@dataclass(frozen=True)
class TraceFilter:
    """What `list_traces` returns: the newest `limit` traces, or the `slowest` N, after the filters."""

    limit: int = 20
    slowest: int | None = None
    route: str | None = None
    min_ms: float | None = None
    errors_only: bool = False
    since_ns: int | None = None


@dataclass(frozen=True)
class DurationStats:
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    total_ms: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StatsReport:
    """Where the time goes: span durations per service and per (service, span name)."""

    traces: int
    spans: int
    by_service: dict[str, DurationStats]
    by_name: dict[tuple[str, str], DurationStats]

    def to_dict(self) -> dict[str, Any]:
        return {
            "traces": self.traces,
            "spans": self.spans,
            "by_service": [{"service": service} | stats.to_dict() for service, stats in self.by_service.items()],
            "by_name": [{"service": service, "name": name} | stats.to_dict()
                        for (service, name), stats in self.by_name.items()],
        }


@dataclass(frozen=True)
class WaterfallRow:
    """A span placed in its trace: depth in the tree, offset from the trace start, on the critical path or not."""

    span: SpanRecord
    depth: int
    offset_ns: int
    critical: bool

    def to_dict(self) -> dict[str, Any]:
        return self.span.to_dict() | {"depth": self.depth, "offset_ms": round(self.offset_ns / 1e6, 3),
                                      "critical": self.critical}


class TraceStore:
    """A SQLite file of spans. Writers insert OTLP spans; readers (CLI, web) open it read-only.

    Retention is enforced on every insert, in batches: when the span count passes `max_spans`, the oldest
    traces are deleted until ~10% below the bound (whole traces, so none is left half-shown); traces that
    started more than `max_age_s` ago are deleted as well.
    """

    def __init__(self, path: Path | str, *, max_spans: int = 200_000, max_age_s: float = 86_400.0,
                 readonly: bool = False, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.path = Path(path)
        self.max_spans = max_spans
        self.max_age_ns = int(max_age_s * 1e9)
        self.readonly = readonly
        self._clock_ns = clock_ns
        self._lock = threading.Lock()
        if readonly:
            if not self.path.exists():
                raise FileNotFoundError(f"no trace store at {self.path}")
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            # Keep the write-ahead log from growing without bound between checkpoints.
            self._db.execute("PRAGMA journal_size_limit=67108864")
            self._db.executescript(SCHEMA)
        self._db.execute("PRAGMA busy_timeout=2000")
        self._span_count = self.span_count() if not readonly else 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> TraceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------------------

    def insert(self, spans: Sequence[SpanRecord]) -> int:
        """Store spans (duplicates by trace and span id are ignored); returns how many were new."""
        if self.readonly:
            raise PermissionError("this trace store was opened read-only")
        if not spans:
            return 0
        rows = [(s.trace_id, s.span_id, s.parent_id, s.service, s.name, s.kind, s.start_ns, s.end_ns,
                 s.status_code, s.status_message, _json(s.attributes) if s.attributes else "{}",
                 _json(s.events) if s.events else "[]") for s in spans]
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                before = db.total_changes
                db.executemany("INSERT OR IGNORE INTO spans (trace_id, span_id, parent_id, service, name, kind, "
                               "start_ns, end_ns, status_code, status_message, attributes, events) "
                               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
                inserted = db.total_changes - before
                self._summarize(spans, all_new=inserted == len(rows))
                self._span_count += inserted
                self._enforce_retention()
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                self._span_count = self.span_count()
                raise
        return inserted

    def _summarize(self, spans: Sequence[SpanRecord], *, all_new: bool) -> None:
        """Bring the summaries of the traces these new spans belong to up to date.

        Merged from the stored summary and the new spans where that is exact: a trace seen for the first time
        (all its spans are here), or a root without a parent known among the candidates (nothing outranks it
        but an earlier root without a parent). Otherwise, and when some spans were duplicates, recomputed from
        the stored spans (`_refresh`).
        """
        by_trace: dict[str, list[SpanRecord]] = {}
        for span in spans:
            by_trace.setdefault(span.trace_id, []).append(span)
        recompute = list(by_trace)
        if all_new:
            recompute, merged = [], []
            for chunk in _chunks(list(by_trace), 500):
                stored = {row[0]: row[1:] for row in self._db.execute(
                    "SELECT t.trace_id, t.start_ns, t.end_ns, t.span_count, t.error_count, t.services, "
                    "t.root_span_id, t.root_service, t.root_name, t.root_status, t.route, r.parent_id, r.start_ns "
                    "FROM traces AS t LEFT JOIN spans AS r ON r.trace_id = t.trace_id AND r.span_id = t.root_span_id "
                    f"WHERE t.trace_id IN ({','.join('?' * len(chunk))})", chunk)}
                for trace_id in chunk:
                    summary = _merge(trace_id, stored.get(trace_id), by_trace[trace_id])
                    if summary is None:
                        recompute.append(trace_id)
                    else:
                        merged.append(summary)
            self._db.executemany(_REPLACE_SUMMARY, merged)
        for chunk in _chunks(recompute, 500):
            self._refresh(chunk)

    def _refresh(self, trace_ids: Sequence[str]) -> None:
        """Recompute these traces' summary rows from their spans (one query for the extents, one for the roots).

        The root: a span without a parent, else one whose parent was never received, else the earliest.
        """
        db = self._db
        marks = ",".join("?" * len(trace_ids))
        extents = {row[0]: row[1:] for row in db.execute(
            "SELECT trace_id, count(*), min(start_ns), max(end_ns), sum(status_code = 'ERROR'), "
            f"group_concat(DISTINCT service) FROM spans WHERE trace_id IN ({marks}) GROUP BY trace_id", trace_ids)}
        roots = db.execute(
            "SELECT trace_id, span_id, service, name, status_code, attributes FROM ("
            " SELECT s.trace_id, s.span_id, s.service, s.name, s.status_code, s.attributes, row_number() OVER ("
            "  PARTITION BY s.trace_id ORDER BY s.parent_id != '', EXISTS (SELECT 1 FROM spans AS p WHERE"
            "  p.trace_id = s.trace_id AND p.span_id = s.parent_id), s.start_ns) AS rank"
            f" FROM spans AS s WHERE s.trace_id IN ({marks})) WHERE rank = 1", trace_ids).fetchall()
        summaries = []
        for trace_id, span_id, service, name, status, attributes in roots:
            count, start, end, errors, services = extents[trace_id]
            route = json.loads(attributes).get(ROUTE_ATTRIBUTE, "") if ROUTE_ATTRIBUTE in attributes else ""
            summaries.append((trace_id, start, end, max(0, end - start), count, errors or 0,
                              ",".join(sorted(services.split(","))), span_id, service, name, status, str(route)))
        db.executemany(_REPLACE_SUMMARY, summaries)
        gone = [trace_id for trace_id in trace_ids if trace_id not in extents]
        if gone:
            db.execute(f"DELETE FROM traces WHERE trace_id IN ({','.join('?' * len(gone))})", gone)

    def _enforce_retention(self) -> None:
        db = self._db
        doomed: list[str] = []
        cutoff = self._clock_ns() - self.max_age_ns
        doomed.extend(row[0] for row in db.execute("SELECT trace_id FROM traces WHERE start_ns < ?", (cutoff,)))
        if self._span_count > self.max_spans:
            low_water = self.max_spans - max(1, self.max_spans // 10)
            excess = self._span_count - low_water
            aged = set(doomed)
            # Every trace holds at least one span, so `excess` oldest traces are always enough.
            oldest = db.execute("SELECT trace_id, span_count FROM traces ORDER BY start_ns LIMIT ?",
                                (excess + len(aged),)).fetchall()
            for trace_id, span_count in oldest:
                if excess <= 0:
                    break
                if trace_id not in aged:
                    doomed.append(trace_id)
                excess -= span_count
        for chunk in _chunks(doomed, 500):
            marks = ",".join("?" * len(chunk))
            self._span_count -= db.execute(f"DELETE FROM spans WHERE trace_id IN ({marks})", chunk).rowcount
            db.execute(f"DELETE FROM traces WHERE trace_id IN ({marks})", chunk)

    # -- reading -------------------------------------------------------------------------------------

    def span_count(self) -> int:
        return int(self._read("SELECT count(*) FROM spans")[0][0])

    def trace_count(self) -> int:
        return int(self._read("SELECT count(*) FROM traces")[0][0])

    def list_traces(self, query: TraceFilter = TraceFilter()) -> list[TraceSummary]:
        where: list[str] = []
        params: list[Any] = []
        if query.since_ns is not None:
            where.append("start_ns >= ?")
            params.append(query.since_ns)
        if query.route:
            where.append("route = ?")
            params.append(query.route)
        if query.min_ms is not None:
            where.append("duration_ns >= ?")
            params.append(int(query.min_ms * 1e6))
        if query.errors_only:
            where.append("(error_count > 0 OR root_status = 'ERROR')")
        sql = ("SELECT trace_id, start_ns, duration_ns, span_count, error_count, services, root_service, root_name, "
               "root_status, route FROM traces")
        if where:
            sql += " WHERE " + " AND ".join(where)
        if query.slowest is not None:
            sql += " ORDER BY duration_ns DESC LIMIT ?"
            params.append(query.slowest)
        else:
            sql += " ORDER BY start_ns DESC LIMIT ?"
            params.append(query.limit)
        return [TraceSummary(row[0], row[1], row[2], row[3], row[4], tuple(filter(None, row[5].split(","))),
                             row[6], row[7], row[8], row[9]) for row in self._read(sql, params)]

    def resolve(self, trace_id: str) -> str:
        """The full id of a stored trace from its id or a unique prefix (at least 4 hex digits)."""
        wanted = trace_id.strip().lower()
        if len(wanted) < 4 or any(ch not in "0123456789abcdef" for ch in wanted):
            raise TraceNotFound(f"trace {trace_id!r} not found: a trace id is 32 hex digits (or a unique prefix)")
        # Hex ids sort below "g", so a prefix is an index range scan.
        rows = self._read("SELECT trace_id FROM traces WHERE trace_id >= ? AND trace_id < ? LIMIT 2",
                          (wanted, wanted + "g"))
        if not rows:
            raise TraceNotFound(f"trace {trace_id} not found in {self.path}")
        if len(rows) > 1 and rows[0][0] != wanted:
            raise AmbiguousTraceId(f"trace id prefix {trace_id} matches more than one trace")
        return str(rows[0][0])

    def get_trace(self, trace_id: str) -> list[SpanRecord]:
        """All spans of a trace ordered by start time; TraceNotFound when there are none."""
        full = self.resolve(trace_id)
        rows = self._read("SELECT trace_id, span_id, parent_id, service, name, kind, start_ns, end_ns, status_code, "
                          "status_message, attributes, events FROM spans WHERE trace_id = ? ORDER BY start_ns, rowid",
                          (full,))
        if not rows:
            raise TraceNotFound(f"trace {trace_id} not found in {self.path}")
        return [SpanRecord(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9],
                           json.loads(row[10]), json.loads(row[11])) for row in rows]

    def stats(self, since_ns: int | None = None) -> StatsReport:
        """Count and P50/P95/P99 of span durations per service and per span name, over the stored spans."""
        sql = "SELECT service, name, end_ns - start_ns FROM spans"
        params: tuple[Any, ...] = ()
        if since_ns is not None:
            sql += " WHERE start_ns >= ?"
            params = (since_ns,)
        by_service: dict[str, list[int]] = defaultdict(list)
        by_name: dict[tuple[str, str], list[int]] = defaultdict(list)
        rows = self._read(sql, params)
        for service, name, duration in rows:
            by_service[service].append(duration)
            by_name[(service, name)].append(duration)
        traces = self.trace_count() if since_ns is None else int(
            self._read("SELECT count(*) FROM traces WHERE start_ns >= ?", (since_ns,))[0][0])
        return StatsReport(
            traces=traces,
            spans=len(rows),
            by_service={key: duration_stats(values) for key, values in sorted(by_service.items())},
            by_name={key: duration_stats(values) for key, values in
                     sorted(by_name.items(), key=lambda item: (item[0][0], -sum(item[1])))},
        )

    def _read(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()


_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_since(text: str, now_ns: int) -> int:
    """`--since`: an age such as 90s, 10m, 2h, 1d, or an ISO date-time; returns Unix nanoseconds."""
    value = text.strip().lower()
    if value and value[-1] in _UNITS_S:
        try:
            amount = float(value[:-1])
        except ValueError:
            amount = -1.0
        if amount >= 0:
            return now_ns - int(amount * _UNITS_S[value[-1]] * 1e9)
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"since {text!r} is neither an age like 10m, 2h, 1d nor an ISO date-time") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return int(moment.timestamp() * 1e9)


def duration_stats(durations_ns: Sequence[int]) -> DurationStats:
    ms = [d / 1e6 for d in durations_ns]
    return DurationStats(len(ms), round(percentile(ms, 50), 3), round(percentile(ms, 95), 3),
                         round(percentile(ms, 99), 3), round(sum(ms), 3))


def waterfall(spans: Sequence[SpanRecord]) -> list[WaterfallRow]:
    """Spans in tree order (children by start time under their parent) with depth, offset and critical path.

    A span whose parent is not in the trace is shown as a root. The critical path is what the trace's end
    waited for: from the root, the child that finished last, then (before that child started) the child that
    finished last before it, and so on down each chosen child.
    """
    if not spans:
        return []
    by_id = {span.span_id: span for span in spans}
    children: dict[str, list[SpanRecord]] = defaultdict(list)
    roots: list[SpanRecord] = []
    for span in spans:
        if span.parent_id and span.parent_id in by_id and span.parent_id != span.span_id:
            children[span.parent_id].append(span)
        else:
            roots.append(span)
    for kids in children.values():
        kids.sort(key=lambda s: (s.start_ns, s.end_ns))
    roots.sort(key=lambda s: (s.start_ns, s.end_ns))
    origin = min(span.start_ns for span in spans)
    rows: list[WaterfallRow] = []
    placed: set[str] = set()
    critical = _critical_path(max(roots, key=lambda s: s.end_ns) if roots else spans[0], children)

    def place(start: Iterable[SpanRecord], depth: int) -> None:
        stack = [(span, depth) for span in reversed(list(start))]
        while stack:
            span, level = stack.pop()
            if span.span_id in placed:
                continue
            placed.add(span.span_id)
            rows.append(WaterfallRow(span, level, span.start_ns - origin, span.span_id in critical))
            stack.extend((kid, level + 1) for kid in reversed(children.get(span.span_id, [])))

    place(roots, 0)
    # Spans caught in a parent cycle (malformed input) are never reached from a root: show them flat.
    place((span for span in sorted(spans, key=lambda s: s.start_ns) if span.span_id not in placed), 0)
    return rows


def trace_document(rows: Sequence[WaterfallRow]) -> dict[str, Any]:
    """One trace as `alice trace show --json` and the web view give it: a summary plus the waterfall rows."""
    spans = [row.span for row in rows]
    start = min(span.start_ns for span in spans)
    end = max(span.end_ns for span in spans)
    root = spans[0]
    return {
        "trace_id": root.trace_id,
        "start_ns": start,
        "duration_ms": round((end - start) / 1e6, 3),
        "span_count": len(spans),
        "services": sorted({span.service for span in spans}),
        "root_name": root.name,
        "root_service": root.service,
        "route": root.attributes.get(ROUTE_ATTRIBUTE, ""),
        "error_count": sum(span.status_code == STATUS_ERROR for span in spans),
        "spans": [row.to_dict() for row in rows],
    }


def _critical_path(root: SpanRecord, children: dict[str, list[SpanRecord]]) -> set[str]:
    path: set[str] = set()
    stack = [(root, root.end_ns)]
    while stack:
        span, end_limit = stack.pop()
        if span.span_id in path:
            continue
        path.add(span.span_id)
        cursor = min(span.end_ns, end_limit)
        kids = [kid for kid in children.get(span.span_id, []) if kid.span_id not in path]
        while candidates := [kid for kid in kids if kid.start_ns < cursor]:
            last = max(candidates, key=lambda kid: (min(kid.end_ns, cursor), kid.start_ns))
            stack.append((last, cursor))
            kids.remove(last)
            cursor = last.start_ns
    return path


_REPLACE_SUMMARY = ("INSERT OR REPLACE INTO traces (trace_id, start_ns, end_ns, duration_ns, span_count, error_count, "
                    "services, root_span_id, root_service, root_name, root_status, route) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


def _merge(trace_id: str, stored: tuple[Any, ...] | None, new: list[SpanRecord]) -> tuple[Any, ...] | None:
    """A trace's summary row from its stored summary and its new spans; None when only the stored spans can
    tell the root (see `TraceStore._summarize`)."""
    parentless = [span for span in new if not span.parent_id]
    if stored is None:
        ids = {span.span_id for span in new}
        candidates = parentless or [span for span in new if span.parent_id not in ids] or new
        count, errors, services = 0, 0, set()
        start, end = min(span.start_ns for span in new), max(span.end_ns for span in new)
        root_fields = None
    else:
        (start, end, count, errors, joined, root_id, root_service, root_name, root_status, route, root_parent,
         root_start) = stored
        services = set(joined.split(","))
        start, end = min(start, *(span.start_ns for span in new)), max(end, *(span.end_ns for span in new))
        if root_parent == "":
            root_fields = (root_start, root_id, root_service, root_name, root_status, route)
            candidates = parentless
        elif parentless:
            root_fields, candidates = None, parentless
        else:
            return None
    count += len(new)
    errors += sum(span.status_code == STATUS_ERROR for span in new)
    services.update(span.service for span in new)
    if candidates:
        root = min(candidates, key=lambda span: span.start_ns)
        if root_fields is None or root.start_ns < root_fields[0]:
            root_fields = (root.start_ns, root.span_id, root.service, root.name, root.status_code,
                           str(root.attributes.get(ROUTE_ATTRIBUTE, "")))
    assert root_fields is not None
    return (trace_id, start, end, max(0, end - start), count, errors, ",".join(sorted(services)), *root_fields[1:])


_json = json.JSONEncoder(ensure_ascii=False).encode
"""json.dumps(..., ensure_ascii=False) without building an encoder per call (two per stored span)."""


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for index in range(0, len(items), size):
        yield items[index:index + size]
