"""A short `alice bench` against a real local mesh: Redis, NLU, cache and router processes, weather replay.

The LLM service is left out (it loads and warms two models for minutes); the router then answers LLM routes
with its honest fallback, which the bench counts as replies that are not valid answers.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from alice.bench.faults import FaultSchedule, parse_faults
from alice.bench.runner import Plan, Runner
from alice.bench.stats import split_phases, summarize
from alice.bench.traffic import load_traffic
from alice.cli.common import reference_time
from alice.cli.main import main
from alice.local.mesh import LocalMesh
from alice.local.redis_server import free_port
from alice.runtime.auth import DevCredentials

ROOT = Path(__file__).resolve().parents[2]
STANDARD = ROOT / "data" / "traffic" / "standard.jsonl"
CONTRACT = ("n", "offered_rate", "achieved_rate", "success_rate", "tool_accuracy", "tool_precision", "cache_hit_rate",
            "cache_hit_rate_all", "latency_ms", "by_route", "errors_by_code", "slo", "passed")


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    # No log_dir: LocalMesh keeps its log files open after start (filterwarnings=error turns that into a failure).
    with LocalMesh(services=("nlu", "cache", "router"), env={"LLM_ADDR": f"127.0.0.1:{free_port()}"},
                   auth_dir=tmp_path_factory.mktemp("credentials"), replay_weather=True, quiet=True,
                   start_timeout_s=120) as started:
        yield started


@pytest.fixture(scope="module")
def credentials(mesh: LocalMesh) -> DevCredentials:
    assert mesh.credentials is not None
    return mesh.credentials


def _bench(argv: list[str], capsys: pytest.CaptureFixture[str], credentials: DevCredentials
           ) -> tuple[int, dict[str, object]]:
    code = main(["bench", *argv, "--json", "--no-progress", "--credentials", str(credentials.directory)])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    return code, json.loads(lines[-1])


def test_short_open_loop_bench_reports_the_contract(mesh: LocalMesh, credentials: DevCredentials, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, result = _bench(["--data", str(STANDARD), "--rate", "8", "--duration", "4", "--loop",
                           "--now", "2026-03-10T09:00", "--target", mesh.address("router"),
                           "--report", str(tmp_path / "report")], capsys, credentials)
    assert list(result)[: len(CONTRACT)] == list(CONTRACT)
    assert code in (0, 1) and result["passed"] is (code == 0)
    n = result["n"]
    assert isinstance(n, int) and n >= 15
    assert result["errors_by_code"] == {}
    assert result["malformed_lines"] == 5
    assert isinstance(result["by_route"], dict) and "fast" in result["by_route"]
    slo = result["slo"]
    assert isinstance(slo, dict) and set(slo) == {"p95_latency_ms", "tool_precision", "success_rate", "cache_hit_rate"}
    for name in ("result.json", "outcomes.jsonl", "latency_over_time.png", "latency_histogram_by_route.png",
                 "hit_rate_over_time.png"):
        assert (tmp_path / "report" / name).stat().st_size > 0, name
    assert len((tmp_path / "report" / "outcomes.jsonl").read_text().splitlines()) == n


def test_closed_loop_and_many_users(mesh: LocalMesh, credentials: DevCredentials, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    _, result = _bench(["--data", str(STANDARD), "--concurrency", "3", "--duration", "3", "--loop",
                        "--now", "2026-03-10T09:00", "--target", mesh.address("router"),
                        "--report", str(tmp_path / "r")], capsys, credentials)
    assert result["mode"] == "closed loop 3 workers"
    assert isinstance(result["users"], int) and result["users"] >= 5


def test_traffic_the_router_rejects_still_gives_a_report(mesh: LocalMesh, credentials: DevCredentials,
                                                         tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"text": ""}\n{"text": "   "}\nnot json\n{"text": "hej", "user": "u2"}\n'
                    + json.dumps({"text": "x" * 3000}) + "\n", encoding="utf-8")
    code, result = _bench(["--data", str(data), "--rate", "20", "--target", mesh.address("router"),
                           "--report", str(tmp_path / "r")], capsys, credentials)
    assert code == 1 and result["n"] == 4
    assert result["errors_by_code"] == {"INVALID_ARGUMENT": 3}
    assert result["success_rate"] == pytest.approx(0.25)


def test_nlu_kill_and_restart_are_real_events(mesh: LocalMesh, credentials: DevCredentials) -> None:
    items, _ = load_traffic(STANDARD)
    plan = Plan(items=items, rate=8.0, duration_s=8.0, loop=True, deadline_s=5.0,
                now=reference_time("2026-03-10T09:00", "Europe/Stockholm"))
    schedule = FaultSchedule(mesh, parse_faults("kill-nlu@2s,restart-nlu@4s"))
    old_pid = mesh.processes["nlu"].process.pid

    async def run() -> list[object]:
        loop = asyncio.get_running_loop()
        t0 = loop.time() + 0.1
        faults = loop.create_task(schedule.run(t0))
        result = await Runner(mesh.address("router"), plan, progress=False, bearer=credentials.bearer_for).run(t0)
        await faults
        return list(result.outcomes)

    outcomes = asyncio.run(run())
    assert [entry["event"] for entry in schedule.log] == ["kill-nlu@2s", "restart-nlu@4s"]
    assert mesh.processes["nlu"].process.pid != old_pid and mesh.processes["nlu"].process.poll() is None
    phases = split_phases(outcomes, schedule.event_times())  # type: ignore[arg-type]
    during = summarize(phases["during"])
    assert during["n"] > 0 and during["errors_by_code"] == {}
    assert during["degradations"].get("NLU_FALLBACK", 0) > 0  # the router's rule-based fallback answered
    # With the shared slot extraction the fallback runs tools itself: this mesh has no LLM to ask.
    fallback_tools = [o for o in phases["during"] if "NLU_FALLBACK" in o.degradations and o.route == "fast" and o.tool]
    assert fallback_tools and all(o.tool == o.expected_tool for o in fallback_tools)
