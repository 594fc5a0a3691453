"""What gathering metrics costs a session actor, for three ways of doing it, measured in Ray actors.

    python -m benchmarks.metrics_cost          # about 1-2 minutes; progress on stderr,
                                               # a markdown table on stdout

Every call is one session actor (one process), so a metrics pipeline is paid once per call, and
about 100 calls share a worker pod (docs/deploy.md, "Sizing"). The options:

* **redis**: today's :class:`s2s.service.metrics.Metrics`: plain dicts in the process, added to
  the Redis hash ``s2s:metrics`` every 5 s (``HINCRBYFLOAT``, one pipeline); any ingress replica
  renders the hash on ``/metrics``.
* **ray**: ``ray.util.metrics`` Counter/Histogram: Ray's core worker exports them to its node's
  metrics agent, which Prometheus scrapes on each pod (port 8080).
* **otel-otlp**: the OpenTelemetry metrics SDK in each process, pushing OTLP/HTTP to a
  collector (here a sink on loopback that answers 200).
* **otel-prom**: the same SDK with its Prometheus reader: each process serves its own page.

Measured, in fresh Ray actors of a local Ray this benchmark starts (and stops):

* **memory**: RSS and USS an actor gains from importing the option and creating a call's
  instruments and series (median of :data:`FRESH` fresh actors). For *redis* this leaves out
  the Redis client, which session actors hold anyway;
* **CPU per observation**: the actor thread's CPU (``time.thread_time_ns``) per counter
  increment and per histogram observation, in batches of :data:`BATCH` (median and p99 over
  batches);
* **export**: CPU of one flush or export of a call's 10 series (redis: the flush to a real
  redis-server; otel: a synchronous export; ray: none can be forced: its C++ exporter runs on its
  own thread, see below), and at :data:`CALLS_PER_NODE` calls on a node: Redis's own CPU per
  flush (``INFO cpu``); for Ray, the extra CPU per export of an actor holding that many calls'
  series and of the node's metrics agent (Ray exports every ``--interval`` s here, 10 s by
  default, so that a short window sees several exports), the agent's memory, and its page while
  the actor lives and after it exits; for OpenTelemetry, one export or page of that many series.

It waits for any other Ray on the machine to stop before starting its own (two Rays would
measure each other), and uses loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import os
import socket
import statistics
import sys
import threading
import time
import timeit
import urllib.request
from typing import Any

import psutil

FRESH = 3
BATCH = 1000
CALLS_PER_NODE = 200
FLUSH_INTERVAL_S = 5.0  # Metrics.flush in session actors and replicas
OPTIONS = ("redis", "ray", "otel-otlp", "otel-prom")
RESPONSE_BUCKETS = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
TOOL_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
#: The series one call records: name -> (histogram buckets or None for a counter, labels, value).
CALL: dict[str, tuple[tuple[float, ...] | None, dict[str, str], float]] = {
    "s2s_sessions_started": (None, {"provider": "openai_realtime"}, 1.0),
    "s2s_sessions_closed": (None, {"provider": "openai_realtime", "reason": "hangup"}, 1.0),
    "s2s_audio_in_seconds": (None, {"provider": "openai_realtime"}, 0.02),
    "s2s_audio_out_seconds": (None, {"provider": "openai_realtime"}, 0.02),
    "s2s_barge_ins": (None, {"provider": "openai_realtime"}, 1.0),
    "s2s_tool_calls": (None, {"pool": "default", "tool": "lookup_order", "outcome": "ok"}, 1.0),
    "s2s_response_latency_seconds": (RESPONSE_BUCKETS, {"provider": "openai_realtime"}, 0.8),
    "s2s_first_audio_seconds": (RESPONSE_BUCKETS, {"provider": "openai_realtime"}, 2.1),
    "s2s_tool_latency_seconds": (TOOL_BUCKETS, {"pool": "default", "tool": "lookup_order"}, 0.2),
    "s2s_added_latency_seconds": (LATENCY_BUCKETS, {"direction": "in"}, 0.004),
}


def log(message: str) -> None:
    print(f"[metrics_cost] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _memory_mb() -> tuple[float, float]:
    info = psutil.Process().memory_full_info()
    return info.rss / 2**20, info.uss / 2**20


def _labels(labels: dict[str, str], call: int | None) -> dict[str, str]:
    return labels if call is None else {**labels, "call": str(call)}


# -- the options, as each process would use them -------------------------------------------------


class Recorder:
    """One option in one process: instruments for :data:`CALL`'s series."""

    def inc(self, name: str, value: float, labels: dict[str, str]) -> None:
        raise NotImplementedError

    def observe(self, name: str, value: float, labels: dict[str, str]) -> None:
        raise NotImplementedError

    def export(self) -> None:
        """One synchronous flush or export of everything recorded."""
        raise NotImplementedError

    def record_call(self, call: int | None = None) -> None:
        for name, (buckets, labels, value) in CALL.items():
            if buckets is None:
                self.inc(name, value, _labels(labels, call))
            else:
                self.observe(name, value, _labels(labels, call))


