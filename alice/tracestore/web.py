"""Read-only web view of the trace store: one self-contained page and a small JSON API, on loopback."""

from __future__ import annotations

import json
import logging
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from alice.tracestore.store import (
    AmbiguousTraceId,
    TraceFilter,
    TraceNotFound,
    TraceStore,
    parse_since,
    trace_document,
    waterfall,
)

log = logging.getLogger(__name__)

_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})


def index_html() -> bytes:
    return resources.files("alice.tracestore").joinpath("static", "index.html").read_bytes()


def trace_filter(query: dict[str, list[str]], now_ns: int) -> TraceFilter:
    """A TraceFilter from query parameters (`limit`, `slowest`, `route`, `min_ms`, `errors`, `since`)."""

    def first(name: str) -> str | None:
        values = [value for value in query.get(name, []) if value.strip()]
        return values[0].strip() if values else None

    limit, slowest, min_ms, since = first("limit"), first("slowest"), first("min_ms"), first("since")
    return TraceFilter(
        limit=max(1, min(int(limit), 1000)) if limit else 100,
        slowest=max(1, min(int(slowest), 1000)) if slowest else None,
        route=first("route"),
        min_ms=float(min_ms) if min_ms else None,
        errors_only=first("errors") in ("1", "true", "on", "yes"),
        since_ns=parse_since(since, now_ns) if since else None,
    )


def _host_name(header: str) -> str:
    """The host part of a Host header ("127.0.0.1:16686" -> "127.0.0.1", "[::1]:80" -> "[::1]")."""
    header = header.strip().lower()
    if header.startswith("["):
        return header.split("]", 1)[0] + "]"
    return header.rsplit(":", 1)[0]


class WebServer(ThreadingHTTPServer):
    """Serves `/` (the page), `/api/traces`, `/api/traces/<id>`, `/api/stats` and `/healthz`; GET only."""

    daemon_threads = True

    def __init__(self, host: str, port: int, db_path: Path) -> None:
        super().__init__((host, port), _Handler)
        self.db_path = db_path
        self._store: TraceStore | None = None
        self._store_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        host = str(self.server_address[0])
        return f"http://{host if ':' not in host else f'[{host}]'}:{self.port}/"

    def store(self) -> TraceStore:
        """A read-only connection, opened on first use (the receiver may create the file after we start)."""
        with self._store_lock:
            if self._store is None:
                self._store = TraceStore(self.db_path, readonly=True)
            return self._store

    def start(self) -> WebServer:
        self._thread = threading.Thread(target=self.serve_forever, name="trace-web", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._store_lock:
            if self._store is not None:
                self._store.close()
                self._store = None


class _Handler(BaseHTTPRequestHandler):
    server: WebServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("web %s " + format, self.client_address[0], *args)

    def do_GET(self) -> None:
        # Loopback only, also against DNS rebinding: a page on another origin cannot name this server.
        if _host_name(self.headers.get("Host", "")) not in _LOCAL_HOSTS:
            self._json(HTTPStatus.FORBIDDEN, {"error": "the trace store answers to localhost only"})
            return
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        try:
            if path in ("/", "/index.html"):
                self._send(HTTPStatus.OK, index_html(), "text/html; charset=utf-8")
            elif path == "/healthz":
                self._json(HTTPStatus.OK, {"status": "ok"})
            elif path == "/api/traces":
                query = trace_filter(parse_qs(url.query), time.time_ns())
                traces = self.server.store().list_traces(query)
                self._json(HTTPStatus.OK, {"traces": [trace.to_dict() for trace in traces]})
            elif path.startswith("/api/traces/"):
                spans = self.server.store().get_trace(unquote(path.rsplit("/", 1)[1]))
                self._json(HTTPStatus.OK, trace_document(waterfall(spans)))
            elif path == "/api/stats":
                self._json(HTTPStatus.OK, self.server.store().stats().to_dict())
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {url.path}"})
        except (TraceNotFound, AmbiguousTraceId) as error:
            self._json(HTTPStatus.NOT_FOUND, {"error": str(error.args[0])})
        except ValueError as error:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(error)})
        except FileNotFoundError as error:
            self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": f"{error}: no spans received yet"})

    def do_POST(self) -> None:
        self.close_connection = True  # the body is not read
        self._json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "read-only"})

    do_PUT = do_DELETE = do_PATCH = do_POST

    def _json(self, status: HTTPStatus, data: dict[str, Any]) -> None:
        self._send(status, json.dumps(data, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy",
                         "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                         "connect-src 'self'; img-src 'self' data:")
        self.end_headers()
        self.wfile.write(body)
