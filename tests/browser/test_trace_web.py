"""The trace web view in a real headless browser (Debian's chromium driven by Playwright for Python)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from alice.tracestore.config import TraceStoreConfig
from alice.tracestore.server import RunningTraceStore, start

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REPORTS = Path(__file__).resolve().parents[2] / "reports"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)")


@pytest.fixture(scope="module")
async def running(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningTraceStore]:
    db = tmp_path_factory.mktemp("web") / "traces.db"
    store = await start(TraceStoreConfig(db_path=db, otlp_grpc_port=0, otlp_http_port=-1, web_port=0))
    yield store
    await store.close()


async def export_known_trace(endpoint: str) -> tuple[str, list[str]]:
    """A 10-span request across router, nlu and cache over real OTLP; returns its trace id and span names."""
    providers = {name: TracerProvider(resource=Resource.create({"service.name": f"alice-{name}"}))
                 for name in ("router", "nlu", "cache")}
    for provider in providers.values():
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=5)))
    router, nlu, cache = (providers[name].get_tracer("test") for name in ("router", "nlu", "cache"))
    trace_id = record_request(router, nlu, cache)
    for provider in providers.values():
        assert await asyncio.to_thread(provider.force_flush, 10_000)
        await asyncio.to_thread(provider.shutdown)
    names = ["/alice.router.v1.RouterService/Ask", "router.nlu", "/alice.nlu.v1.NluService/Parse",
             "/alice.nlu.v1.NluService/Parse", "nlu.classify", "nlu.slots", "router.cache_l1", "cache.lookup.l1",
             "router.route", "router.tool"]
    return trace_id, names


def record_request(router: trace.Tracer, nlu: trace.Tracer, cache: trace.Tracer) -> str:
    with router.start_as_current_span("/alice.router.v1.RouterService/Ask", kind=SpanKind.SERVER) as root:
        root.set_attributes({"alice.route": "fast", "alice.intent": "calendar.create", "alice.confidence": 0.93})
        with router.start_as_current_span("router.nlu") as understand:
            with router.start_as_current_span("/alice.nlu.v1.NluService/Parse", kind=SpanKind.CLIENT):
                with nlu.start_as_current_span("/alice.nlu.v1.NluService/Parse", kind=SpanKind.SERVER):
                    with nlu.start_as_current_span("nlu.classify"):
                        time.sleep(0.004)
                    with nlu.start_as_current_span("nlu.slots"):
                        time.sleep(0.001)
        # The exact-cache lookup ran in parallel with the NLU (as in the router) and ended first: not critical.
        assert isinstance(understand, SdkSpan) and understand.start_time is not None
        began = understand.start_time
        lookup = router.start_span("router.cache_l1", start_time=began + 1_000_000)
        with trace.use_span(lookup):
            l1 = cache.start_span("cache.lookup.l1", start_time=began + 1_200_000)
            l1.set_attribute("alice.cache.tier", "miss")
            l1.end(end_time=began + 2_500_000)
        lookup.add_event("alice.fallback", {"alice.fallback": "cache_bypass"}, timestamp=began + 2_600_000)
        lookup.end(end_time=began + 2_800_000)
        with router.start_as_current_span("router.route") as decision:
            decision.set_attribute("alice.route", "fast")
        with router.start_as_current_span("router.tool", attributes={"alice.tool": "calendar.create"}) as tool:
            time.sleep(0.006)
            tool.set_status(Status(StatusCode.ERROR, "UNAVAILABLE: calendar store"))
    return f"{root.get_span_context().trace_id:032x}"


async def test_waterfall_shows_every_span_of_a_known_trace(running: RunningTraceStore) -> None:
    from playwright.async_api import async_playwright

    trace_id, names = await export_known_trace(running.otlp_endpoint)
    assert running.web_url is not None
    REPORTS.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)

            # The list: the known trace is there, with its route; clicking it opens the waterfall.
            await page.goto(running.web_url, wait_until="networkidle")
            row = page.locator(f"tr[data-trace-id='{trace_id}']")
            await row.wait_for(timeout=10_000)
            assert "fast" in await row.inner_text()
            await page.screenshot(path=str(REPORTS / "trace_list.png"), full_page=True)
            await row.click()
            await page.wait_for_url(f"**#/trace/{trace_id}")

            rows = page.locator("[data-testid=span-row]")
            await rows.nth(9).wait_for(timeout=10_000)
            assert await rows.count() == 10
            shown = await page.locator("[data-testid=span-row] .span-name").all_inner_texts()
            assert shown == names  # tree order: children by start time under their parent
            # Every span has a visible bar inside the timeline.
            for index in range(10):
                box = await rows.nth(index).locator(".wf-bar").bounding_box()
                assert box is not None and box["width"] >= 1
            # The root and the tool (which ended last) are on the critical path; the failed tool is marked.
            assert "critical" in (await rows.nth(0).get_attribute("class") or "")
            tool_row = page.locator("[data-testid=span-row]", has_text="router.tool")
            assert "critical" in (await tool_row.get_attribute("class") or "")
            alias_row = page.locator("[data-testid=span-row]", has_text="router.cache_l1")
            assert "critical" not in (await alias_row.get_attribute("class") or "")
            assert await alias_row.locator(".crit").inner_text() == ""
            assert await tool_row.locator(".wf-bar.error").count() == 1
            # Span details: attributes and events of the clicked span.
            await page.locator("[data-testid=span-row]", has_text="router.cache_l1").click()
            details = await page.locator("#details").inner_text()
            assert "router.cache_l1" in details and "alice.fallback" in details
            await page.locator("[data-testid=span-row]", has_text="router.tool").click()
            assert "UNAVAILABLE: calendar store" in await page.locator("#details").inner_text()
            head = await page.locator("#trace-head").inner_text()
            assert trace_id in head and "1 error(s)" in head
            await page.screenshot(path=str(REPORTS / "trace_waterfall.png"), full_page=True)

            # Stats view and the not-found message for an unknown id.
            await page.goto(running.web_url + "#/stats", wait_until="networkidle")
            await page.locator("#stats-name tbody tr").first.wait_for(timeout=10_000)
            assert "nlu.classify" in await page.locator("#stats-name").inner_text()
            await page.goto(running.web_url + "#/trace/" + "ab" * 16)
            await page.locator("#error").wait_for(state="visible", timeout=10_000)
            assert "not found" in await page.locator("#error").inner_text()
            assert problems == [] or all("404" in problem for problem in problems), problems
        finally:
            await browser.close()
    assert (REPORTS / "trace_waterfall.png").stat().st_size > 10_000