class RedisHash(Recorder):
    def __init__(self) -> None:
        from s2s.service.metrics import HISTOGRAMS, Metrics

        for name, (buckets, _, _) in CALL.items():  # the benchmark's histograms, if not there
            if buckets is not None:
                HISTOGRAMS.setdefault(name, (name, buckets))
        self.metrics = Metrics()
        self.redis: Any = None
        self.loop = asyncio.new_event_loop()

    def connect(self, url: str) -> None:
        import redis.asyncio

        self.redis = redis.asyncio.from_url(url)

    def inc(self, name: str, value: float, labels: dict[str, str]) -> None:
        self.metrics.inc(name, value, **labels)

    def observe(self, name: str, value: float, labels: dict[str, str]) -> None:
        self.metrics.observe(name, value, **labels)

    def export(self) -> None:
        self.loop.run_until_complete(self.metrics.flush(self.redis))


class RayMetrics(Recorder):
    def __init__(self, per_call: bool = False) -> None:
        from ray.util import metrics

        self.instruments: dict[str, Any] = {}
        for name, (buckets, labels, _) in CALL.items():
            keys = tuple(_labels(labels, 0 if per_call else None))
            if buckets is None:
                self.instruments[name] = metrics.Counter(name, name, tag_keys=keys)
            else:
                self.instruments[name] = metrics.Histogram(
                    name, name, boundaries=list(buckets), tag_keys=keys
                )

    def inc(self, name: str, value: float, labels: dict[str, str]) -> None:
        self.instruments[name].inc(value, tags=labels)

    def observe(self, name: str, value: float, labels: dict[str, str]) -> None:
        self.instruments[name].observe(value, tags=labels)

    def export(self) -> None:
        raise NotImplementedError("Ray's core worker exports on its own thread")


class OpenTelemetry(Recorder):
    def __init__(self, reader: str, endpoint: str) -> None:
        from opentelemetry.sdk.metrics import MeterProvider

        self.registry: Any = None
        if reader == "otlp":
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

            self.reader: Any = PeriodicExportingMetricReader(
                OTLPMetricExporter(endpoint=endpoint, timeout=5),
                export_interval_millis=3_600_000,  # exports only when the benchmark asks
            )
        else:
            from opentelemetry.exporter.prometheus import PrometheusMetricReader
            from prometheus_client import CollectorRegistry

            self.registry = CollectorRegistry(auto_describe=False)
            self.reader = PrometheusMetricReader(registry=self.registry)
        self.provider = MeterProvider(metric_readers=[self.reader])
        meter = self.provider.get_meter("s2s")
        self.instruments: dict[str, Any] = {
            name: meter.create_counter(name)
            if buckets is None
            else meter.create_histogram(name, explicit_bucket_boundaries_advisory=buckets)
            for name, (buckets, _, _) in CALL.items()
        }

    def inc(self, name: str, value: float, labels: dict[str, str]) -> None:
        self.instruments[name].add(value, labels)

    def observe(self, name: str, value: float, labels: dict[str, str]) -> None:
        self.instruments[name].record(value, labels)

    def export(self) -> None:
        if self.registry is not None:
            from prometheus_client import generate_latest

            generate_latest(self.registry)  # what one scrape of this process costs it
        else:
            self.provider.force_flush()

    def page_lines(self) -> int:
        from prometheus_client import generate_latest

        return len(generate_latest(self.registry).splitlines()) if self.registry else 0


def make_recorder(option: str, endpoint: str, per_call: bool = False) -> Recorder:
    if option == "redis":
        return RedisHash()
    if option == "ray":
        return RayMetrics(per_call)
    return OpenTelemetry(option.removeprefix("otel-"), endpoint)


