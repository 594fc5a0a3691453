"""The session benchmark's tables, and how they are written into docs/benchmarks.md."""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from pathlib import Path

from .measure import PARTS, RunResult, percentile

#: The target for the production path on the 2-core machine (issue 11).
TARGET_P99_S = 0.020
TARGET_CORE = 0.02
TARGET_MB = 60.0


def added(result: RunResult, q: float) -> tuple[float, float]:
    """Added latency at quantile ``q`` (seconds), in and out: the service's minus the floor's."""
    return (
        percentile(result.service.inbound, q) - percentile(result.floor.inbound, q),
        percentile(result.service.outbound, q) - percentile(result.floor.outbound, q),
    )


def complete(result: RunResult) -> bool:
    """No errors, and every frame sent reached the provider."""
    return not result.errors and result.service.frames_arrived >= result.service.frames_sent


def within(result: RunResult, p99_s: float) -> bool:
    return complete(result) and all(a < p99_s for a in added(result, 0.99))


def on_target(result: RunResult) -> bool:
    """The issue's target: added p99 each way, CPU and memory per call."""
    memory = max(result.actor_mb) if result.actor_mb else float("inf")
    return (
        within(result, TARGET_P99_S)
        and result.cpu_per_session <= TARGET_CORE
        and memory <= TARGET_MB
    )


def _largest(results: list[RunResult], check: Callable[[RunResult], bool]) -> str:
    ok = [r.n for r in results if check(r)]
    return str(max(ok)) if ok else "none"


def table(
    results: list[RunResult],
    label: str,
    cores: int,
    idle_cpu: float,
    rate: int,
    audio: str | None = None,
) -> str:
    """Latencies against the floor by direction, then CPU by part and memory, per N."""
    lines = [
        f"Ingress: **{label}**. Callers' audio: {audio or f'PCM16 at {rate} Hz'}. "
        f"Machine: {cores} cores. Idle service (no calls): {idle_cpu:.2f} core.",
        "",
        "| N | direction | floor p50 | floor p99 | service p50 | service p99 | "
        "added p50 | added p99 | frames arrived |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for name, f, s in (
            ("in", r.floor.inbound, r.service.inbound),
            ("out", r.floor.outbound, r.service.outbound),
        ):
            fp50, fp99 = percentile(f, 0.5) * 1e3, percentile(f, 0.99) * 1e3
            sp50, sp99 = percentile(s, 0.5) * 1e3, percentile(s, 0.99) * 1e3
            arrived = (
                f"{r.service.frames_arrived}/{r.service.frames_sent}"
                if name == "in"
                else f"{len(s)} chunks"
            )
            lines.append(
                f"| {r.n} | {name} | {fp50:.1f} ms | {fp99:.1f} ms | {sp50:.1f} ms | "
                f"{sp99:.1f} ms | {sp50 - fp50:+.1f} ms | {sp99 - fp99:+.1f} ms | "
                f"{arrived} |"
            )
    lines += [
        "",
        "| N | service CPU per call | memory per session actor (USS) | "
        + " | ".join(f"{p} (cores)" for p in PARTS)
        + " | emulator + callers (cores) | errors |",
        "|---|---|---|" + "---|" * len(PARTS) + "---|---|",
    ]
    for r in results:
        memory = _memory(r)
        shares = " | ".join(f"{r.cores.get(p, 0.0):.2f}" for p in PARTS)
        load = r.cores.get("emulator", 0.0) + r.cores.get("callers", 0.0)
        lines.append(
            f"| {r.n} | {r.cpu_per_session:.4f} core | {memory} | {shares} | {load:.2f} | "
            f"{len(r.errors)} |"
        )
    under_50 = _largest(results, lambda r: within(r, 0.050))
    under_20 = _largest(results, lambda r: within(r, TARGET_P99_S))
    lines += [
        "",
        f"Largest N with added p99 under 50 ms each way: **{under_50}**; "
        f"under 20 ms: **{under_20}**; "
        f"on the whole target (20 ms, {TARGET_CORE} core, {TARGET_MB:.0f} MB per call): "
        f"**{_largest(results, on_target)}**.",
    ]
    return "\n".join(lines)


