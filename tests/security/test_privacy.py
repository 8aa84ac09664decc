"""Privacy: no user text, e-mail address or calendar content in logs or spans after real requests; Forget deletes
all of one user's data (tool data and cached answers) so that a SCAN for the user's hash tag finds nothing."""

from __future__ import annotations

import logging
import re

import grpc
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from security_helpers import ALICE_MEMORY, ALICE_SETUP, Stack, ask, seed_alice, user_keys

from alice.router.v1 import router_service_pb2 as pb

FAILING = "Boka ett möte"
"""Slots missing: the model route, which is down here, answers honestly and the cache remembers the failure (L3)."""
PERSONAL_QUESTIONS = (
    "Skicka ett mejl till bertil.berg@example.org om hyran",
    FAILING,
    "Vad har jag för möten imorgon?",
    "Vad har jag för möten på torsdag?",
    "Vad kommer du ihåg om Gunnars portkod?",
    "Hur blir vädret i Göteborg imorgon?",
)
"""Changes first (each one drops the user's cached answers), then questions whose answers get cached."""
MUST_NOT_APPEAR = (
    *ALICE_SETUP, *PERSONAL_QUESTIONS, ALICE_MEMORY, "anna@example.com", "bertil.berg@example.org", "Projekt Falk",
    "Anna", "Gunnar", "4711", "budgeten", "hyran",
)


def _appears(needle: str, text: str) -> bool:
    """A number counts only on its own: "4711" in "kod 4711", not inside a timestamp or a port number."""
    if needle.isdigit():
        return re.search(rf"(?<!\d){needle}(?!\d)", text) is not None
    return needle in text


def _span_texts(exporter: InMemorySpanExporter) -> list[str]:
    texts = []
    for span in exporter.get_finished_spans():
        texts.append(span.name)
        texts += [f"{k}={v!s}" for k, v in (span.attributes or {}).items()]
        for event in span.events:
            texts.append(event.name)
            texts += [f"{k}={v!s}" for k, v in (event.attributes or {}).items()]
        texts.append(str(span.status.description or ""))
    return texts


async def test_no_user_text_email_or_calendar_content_in_logs_or_spans(
        stack: Stack, span_exporter: InMemorySpanExporter, caplog: pytest.LogCaptureFixture) -> None:
    span_exporter.clear()
    with caplog.at_level(logging.DEBUG):
        await seed_alice(stack)
        stub = stack.stub()
        for text in PERSONAL_QUESTIONS:
            # Carol takes the failure path: her remembered failure must go with her Forget too.
            who = "carol" if text == FAILING else "alice"
            await ask(stub, text, stack.api_key(who))
            await ask(stub, text, stack.jwt(who))  # again: cache hits log and trace too
        with pytest.raises(grpc.aio.AioRpcError):  # a rejected request must not log its text either
            await ask(stub, "Vad har jag för möten med Anna imorgon?", stack.api_key("alice"), stack.users["bob"])
    texts = _span_texts(span_exporter)
    logs = [record.getMessage() for record in caplog.records]
    logs += [caplog.text]
    assert len(texts) > 50 and logs, "nothing was captured: the check would prove nothing"
    leaks = [(needle, text) for needle in MUST_NOT_APPEAR for text in texts + logs if _appears(needle, text)]
    assert not leaks, leaks[:5]


async def test_forget_deletes_all_of_one_users_data_and_nothing_else(stack: Stack) -> None:
    await seed_alice(stack)
    stub = stack.stub()
    for text in (t for t in PERSONAL_QUESTIONS if t != FAILING):
        await ask(stub, text, stack.api_key("alice"))
        await ask(stub, text, stack.api_key("alice"))
        await ask(stub, text, stack.api_key("bob"))
    alice, bob = stack.users["alice"], stack.users["bob"]
    before = await user_keys(stack, alice)
    assert any(b":t:" in k for k in before) and any(b":c1:" in k for k in before), before  # tool data and cache
    bob_before = sorted(await user_keys(stack, bob))

    reply = await stub.Forget(pb.ForgetRequest(), metadata=stack.api_key("alice"), timeout=10)

    assert reply.tool_keys_deleted >= 4 and reply.cached_answers_deleted >= 1
    assert await user_keys(stack, alice) == []
    assert sorted(await user_keys(stack, bob)) == bob_before
    fresh = await ask(stub, "Vad har jag för möten imorgon?", stack.api_key("alice"))
    assert "Anna" not in fresh.answer and fresh.cache_tier == 0  # no stale cached answer
    again = await stub.Forget(pb.ForgetRequest(user_id=alice), metadata=stack.jwt("alice"), timeout=10)
    assert again.tool_keys_deleted == 0
    assert await user_keys(stack, alice) == []


async def test_forget_also_drops_remembered_failures(stack: Stack) -> None:
    stub = stack.stub()
    await ask(stub, FAILING, stack.api_key("carol"))
    assert any(b":l3:" in key for key in await user_keys(stack, stack.users["carol"]))
    await stub.Forget(pb.ForgetRequest(), metadata=stack.api_key("carol"), timeout=10)
    assert await user_keys(stack, stack.users["carol"]) == []



async def test_forget_deletes_while_the_cache_still_marks_redis_down_after_a_stall(stack: Stack) -> None:
    """A loaded machine stalls Redis past the cache's 50 ms command timeout: the cache marks Redis down for a
    back-off (answering misses), though Redis answers again at once. A Forget in that window must still delete
    the cached answers, not fail fast ("call Forget again") nor report a half-deletion. (Here the window is the
    cache's default back-off; tests/integration/test_cache_service.py holds the mark for certain.)"""
    await seed_alice(stack)
    stub = stack.stub()
    await ask(stub, "Vad har jag för möten imorgon?", stack.api_key("alice"))
    alice = stack.users["alice"]
    before = await user_keys(stack, alice)
    assert any(b":t:" in k for k in before) and any(b":c1:" in k for k in before), before

    # Writes stall: the model route's remembered failure (an L3 write) times out and the cache marks Redis down.
    await stack.redis.client_pause(10_000, all=False)  # writes only; reads and UNPAUSE go on
    try:
        await ask(stub, FAILING, stack.api_key("ops"))
    finally:
        await stack.redis.client_unpause()
    reply = await stub.Forget(pb.ForgetRequest(), metadata=stack.api_key("alice"), timeout=10)

    assert reply.tool_keys_deleted >= 4 and reply.cached_answers_deleted >= 1
    assert await user_keys(stack, alice) == []
