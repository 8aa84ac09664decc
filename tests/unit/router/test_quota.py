"""Unit tests for the micro-route quota."""

from __future__ import annotations

import asyncio
import random

import pytest

from router_svc.quota import MicroQuota


def route_once(quota: MicroQuota) -> bool:
    """What the router does: try micro, fall back to planner and record that."""
    if quota.admit_micro():
        return True
    quota.record("planner")
    return False


@pytest.mark.parametrize(
    ("max_share", "window", "expected_micro"),
    [
        pytest.param(0.3, 100, 30, id="30pct-of-100"),
        pytest.param(0.25, 20, 5, id="25pct-of-20"),
        pytest.param(0.1, 7, 0, id="share-below-one-slot"),
        pytest.param(0.5, 1, 0, id="window-one"),
    ],
)
def test_exact_share_bound_after_many_decisions(max_share: float, window: int, expected_micro: int) -> None:
    quota = MicroQuota(max_share, window)
    for _ in range(10 * window + 1000):
        route_once(quota)
        assert quota.share() <= max_share
    snap = quota.snapshot()
    assert (snap.decisions, snap.micro) == (window, expected_micro)
    assert snap.share == expected_micro / window
    assert snap.admitted + snap.rejected == 10 * window + 1000


def test_cold_start_admits_once_share_allows() -> None:
    quota = MicroQuota(0.3, 100)
    assert [route_once(quota) for _ in range(4)] == [False, False, False, True]
    assert quota.share() == 0.25


def test_rejected_admit_records_nothing() -> None:
    quota = MicroQuota(0.5, 10)
    quota.record("fast")
    assert quota.admit_micro()
    assert not quota.admit_micro()
    snap = quota.snapshot()
    assert (snap.decisions, snap.micro, snap.admitted, snap.rejected) == (2, 1, 1, 1)


def test_window_slides() -> None:
    quota = MicroQuota(0.5, 4)
    quota.record("fast")
    assert quota.admit_micro()
    quota.record("fast")
    assert quota.admit_micro()
    assert quota.share() == 0.5
    # Four non-micro decisions push both micro decisions out of the window.
    for route in ("planner", "cache", "fast", "planner"):
        quota.record(route)
    assert (quota.snapshot().micro, quota.share()) == (0, 0.0)
    # An evicted micro frees its slot: [fast, planner, micro, micro] would be 0.5.
    assert quota.admit_micro()
    assert quota.admit_micro()
    assert quota.share() == 0.5
    assert not quota.admit_micro()


def test_eviction_of_oldest_micro_is_counted_when_admitting() -> None:
    quota = MicroQuota(0.5, 2)
    quota.record("fast")
    assert quota.admit_micro()  # window [fast, micro]
    quota.record("fast")  # window [micro, fast]
    # Admitting evicts the old micro: [fast, micro] stays at 0.5.
    assert quota.admit_micro()
    assert quota.snapshot().micro == 1


@pytest.mark.parametrize(
    ("max_share", "admitted"),
    [
        pytest.param(0.0, False, id="zero-never-admits"),
        pytest.param(1.0, True, id="one-always"),
    ],
)
def test_share_edges(max_share: float, admitted: bool) -> None:
    quota = MicroQuota(max_share, 10)
    results = {quota.admit_micro() for _ in range(50)}
    assert results == {admitted}
    snap = quota.snapshot()
    assert snap.share == (1.0 if admitted else 0.0)
    assert snap.decisions == (10 if admitted else 0)


def test_empty_share_is_zero() -> None:
    assert MicroQuota(0.3).share() == 0.0


def test_record_micro_is_refused() -> None:
    with pytest.raises(ValueError, match="admit_micro"):
        MicroQuota(0.3).record("micro")


@pytest.mark.parametrize(
    ("max_share", "window", "message"),
    [
        pytest.param(-0.1, 100, "max_share", id="share-negative"),
        pytest.param(1.01, 100, "max_share", id="share-above-one"),
        pytest.param(float("nan"), 100, "max_share", id="share-nan"),
        pytest.param(0.3, 0, "window", id="window-zero"),
    ],
)
def test_validation(max_share: float, window: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MicroQuota(max_share, window)


@pytest.mark.asyncio
async def test_concurrent_tasks_never_exceed_cap_and_finish() -> None:
    quota = MicroQuota(0.3, 100)
    rng = random.Random(20)
    worst = 0.0

    async def decide(wants_micro: bool) -> bool:
        nonlocal worst
        # Yield first so all tasks interleave instead of running in creation order.
        await asyncio.sleep(0)
        admitted = quota.admit_micro() if wants_micro else False
        if not admitted:
            await asyncio.sleep(0)
            quota.record(rng.choice(("fast", "planner", "cache")))
        worst = max(worst, quota.share())
        return admitted

    wants = [rng.random() < 0.8 for _ in range(10_000)]
    # A timeout turns a deadlock into a failure instead of a hung test run.
    async with asyncio.timeout(60):
        results = await asyncio.gather(*(decide(w) for w in wants))

    snap = quota.snapshot()
    assert worst <= 0.3
    assert snap.decisions == 100
    assert snap.micro <= 30
    assert snap.admitted == sum(results)
    assert snap.admitted + snap.rejected == sum(wants)
