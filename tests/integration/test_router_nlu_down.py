"""The real router over gRPC with its NLU unreachable: the rule fallback with shared slots answers tool requests
on the fast route, marked as degraded, without asking a model (in-process fakes for the cache and the LLM)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import grpc
import pytest
from fakes import FakeCache, FakeTools, settings, start_fake

from alice.common.v1 import types_pb2
from alice.llm.v1 import llm_service_pb2 as llm_pb
from alice.llm.v1 import llm_service_pb2_grpc as llm_grpc
from alice.local.redis_server import free_port
from alice.router.v1 import router_service_pb2 as pb
from alice.router.v1 import router_service_pb2_grpc as pb_grpc
from alice.runtime.server import ServiceHost
from alice.runtime.telemetry import Telemetry
from alice.taxonomy import Intent, Route, intent_name, slots_from_proto, slots_to_proto
from router_svc.config import Config
from router_svc.server import Router, build


class CountingLlm(llm_grpc.LlmServiceServicer):
    """Records every model call; picks timer.set (tool only, as the router asks)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def SelectTool(self, request: llm_pb.SelectToolRequest, context: grpc.aio.ServicerContext
                         ) -> llm_pb.SelectToolResponse:
        self.calls.append(f"SelectTool {intent_name(request.hint.intent)}")
        return llm_pb.SelectToolResponse(tool_call=types_pb2.ToolCall(intent=Intent.INTENT_TIMER_SET))

    async def GenerateStream(self, request: llm_pb.GenerateStreamRequest, context: grpc.aio.ServicerContext
                             ) -> AsyncIterator[llm_pb.GenerateStreamResponse]:
        self.calls.append("GenerateStream")
        yield llm_pb.GenerateStreamResponse(delta="Oslo.")


@pytest.fixture(scope="module")
async def no_nlu(make_telemetry: Callable[[str], Telemetry]) -> AsyncIterator[dict[str, object]]:
    llm, tools = CountingLlm(), FakeTools()
    cache_host = await start_fake("alice-cache", FakeCache(), make_telemetry("alice-cache"))
    llm_host = ServiceHost(settings("alice-llm"), make_telemetry("alice-llm"), ["alice.llm.v1.LlmService"])
    llm_grpc.add_LlmServiceServicer_to_server(llm, llm_host.server)
    await llm_host.start()
    await llm_host.set_serving()
    config = Config.from_env({
        "GRPC_PORT": "0", "NLU_ADDR": f"127.0.0.1:{free_port()}",  # nothing listens there
        "CACHE_ADDR": f"127.0.0.1:{cache_host.port}", "LLM_ADDR": f"127.0.0.1:{llm_host.port}",
        "DRAIN_DELAY_S": "0", "AUTH_MODE": "none", "RATE_LIMIT_PER_S": "10000", "RATE_LIMIT_BURST": "10000",
    })
    router: Router = await build(config, make_telemetry("alice-router"), tools=tools)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{router.host.port}")
    yield {"stub": pb_grpc.RouterServiceStub(channel), "llm": llm, "tools": tools}
    await channel.close()
    await router.host.shutdown(router.close)
    for host in (cache_host, llm_host):
        await host.shutdown()


def _request(text: str) -> pb.AskRequest:
    request = pb.AskRequest(text=text, user_id="u-nlu-down", time_zone="Europe/Stockholm")
    request.reference_time.FromJsonString("2026-03-10T08:00:00Z")  # Tuesday 09:00 in Stockholm
    return request


@pytest.mark.parametrize(("text", "intent", "slots"), [
    ("boka möte med Anna imorgon kl 14", "calendar.create_draft", {"start": "2026-03-11T14:00", "attendees": ["Anna"]}),
    ("hur blir vädret i Gbg på fredag", "weather.lookup", {"city": "Göteborg", "date": "2026-03-13"}),
], ids=["calendar", "weather"])
async def test_tool_request_takes_the_fast_route_with_its_slots(no_nlu: dict[str, object], text: str, intent: str,
                                                                 slots: dict[str, object]) -> None:
    stub, llm, tools = no_nlu["stub"], no_nlu["llm"], no_nlu["tools"]
    assert isinstance(stub, pb_grpc.RouterServiceStub) and isinstance(llm, CountingLlm)
    assert isinstance(tools, FakeTools)
    calls = len(llm.calls)
    reply = await stub.Ask(_request(text), timeout=5)
    assert reply.route == Route.ROUTE_FAST
    assert list(reply.degradations) == [pb.DEGRADATION_NLU_FALLBACK]
    assert intent_name(reply.tool_call.intent) == intent
    assert slots_from_proto(reply.tool_call.arguments) == slots
    assert reply.tool_call.arguments == slots_to_proto(slots)
    assert tools.calls[-1] == (intent, slots, "u-nlu-down")
    assert len(llm.calls) == calls  # no model was asked


async def test_missing_slot_still_goes_to_a_model(no_nlu: dict[str, object]) -> None:
    stub, llm = no_nlu["stub"], no_nlu["llm"]
    assert isinstance(stub, pb_grpc.RouterServiceStub) and isinstance(llm, CountingLlm)
    calls = len(llm.calls)
    reply = await stub.Ask(_request("sätt en timer"), timeout=5)
    # micro or, past the router's micro share, planner: a model either way
    assert reply.route in (Route.ROUTE_MICRO, Route.ROUTE_PLANNER)
    assert pb.DEGRADATION_NLU_FALLBACK in reply.degradations
    assert llm.calls[calls:] == ["SelectTool timer.set"]