class Probe:
    """A fresh Ray actor (a process like a session actor) that measures one option in itself."""

    def __init__(self) -> None:
        # What a session actor has loaded whatever its metrics: the library, the service's
        # modules and redis-py (imported as the service does, without the OpenTelemetry SDK).
        import s2s
        from s2s.service import keys
        from s2s.service.redis_client import redis_class

        self.preloaded = (s2s.__name__, keys.METRICS, redis_class())
        self.recorder: Recorder | None = None

    def setup(self, option: str, endpoint: str, calls: int = 1) -> tuple[float, float]:
        """RSS and USS (MB) gained by importing ``option`` and recording ``calls`` calls."""
        rss, uss = _memory_mb()
        self.recorder = make_recorder(option, endpoint, per_call=calls > 1)
        for call in range(calls):
            self.recorder.record_call(call if calls > 1 else None)
        after_rss, after_uss = _memory_mb()
        return after_rss - rss, after_uss - uss

    def connect(self, url: str) -> None:
        assert isinstance(self.recorder, RedisHash)
        self.recorder.connect(url)

    def per_op(self, batches: int) -> dict[str, list[float]]:
        """Thread CPU (ns) per counter increment and per histogram observation, per batch."""
        assert self.recorder is not None
        rec = self.recorder
        out: dict[str, list[float]] = {"counter": [], "histogram": []}
        for _ in range(batches):
            start = time.thread_time_ns()
            for _ in range(BATCH):
                rec.inc("s2s_barge_ins", 1.0, {"provider": "openai_realtime"})
            middle = time.thread_time_ns()
            for _ in range(BATCH):
                rec.observe("s2s_response_latency_seconds", 0.8, {"provider": "openai_realtime"})
            end = time.thread_time_ns()
            out["counter"].append((middle - start) / BATCH)
            out["histogram"].append((end - middle) / BATCH)
        return out

    def export_cpu(self, repeats: int) -> list[float]:
        """Thread CPU (µs) of each export of a call's series, recorded again before each."""
        assert self.recorder is not None
        cpu = []
        for _ in range(repeats):
            self.recorder.record_call()
            start = time.thread_time_ns()
            self.recorder.export()
            cpu.append((time.thread_time_ns() - start) / 1e3)
        return cpu

    def process_cpu(self, seconds: float) -> float:
        """This process's CPU (all threads, s) while its main thread sleeps ``seconds``."""
        before = psutil.Process().cpu_times()
        time.sleep(seconds)
        after = psutil.Process().cpu_times()
        return (after.user + after.system) - (before.user + before.system)

    def report_interval_ms(self) -> int:
        import ray

        return int(ray._config.metrics_report_interval_ms())

    def page_lines(self) -> int:
        assert isinstance(self.recorder, OpenTelemetry)
        return self.recorder.page_lines()


# -- the driver ----------------------------------------------------------------------------------