def summary(by_path: dict[str, list[RunResult]]) -> str:
    """One row per N: each path's added p99 (in / out) and CPU per call, side by side."""
    paths = list(by_path)
    counts = sorted({r.n for results in by_path.values() for r in results})
    lines = [
        "| N | " + " | ".join(f"{p}: added p99 in / out, CPU per call" for p in paths) + " |",
        "|---|" + "---|" * len(paths),
    ]
    for n in counts:
        cells = []
        for path in paths:
            result = next((r for r in by_path[path] if r.n == n), None)
            if result is None:
                cells.append("n/a")
                continue
            inbound, outbound = added(result, 0.99)
            mark = "" if complete(result) else " (incomplete)"
            cells.append(
                f"+{inbound * 1e3:.1f} / +{outbound * 1e3:.1f} ms, "
                f"{result.cpu_per_session:.4f} core{mark}"
            )
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _memory(result: RunResult) -> str:
    if not result.actor_mb:
        return "n/a"
    return f"{statistics.mean(result.actor_mb):.1f} MB (max {max(result.actor_mb):.1f})"


def phone_summary(results: list[RunResult]) -> str:
    """Phone calls, one row per N: added latency, CPU and memory per call, the load's own CPU,
    and the stream's marks (echoed by the callers / sent by the service) and barge-in clears."""
    lines = [
        "| N | added p50 in / out | added p99 in / out | service CPU per call | "
        "USS per session actor | callers (cores) | emulator (cores) | marks echoed / sent | "
        "clears | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        p50, p99 = added(r, 0.5), added(r, 0.99)
        mark = "" if complete(r) else " (incomplete)"
        counts = r.service.counts
        lines.append(
            f"| {r.n} | {p50[0] * 1e3:+.1f} / {p50[1] * 1e3:+.1f} ms | "
            f"{p99[0] * 1e3:+.1f} / {p99[1] * 1e3:+.1f} ms{mark} | "
            f"{r.cpu_per_session:.4f} core | {_memory(r)} | {r.cores.get('callers', 0.0):.2f} | "
            f"{r.cores.get('emulator', 0.0):.2f} | "
            f"{counts.get('echoes', 0)} / {counts.get('marks', 0)} | {counts.get('clears', 0)} | "
            f"{len(r.errors)} |"
        )
    return "\n".join(lines)


def write_results(path: Path, label: str, text: str) -> None:
    start, end = f"<!-- results:{label}:start -->", f"<!-- results:{label}:end -->"
    document = path.read_text() if path.exists() else ""
    block = f"{start}\n{text}\n{end}"
    if start in document and end in document:
        before, rest = document.split(start, 1)
        document = before + block + rest.split(end, 1)[1]
    else:
        document = document.rstrip() + "\n\n" + block + "\n"
    path.write_text(document)


def publish(blocks: dict[str, str], output: str | None) -> None:
    """Print each results block; with ``output``, also rewrite its block in that file."""
    for label, text in blocks.items():
        print(f"\n{text}")
        if output:
            write_results(Path(output), label, text)
    if output:
        print(f"\nresults written to {output}")


def add_common_arguments(parser: argparse.ArgumentParser, sessions: str) -> None:
    """The options every benchmark takes: call counts, seconds per run, where to write."""
    parser.add_argument(
        "--sessions", default=sessions, help=f"comma-separated call counts (default {sessions})"
    )
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="real-time audio per run (default 20)"
    )
    parser.add_argument(
        "--output",
        default=None,
        metavar="MARKDOWN",
        help="rewrite the results blocks of this file (docs/benchmarks.md)",
    )
