"""A slow LLM under load, with real processes: Redis, NLU, cache, LLM service, router, weather replay.

The LLM service runs its real `openai` back end against a stand-in model server (openai_standin.py) that
answers at once, so each LLM call takes the injected LLM_FAULT_DELAY_MS (the bench's llm-slow fault) and not
seconds of CPU-bound generation on a busy machine. With 3 s per call, over the router's 2.5 s slow-call
threshold, the planner's breaker opens on slow calls; requests keep getting replies before their deadline
(the micro model, then the honest "cannot answer now"); after `llm-normal` the breaker closes again.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from faultload import NOW, ask, breaker_states, run_with_faults, standard_items

from alice.bench.traffic import TrafficItem
from alice.local.mesh import LocalMesh
from alice.nlu.v1 import nlu_service_pb2 as nlu_pb
from alice.nlu.v1 import nlu_service_pb2_grpc as nlu_grpc
from alice.runtime.auth import DevCredentials
from alice.taxonomy import Intent, Route
from router_svc import messages

SLOW_MS = 3000
"""Over the router's LLM slow-call threshold (2.5 s), under the request deadline (5 s)."""
LLM_INTENTS = ("info.query",)
FAST_INTENTS = ("time.now", "weather.lookup", "greeting.hello")


@pytest.fixture(scope="module")
def standin() -> Iterator[str]:
    process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("openai_standin.py"))],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture(scope="module")
def mesh(standin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    env = {"LLM_BACKEND": "openai", "LLM_BASE_URL": standin, "LLM_WARM_DATE": "2026-03-10",
           "LLM_FAULT_DELAY_MS": str(SLOW_MS)}
    with LocalMesh(env=env, auth_dir=tmp_path_factory.mktemp("credentials"), replay_weather=True, quiet=True,
                   start_timeout_s=120) as started:
        yield started


def planner_questions(mesh: LocalMesh) -> list[TrafficItem]:
    """Unique info questions the NLU sends straight to the planner.

    An abstention goes to micro first, whose 3 s budget the delay exceeds; the planner would then be tried
    with what is left and count a timeout, which is not the slow call this test is about.
    """
    chosen = []
    with grpc.insecure_channel(mesh.address("nlu")) as channel:
        stub = nlu_grpc.NluServiceStub(channel)
        for item in standard_items(LLM_INTENTS, unique=True):
            request = nlu_pb.ParseRequest(text=item.text, time_zone=str(NOW.tzinfo))
            request.reference_time.FromDatetime(NOW)
            parsed = stub.Parse(request, timeout=5)
            if (parsed.intent == Intent.INTENT_INFO_QUERY and not parsed.abstained
                    and parsed.route_hint in (Route.ROUTE_PLANNER, Route.ROUTE_UNSPECIFIED)):
                chosen.append(item)
    return chosen


def test_slow_llm_opens_the_planner_breaker_and_replies_keep_their_deadline(mesh: LocalMesh) -> None:
    credentials = mesh.credentials
    assert isinstance(credentials, DevCredentials)
    questions = planner_questions(mesh)
    assert len(questions) >= 50, len(questions)
    items = [item for pair in zip(questions[:40], standard_items(FAST_INTENTS)[:40], strict=True) for item in pair]

    # The LLM is slow from the start (LLM_FAULT_DELAY_MS); llm-normal takes the delay away half-way, no restart.
    llm_pid = mesh.processes["llm"].process.pid
    run = run_with_faults(mesh, credentials, items, rate=4, duration_s=16, faults="llm-normal@9s")
    assert mesh.processes["llm"].process.pid == llm_pid  # the same process: only its injected delay changed

    planner = run.transitions("llm.planner")
    opened = [t for t in planner if t.startswith("closed->open")]
    assert opened and "slow-call rate" in opened[0], planner
    assert run.breakers["states_seen"]["llm.planner"][:2] == ["closed", "open"]
    for phase in ("before", "during"):
        summary = run.summary(phase)
        assert summary["errors_by_code"] == {}, phase  # every request got a reply, none an error status
        assert summary["past_deadline"] == 0, phase
    for outcome in run.outcomes:
        if outcome.expected_intent in FAST_INTENTS:
            assert outcome.valid, outcome  # the slow LLM does not touch routes that need no model
        elif not outcome.valid:
            assert outcome.answer == messages.UNAVAILABLE, outcome  # the honest fallback, never an error
            assert {"PLANNER_UNAVAILABLE", "MICRO_UNAVAILABLE"} & set(outcome.degradations), outcome
    slow = run.phases["before"]
    assert any("PLANNER_UNAVAILABLE" in o.degradations for o in slow)  # the open breaker answered at once

    # Recovered: the next model calls are fast; the planner's probe succeeds and its breaker closes. A question
    # not asked before goes to the model whenever the breaker lets a probe through (half open).
    fresh = iter(questions[40:])
    deadline = time.monotonic() + 40
    while (state := breaker_states(mesh, credentials)["llm.planner"]) != "closed":
        assert time.monotonic() < deadline, breaker_states(mesh, credentials)
        if state == "half_open":
            ask(mesh, credentials, next(fresh).text)
        time.sleep(0.5)
    reply = ask(mesh, credentials, next(fresh).text)
    assert reply.route == Route.ROUTE_PLANNER and reply.answer != messages.UNAVAILABLE, reply