class OtlpSink:
    """An OTLP/HTTP endpoint on loopback that reads each export and answers 200."""

    def __init__(self) -> None:
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                sink.bytes += len(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                sink.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.bytes = self.requests = 0
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1/metrics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def other_rays() -> list[int]:
    mine = {p.pid for p in psutil.Process().children(recursive=True)}
    found = []
    for process in psutil.process_iter(["pid", "name", "cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if process.info["pid"] not in mine and ("raylet" in command or "gcs_server" in command):
            found.append(process.info["pid"])
    return found


def wait_for_quiet(limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while pids := other_rays():
        if time.monotonic() > deadline:
            raise SystemExit(f"another Ray is still running (pids {pids}); not measuring")
        log(f"another Ray is running (pids {pids[:4]}); waiting for it to stop")
        time.sleep(10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def agent_process() -> psutil.Process | None:
    for child in psutil.Process().children(recursive=True):
        try:
            command = child.cmdline()
        except psutil.Error:
            continue
        # Its title once started; the raylet's own command line names agent.py too.
        if command and command[0].startswith("ray::DashboardAgent"):
            return child
    return None


def redis_cpu(redis: Any) -> float:
    info = redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def run(args: argparse.Namespace) -> str:
    import ray

    from s2s.service.redis_server import EmbeddedRedis

    wait_for_quiet(args.wait)
    node: dict[str, Any] = {
        "load": os.getloadavg()[0],
        "dict_ns": min(timeit.repeat('d["a"] += 1', 'd = {"a": 0}', number=100_000)) * 1e4,
    }
    sink = OtlpSink()
    server = EmbeddedRedis()
    url = server.start()
    metrics_port = free_port()
    remote: Any = ray.remote
    probe_class = remote(num_cpus=0)(Probe)
    results: dict[str, dict[str, Any]] = {option: {} for option in OPTIONS}
    log("starting Ray (num_cpus=1) and redis-server on loopback")
    ray.init(
        address="local",
        num_cpus=1,
        include_dashboard=False,
        log_to_driver=False,
        _metrics_export_port=metrics_port,
        # Ray's default is one export every 10 s; more often, so that a short window sees several.
        _system_config={"metrics_report_interval_ms": int(args.interval * 1000)},
    )
    try:
        for option in OPTIONS:
            probes = [probe_class.remote() for _ in range(FRESH)]
            memory = ray.get([p.setup.remote(option, sink.url) for p in probes], timeout=180)
            results[option]["memory"] = memory
            log(f"{option}: memory {[f'{r:.1f}/{u:.1f}' for r, u in memory]} MB (RSS/USS)")
            for probe in probes[1:]:
                ray.kill(probe)
            probe = probes[0]  # goes on with the CPU figures
            log(f"{option}: CPU per observation ({args.batches} x {BATCH} of each)")
            results[option]["ops"] = ray.get(probe.per_op.remote(args.batches), timeout=300)
            if option == "redis":
                ray.get(probe.connect.remote(url))
            if option != "ray":
                cpu = ray.get(probe.export_cpu.remote(args.exports), timeout=300)
                results[option]["export"] = cpu
            if option == "otel-prom":
                results[option]["page"] = ray.get(probe.page_lines.remote())
            ray.kill(probe)

        log(f"redis: {CALLS_PER_NODE} calls' flushes against redis-server")
        node["redis"] = redis_node_cost(url)

        log(f"ray: {CALLS_PER_NODE} calls' series in one actor, the node's metrics agent")
        node["ray"] = ray_node_cost(probe_class, sink.url, metrics_port, args.window)

        log(f"otel: one process with {CALLS_PER_NODE} calls' series")
        for option in ("otel-otlp", "otel-prom"):
            probe = probe_class.remote()
            ray.get(probe.setup.remote(option, sink.url, CALLS_PER_NODE), timeout=120)
            node[option] = ray.get(probe.export_cpu.remote(5), timeout=120)
            ray.kill(probe)
    finally:
        ray.shutdown()
        server.stop()
        sink.close()
        log("stopped Ray and redis-server")
    return report(results, node, sink)


def redis_node_cost(url: str) -> dict[str, float]:
    """Redis CPU per flush of one call's series, over CALLS_PER_NODE flushes."""
    import redis

    client = redis.Redis.from_url(url)
    recorders = [RedisHash() for _ in range(CALLS_PER_NODE)]
    for recorder in recorders:
        recorder.connect(url)
        recorder.record_call()
    fields = sum(1 for _ in recorders[0].metrics._fields())
    before = redis_cpu(client)
    start = time.perf_counter()
    for recorder in recorders:
        recorder.export()
    wall = time.perf_counter() - start
    cpu = redis_cpu(client) - before
    hash_fields = client.hlen("s2s:metrics")
    client.close()
    return {
        "fields": fields,
        "redis_us": cpu / CALLS_PER_NODE * 1e6,
        "wall_s": wall,
        "hash_fields": hash_fields,
    }


def _scrape(port: int) -> list[str]:
    """The lines of the benchmark's series on the node's metrics agent page."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
            page = reply.read().decode()
    except OSError as exc:
        log(f"ray: the metrics agent's page did not answer on 127.0.0.1:{port}: {exc!r}")
        return []
    return [line for line in page.splitlines() if line.startswith("ray_s2s_")]


def ray_node_cost(probe_class: Any, endpoint: str, port: int, window: float) -> dict[str, Any]:
    """The actor's and the node's metrics agent's CPU and memory with a node's worth of series
    (:data:`CALLS_PER_NODE` calls' in one actor), against the same window without them; and the
    agent's page while the actor lives and after it has gone."""
    import ray

    agent = agent_process()
    probe = probe_class.remote()
    interval_s = ray.get(probe.report_interval_ms.remote()) / 1000

    def agent_cpu() -> float:
        times = agent.cpu_times() if agent else None
        return float(times.user + times.system) if times else float("nan")

    def agent_rss() -> float:
        return agent.memory_info().rss / 2**20 if agent else float("nan")

    rss_before = agent_rss()
    start = agent_cpu()
    idle_actor = ray.get(probe.process_cpu.remote(window), timeout=window + 60)
    idle_agent = agent_cpu() - start
    ray.get(probe.setup.remote("ray", endpoint, CALLS_PER_NODE), timeout=120)
    time.sleep(interval_s * 1.5)  # the first export with them
    start = agent_cpu()
    busy_actor = ray.get(probe.process_cpu.remote(window), timeout=window + 60)
    busy_agent = agent_cpu() - start
    lines = _scrape(port)
    rss_after = agent_rss()
    ray.kill(probe)
    time.sleep(interval_s * 3)  # several exports after the actor died
    exports = window / interval_s
    return {
        "interval_s": interval_s,
        "actor_ms_per_export": (busy_actor - idle_actor) / exports * 1e3,
        "agent_ms_per_export": (busy_agent - idle_agent) / exports * 1e3,
        "agent_rss_mb": rss_after - rss_before,
        "agent_found": agent is not None,
        "page_lines": len(lines),
        "page_lines_after_exit": len(_scrape(port)),
        "worker_id_label": any("WorkerId=" in line for line in lines),
    }


def _ms(values: list[float], scale: float = 1.0) -> str:
    return f"{statistics.median(values) * scale:,.1f} / {percentile(values, 0.99) * scale:,.1f}"


def report(results: dict[str, dict[str, Any]], node: dict[str, Any], sink: OtlpSink) -> str:
    lines = [
        f"Machine: {os.cpu_count()} cores, load average {node['load']:.1f} at the start; a "
        f"Python dict increment costs {node['dict_ns']:.0f} ns here.",
        "",
        f"Per session actor process (Ray actor; median of {FRESH} fresh actors for memory; "
        f"CPU per observation over batches of {BATCH}, median / p99):",
        "",
        "| option | RSS added | USS added | counter inc (ns) | histogram observe (ns) | "
        "export of a call's 10 series (µs CPU) |",
        "|---|---|---|---|---|---|",
    ]
    for option in OPTIONS:
        result = results[option]
        rss = statistics.median(r for r, _ in result["memory"])
        uss = statistics.median(u for _, u in result["memory"])
        export = _ms(result["export"]) if "export" in result else "on Ray's own thread"
        lines.append(
            f"| {option} | {rss:.1f} MB | {uss:.1f} MB | {_ms(result['ops']['counter'])} | "
            f"{_ms(result['ops']['histogram'])} | {export} |"
        )
    r, ray_node = node["redis"], node["ray"]
    per_node_flushes = CALLS_PER_NODE / FLUSH_INTERVAL_S
    lines += [
        "",
        f"At {CALLS_PER_NODE} calls on a node:",
        "",
        f"* **redis**: a call's flush is {r['fields']:.0f} fields (HINCRBYFLOAT in one "
        f"pipeline), {r['redis_us']:.0f} µs of Redis CPU; {CALLS_PER_NODE} calls flushing every "
        f"{FLUSH_INTERVAL_S:g} s are {per_node_flushes:.0f} flushes/s, "
        f"{per_node_flushes * r['redis_us'] / 1e4:.2f} % of a Redis core per node "
        f"({r['hash_fields']:.0f} fields in the hash after them all).",
        f"* **ray**: with {CALLS_PER_NODE} calls' series in one actor (exported every "
        f"{ray_node['interval_s']:g} s in this run), each export cost the actor "
        f"{ray_node['actor_ms_per_export']:.1f} ms and the node's metrics agent "
        f"{ray_node['agent_ms_per_export']:.1f} ms of CPU more than without them (agent found: "
        f"{ray_node['agent_found']}), and the agent grew {ray_node['agent_rss_mb']:.1f} MB RSS; "
        f"its page had {ray_node['page_lines']} lines of these series (WorkerId label: "
        f"{ray_node['worker_id_label']}), and still {ray_node['page_lines_after_exit']} "
        f"{3 * ray_node['interval_s']:g} s after the actor had exited.",
        f"* **otel-otlp**: one export of {CALLS_PER_NODE} calls' series from one process: "
        f"{_ms(node['otel-otlp'])} µs CPU; the sink took {sink.requests} exports, "
        f"{sink.bytes / max(sink.requests, 1) / 1e3:.1f} kB each on average.",
        f"* **otel-prom**: one page of {CALLS_PER_NODE} calls' series: "
        f"{_ms(node['otel-prom'])} µs CPU; a call's page is "
        f"{results['otel-prom'].get('page', 0)} lines, and every call is its own scrape target.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--batches", type=int, default=100, help="batches per CPU figure")
    parser.add_argument("--exports", type=int, default=50, help="exports timed per option")
    parser.add_argument("--window", type=float, default=10.0, help="s of CPU sampling (ray)")
    parser.add_argument("--interval", type=float, default=2.0, help="Ray's export interval, s")
    parser.add_argument("--wait", type=float, default=900.0, help="s to wait for another Ray")
    args = parser.parse_args(argv)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    started = time.monotonic()
    table = run(args)
    log(f"done in {time.monotonic() - started:.0f} s")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
