"""The gRPC receiver writes exports that arrive together in one transaction, and answers each one."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

import grpc
from test_tracestore_convert import good_span, request

from alice.tracestore.receiver import TraceReceiver
from alice.tracestore.store import SpanRecord


class Sink:
    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[list[str]] = []
        self.error = error
        self.threads: set[int] = set()

    def insert(self, spans: Sequence[SpanRecord]) -> int:
        self.threads.add(threading.get_ident())
        self.calls.append([span.span_id for span in spans])
        if self.error is not None:
            raise self.error
        return len(spans)


class Aborted(Exception):
    pass


class Context:
    """The part of grpc.aio.ServicerContext the receiver uses."""

    def __init__(self) -> None:
        self.code: grpc.StatusCode | None = None

    async def abort(self, code: grpc.StatusCode, details: str) -> Any:
        self.code = code
        raise Aborted(details)


def _export(span_id: str) -> bytes:
    return request(good_span(span_id=bytes.fromhex(span_id))).SerializeToString()


async def test_exports_arriving_together_share_one_insert() -> None:
    sink = Sink()
    receiver = TraceReceiver(sink, gather_s=0.05)
    replies = await asyncio.gather(*(receiver.Export(_export(span_id), Context())  # type: ignore[arg-type]
                                     for span_id in ("0000000000000001", "0000000000000002", "0000000000000003")))
    assert sink.calls == [["0000000000000001", "0000000000000002", "0000000000000003"]]
    assert threading.get_ident() not in sink.threads  # SQLite work stays off the event loop
    assert all(not reply.HasField("partial_success") for reply in replies)
    await receiver.Export(_export("0000000000000004"), Context())  # type: ignore[arg-type]
    assert sink.calls[-1] == ["0000000000000004"]


async def test_a_failed_write_is_unavailable_for_every_export_in_it() -> None:
    receiver = TraceReceiver(Sink(sqlite3.OperationalError("database is locked")), gather_s=0.05)
    contexts = [Context(), Context()]
    results = await asyncio.gather(*(receiver.Export(_export(span_id), context)  # type: ignore[arg-type]
                                     for span_id, context in zip(("0000000000000001", "0000000000000002"),
                                                                 contexts, strict=True)),
                                   return_exceptions=True)
    assert all(isinstance(result, Aborted) for result in results)
    assert [context.code for context in contexts] == [grpc.StatusCode.UNAVAILABLE] * 2


async def test_an_export_of_only_invalid_spans_writes_nothing() -> None:
    sink = Sink()
    reply = await TraceReceiver(sink, gather_s=0.0).Export(  # type: ignore[arg-type]
        request(good_span(trace_id=b"short")).SerializeToString(), Context())
    assert sink.calls == [] and reply.partial_success.rejected_spans == 1

