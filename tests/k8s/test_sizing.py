"""The sizing formula behind the worker pods' session slots."""

from __future__ import annotations

import pytest

from deployments.sizing import SessionCost, parse_cpu, parse_memory, session_slots


def test_memory_bounds_a_memory_poor_pod():
    # 12 GiB: 0.8 x 12288 MB - 1024 MB base = 8806 MB -> 88 calls of 100 MB; CPU allows 139.
    assert session_slots(parse_memory("12Gi"), 12) == 88


def test_cpu_bounds_a_cpu_poor_pod():
    # 0.7 x 8 cores / 0.06 = 93 calls; memory would allow 120.
    assert session_slots(parse_memory("16Gi"), 8) == 93


def test_a_pod_smaller_than_the_base_offers_no_slot():
    assert session_slots(parse_memory("1Gi"), 4) == 0


def test_a_cheaper_session_fits_more():
    cost = SessionCost(memory_mb=59)  # the USS figure instead of RSS
    assert session_slots(parse_memory("16Gi"), 32, cost) == 204


@pytest.mark.parametrize("fraction", [0.0, 0.95, 1.2])
def test_memory_headroom_stays_below_rays_oom_threshold(fraction: float):
    with pytest.raises(ValueError, match="memory_fraction"):
        SessionCost(memory_fraction=fraction)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("16Gi", 16 * 2**30), ("512Mi", 512 * 2**20), ("2G", 2 * 10**9), ("1000", 1000)],
)
def test_memory_quantities(text: str, expected: int):
    assert parse_memory(text) == expected


@pytest.mark.parametrize(("text", "expected"), [("8", 8.0), ("500m", 0.5), ("1.5", 1.5)])
def test_cpu_quantities(text: str, expected: float):
    assert parse_cpu(text) == expected


def test_bad_quantities_are_refused():
    with pytest.raises(ValueError, match="memory quantity"):
        parse_memory("16 gigs")
    with pytest.raises(ValueError, match="CPU quantity"):
        parse_cpu("two")


def test_the_slots_command(run):
    out = run("k8s", "slots", "--memory", "16Gi", "--cpus", "8")
    assert (out.returncode, out.stdout.strip()) == (0, "93")
    out = run("k8s", "slots", "--memory", "16Gi", "--cpus", "8", "--session-cpu", "0.04")
    assert out.stdout.strip() == "120"
    bad = run("k8s", "slots", "--memory", "lots", "--cpus", "8")
    assert bad.returncode == 2
    assert "not a memory quantity" in bad.stderr
