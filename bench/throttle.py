#!/usr/bin/env python3
"""Benchmark: narrate's Redis provider throttle against Celery's ``rate_limit``.

    .venv/bin/python bench/throttle.py [--seconds 20] [--margin-ms 25] [--jitter-ms 50]

Needs a local Redis: ``NARRATE_BENCH_BROKER_URL``, else database 7 of
``NARRATE_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379``). Loopback only; stops by
itself in about a minute with the defaults; stops its workers and deletes its Redis keys
on the way out, Ctrl-C included.

Both sides run in this one invocation, on the same 4 Celery worker processes (``--pool
solo``, one task at a time each, started as subprocesses on the local Redis broker):

* a fake provider: a loopback HTTP server that stamps each request's arrival with
  ``time.monotonic()`` and answers 429 to a request that is "over the limit": counting
  itself, more than 3 requests arrived in the trailing 1.0 s;
* narrate: a task that holds ``RedisThrottle.permit`` (3 per 1.0 s window + margin) from
  right before its HTTP request until the provider's answer;
* Celery: a task declared with ``rate_limit="3/s"`` that sends its request at once.

Each task waits a random 0..J ms before sending (after its permit, or after it started):
the jitter between permission and arrival that a real worker has. On a loaded machine the
fake provider's own stamps jitter too (it shares the CPU with the workers).

Part 1 (throughput): a backlog of about ``--seconds`` worth of work for each side; prints
requests sent, requests/s in the steady part (after the first second), requests over the
limit, the worst count in any sliding 1 s, and narrate's margin for the account at the end
(it widens on a 429). Part 2 (an urgent job while a bulk job runs): a bulk backlog
saturates the limit, then urgent requests are submitted one by one; prints their wait
from submission to arrival at the server (median/max): narrate's urgent requests go to an
urgent queue the workers poll first and wait at the throttle with the urgent priority;
Celery's share the one FIFO queue with the bulk backlog.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis
from celery import Celery

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.processes import stop  # noqa: E402
from jobs.keys import throttle_pattern  # noqa: E402
from jobs.priority import Priority, using_priority  # noqa: E402
from jobs.throttle import RateLimit  # noqa: E402
from jobs.throttle_redis import RedisThrottle  # noqa: E402

BROKER_URL = os.environ.get("NARRATE_BENCH_BROKER_URL") or (
    os.environ.get("NARRATE_TEST_REDIS_URL", "redis://127.0.0.1:6379") + "/7"
)
PROVIDER_LIMIT = 3
PROVIDER_WINDOW_S = 1.0
PROVIDER_WINDOW_MS = 1000
WORKERS = 4
#: urgent requests submitted in part 2, and the time between two of them
URGENT_COUNT = 6
URGENT_EVERY_S = 0.5
#: how long the bulk job runs alone before the first urgent request
BULK_HEAD_START_S = 3.0
#: bulk tasks queued for part 2 (more than either side finishes in part 2)
BULK_BACKLOG = 100

app = Celery("narrate-bench-throttle", broker=BROKER_URL)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    worker_enable_remote_control=False,
    worker_send_task_events=False,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    # poll the urgent queue first, always (kombu's "priority" cycle never rotates)
    broker_transport_options={"queue_order_strategy": "priority"},
)


# --- inside the workers -----------------------------------------------------------------


@cache
def _connection(host: str, port: int) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(host, port, timeout=10)


def _send(url: str, query: str, started_s: float, permitted_s: float) -> int:
    """GET ``url?query`` on a kept-alive connection (one reconnect); the HTTP status."""
    parts = urlsplit(url)
    path = f"/hit?{query}&started={started_s!r}&permitted={permitted_s!r}&worker={os.getpid()}"
    for attempt in (1, 2):
        connection = _connection(parts.hostname or "127.0.0.1", parts.port or 80)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            connection.close()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@cache
def _throttle(margin_ms: int) -> RedisThrottle:
    limit = RateLimit(PROVIDER_LIMIT, int(PROVIDER_WINDOW_S * 1000), margin_ms)
    return RedisThrottle.from_url(BROKER_URL, limits={"cosyvoice": limit}, max_wait_s=60)


@app.task(name="bench.narrate_hit")  # type: ignore[untyped-decorator]
def narrate_hit(
    url: str, query: str, jitter_ms: float, margin_ms: int, account: str, priority: str
) -> None:
    started_s = time.monotonic()
    # what RedisThrottle.permit does, with the grant and settle times noted for the report:
    # the request is in flight from its grant until the provider's answer, logged then
    throttle = _throttle(margin_ms)
    with using_priority(Priority.parse(priority)):
        granted = throttle.grant(account)
    assert granted is not None
    try:
        permitted_s = time.monotonic()
        time.sleep(random.uniform(0, jitter_ms) / 1000)
        _send(url, query, started_s, permitted_s)
    finally:
        settled = throttle.settle(account, granted.ticket)
    if settled is not None:
        flight = json.dumps([granted.now_ms, settled.now_ms, query])
        throttle.client.rpush(flights_key(account), flight)


def flights_key(account: str) -> str:
    return f"narrate-bench-flights:{account}"


@app.task(name="bench.celery_hit", rate_limit="3/s")  # type: ignore[untyped-decorator]
def celery_hit(url: str, query: str, jitter_ms: float) -> None:
    started_s = time.monotonic()  # Celery's "permit" is the task's start
    time.sleep(random.uniform(0, jitter_ms) / 1000)
    _send(url, query, started_s, started_s)


# --- the fake provider ------------------------------------------------------------------


@dataclass(frozen=True)
class Arrival:
    at_s: float  # time.monotonic() on arrival (one clock for every process of the machine)
    label: str  # which part and side sent it
    kind: str  # bulk | urgent
    submitted_s: float  # when the task was submitted
    started_s: float  # when a worker started the task
    permitted_s: float  # when the task was allowed to send (narrate: permit; Celery: start)
    worker: int  # the worker's pid
    over: bool  # more than the limit in the trailing window, counting itself


class Provider:
    """Counts arrivals per sliding window, as a strict provider does."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self.arrivals: list[Arrival] = []
        self._recent: deque[float] = deque()
        self._lock = threading.Lock()

    def arrive(self, query: dict[str, list[str]]) -> bool:
        """Record one request; False when it is over the limit (answered 429)."""
        with self._lock:  # stamp under the lock: stamps stay in order
            now = time.monotonic()
            while self._recent and self._recent[0] <= now - self.window_s:
                self._recent.popleft()
            over = len(self._recent) >= self.limit
            self._recent.append(now)
            self.arrivals.append(
                Arrival(
                    now,
                    query["label"][0],
                    query["kind"][0],
                    float(query["submitted"][0]),
                    float(query["started"][0]),
                    float(query["permitted"][0]),
                    int(query["worker"][0]),
                    over,
                )
            )
        return not over

    def of(self, label: str, kind: str | None = None) -> list[Arrival]:
        with self._lock:
            return [a for a in self.arrivals if a.label == label and kind in (None, a.kind)]


def serve(provider: Provider) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: no connection set-up per request

        def do_GET(self) -> None:
            ok = provider.arrive(parse_qs(urlsplit(self.path).query))
            body = b"ok" if ok else b"over the limit"
            self.send_response(200 if ok else 429)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# --- figures (pure) ---------------------------------------------------------------------


def worst_in_window(stamps: list[float], window_s: float) -> int:
    """The largest number of stamps in any half-open window ``(t - window, t]``."""
    ordered, first, worst = sorted(stamps), 0, 0
    for last, at in enumerate(ordered):
        while ordered[first] <= at - window_s:
            first += 1
        worst = max(worst, last - first + 1)
    return worst


def sustained_rate(stamps: list[float], burst: int = PROVIDER_LIMIT) -> float:
    """Requests per second once running, over whole cycles of ``burst`` requests.

    Why not ``n / duration``: a sliding-log limiter sends its requests in bursts of up to
    ``burst``, and a cut in the middle of one would count it as a spike. From the first
    request to the one ``burst * m`` later spans exactly ``m`` cycles.
    """
    ordered = sorted(stamps)
    cycles = (len(ordered) - 1) // burst
    if cycles < 1:
        return 0.0
    return burst * cycles / (ordered[burst * cycles] - ordered[0])


def median_max(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} / {max(values):.2f} s" if values else "-"


# --- driving ----------------------------------------------------------------------------


@dataclass
class Run:
    args: argparse.Namespace
    url: str
    provider: Provider
    client: redis.Redis
    logdir: Path
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @property
    def queues(self) -> tuple[str, str]:
        """(urgent, bulk): the workers poll the first one first."""
        return f"bench-throttle-{self.run_id}-urgent", f"bench-throttle-{self.run_id}-bulk"

    @property
    def account(self) -> str:
        return f"cosyvoice/bench-{self.run_id}"

    def submit(self, side: str, label: str, kind: str, queue: str) -> None:
        query = f"label={label}&kind={kind}&submitted={time.monotonic()!r}"
        jitter_ms = self.args.jitter_ms
        if side == "narrate":
            args = [self.url, query, jitter_ms, self.args.margin_ms, self.account, kind]
            app.send_task("bench.narrate_hit", args=args, queue=queue)
        else:
            app.send_task("bench.celery_hit", args=[self.url, query, jitter_ms], queue=queue)

    def wait_for(self, label: str, count: int, timeout_s: float, kind: str | None = None) -> None:
        deadline = time.monotonic() + timeout_s
        while (seen := len(self.provider.of(label, kind))) < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"{label}: only {seen} of {count} {kind or ''} requests came")
            time.sleep(0.05)

    @contextlib.contextmanager
    def workers(self) -> Iterator[None]:
        """4 fresh Celery worker processes; stopped, and their queues dropped, on the way out.

        Fresh per part: Celery holds rate-limited tasks in the worker's memory, so only
        stopping the workers ends a part on time.
        """
        env = {**os.environ, "PYTHONPATH": str(REPO), "NARRATE_BENCH_BROKER_URL": BROKER_URL}
        processes: list[subprocess.Popen[bytes]] = []
        logs = [self.logdir / f"worker{index}.log" for index in range(WORKERS)]
        try:
            for index, log in enumerate(logs):
                with log.open("wb") as out:
                    processes.append(
                        subprocess.Popen(
                            [sys.executable, "-m", "celery", "-A", "bench.throttle:app",
                             "worker", "--pool", "solo", "--concurrency", "1",
                             "-Q", ",".join(self.queues), "-n", f"bench{index}@%h",
                             "--without-heartbeat", "--without-gossip", "--without-mingle",
                             "--loglevel", "INFO"],
                            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True,  # Ctrl-C is ours to pass on, in order
                        )
                    )  # fmt: skip
            deadline = time.monotonic() + 60
            while not all(" ready." in log.read_text(errors="replace") for log in logs):
                if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                    raise SystemExit("the Celery workers did not start:\n" + tails(logs))
                time.sleep(0.1)
            yield
        finally:
            stop(processes, grace_s=5)  # a solo worker finishes its one task
            clean_redis(self.client, self.run_id)


def tails(logs: list[Path]) -> str:
    return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-1500:]}" for log in logs)


def clean_redis(client: redis.Redis, run_id: str = "*") -> None:
    """Delete this bench's queues and throttle keys (every run's, with ``*``)."""
    # the queues, and kombu's binding keys that name them
    patterns = [f"*bench-throttle-{run_id}-*", throttle_pattern(f"cosyvoice/bench-{run_id}")]
    patterns.append(flights_key(f"cosyvoice/bench-{run_id}"))
    keys = [key for pattern in patterns for key in client.scan_iter(match=pattern)]
    keys += [b"unacked", b"unacked_index", b"unacked_mutex"]  # kombu's, in our database
    client.delete(*keys)


@dataclass(frozen=True)
class Flights:
    """narrate's requests in part 1: (grant, settle) in the Redis server's ms, and the
    account's margin at the end."""

    spans: list[tuple[int, int]]
    margin_ms: int | None


def throughput(run: Run, side: str) -> tuple[list[Arrival], Flights]:
    """Arrivals during ``--seconds`` of a backlog bigger than the side can send, and (for
    narrate) its requests' flights."""
    label, seconds = f"throughput-{side}", run.args.seconds
    nominal_rps = PROVIDER_LIMIT * (1 if side == "narrate" else WORKERS)
    with run.workers():
        for _ in range(int(seconds * nominal_rps * 1.5) + 10):
            run.submit(side, label, "bulk", run.queues[1])
        run.wait_for(label, 1, timeout_s=30)
        first_s = run.provider.of(label)[0].at_s
        time.sleep(max(first_s + seconds - time.monotonic(), 0))
        spans, margin_ms = [], None
        if side == "narrate":
            margin_ms = _throttle(run.args.margin_ms).margin_ms(run.account)
            for raw in run.client.lrange(flights_key(run.account), 0, -1):
                granted_ms, settled_ms, query = json.loads(raw)
                if f"label={label}&" in query:
                    spans.append((granted_ms, settled_ms))
    arrivals = [a for a in run.provider.of(label) if a.at_s <= first_s + seconds]
    return arrivals, Flights(sorted(spans), margin_ms)


def late_grants_ms(spans: list[tuple[int, int]], span_ms: int) -> list[int]:
    """For each grant after the first ``PROVIDER_LIMIT``: ms between the moment its place
    freed (a span after the settle it waited for) and the grant (a waiter waking late)."""
    late = []
    for index, (granted, _) in enumerate(spans):
        settles = sorted((s for g, s in spans[:index] if g <= granted), reverse=True)
        if len(settles) >= PROVIDER_LIMIT:
            late.append(granted - (settles[PROVIDER_LIMIT - 1] + span_ms))
    return late


def urgent(run: Run, side: str) -> tuple[list[Arrival], int]:
    """Urgent arrivals submitted while a bulk job keeps the limit busy; bulk queued ahead."""
    label = f"urgent-{side}"
    with run.workers():
        for _ in range(BULK_BACKLOG):
            run.submit(side, label, "bulk", run.queues[1])
        time.sleep(BULK_HEAD_START_S)
        ahead = BULK_BACKLOG - len(run.provider.of(label, "bulk"))
        # narrate's urgent work has its own queue; Celery's rate_limit has one FIFO queue
        queue = run.queues[0] if side == "narrate" else run.queues[1]
        for _ in range(URGENT_COUNT):
            run.submit(side, label, "urgent", queue)
            time.sleep(URGENT_EVERY_S)
        run.wait_for(label, URGENT_COUNT, timeout_s=60, kind="urgent")
    return run.provider.of(label, "urgent"), ahead


# --- report -----------------------------------------------------------------------------


def report(
    args: argparse.Namespace,
    runs: dict[str, list[Arrival]],
    urgents: dict[str, tuple[list[Arrival], int]],
    flights: Flights,
) -> bool:
    """Print the table; whether the target is met."""
    ceiling_rps = PROVIDER_LIMIT * 1000 / (PROVIDER_WINDOW_S * 1000 + args.margin_ms)
    sides = ("narrate", "celery")
    stamps = {side: [a.at_s for a in runs[side]] for side in sides}
    rate = {side: sustained_rate(stamps[side]) for side in sides}
    over = {side: sum(a.over for a in runs[side]) for side in sides}
    waits = {side: [a.at_s - a.submitted_s for a in urgents[side][0]] for side in sides}

    def line(name: str, narrate: object, celery: object) -> None:
        print(f"{name:<36}{narrate!s:>24}{celery!s:>24}")

    def per_worker(side: str) -> str:
        counts: dict[int, int] = {}
        for arrival in runs[side]:
            counts[arrival.worker] = counts.get(arrival.worker, 0) + 1
        return "/".join(str(count) for count in sorted(counts.values(), reverse=True))

    print()
    print(
        f"provider: at most {PROVIDER_LIMIT} per {PROVIDER_WINDOW_S:g} s; {WORKERS} Celery worker "
        f"processes; 0-{args.jitter_ms:g} ms between permit and send; narrate margin floor "
        f"{args.margin_ms} ms (narrate's ceiling: 3 / (1 s + margin + permit to answer))"
    )
    line("", "narrate RedisThrottle", 'Celery rate_limit="3/s"')
    line(f"requests sent in {args.seconds:g} s", len(runs["narrate"]), len(runs["celery"]))
    line("  per worker", per_worker("narrate"), per_worker("celery"))
    line("requests/s, sustained", f"{rate['narrate']:.2f}", f"{rate['celery']:.2f}")
    line("  / provider limit (3/s)", *(f"{rate[s] / PROVIDER_LIMIT:.2f}" for s in sides))
    line(
        f"  / 3 per (1 s + margin) ({ceiling_rps:.2f}/s)",
        f"{rate['narrate'] / ceiling_rps:.2f}",
        "",
    )
    line("requests over the limit (429)", over["narrate"], over["celery"])
    line("worst count in any sliding 1 s", *(worst_in_window(stamps[s], 1.0) for s in sides))
    line("margin at the end (429s widen it)", f"{flights.margin_ms} ms", "")
    in_flight = [settled - granted for granted, settled in flights.spans]
    if in_flight:
        line(
            "in flight, grant to settle, mean / max",
            f"{statistics.fmean(in_flight):.0f} / {max(in_flight)} ms",
            "",
        )
    late = late_grants_ms(flights.spans, PROVIDER_WINDOW_MS + args.margin_ms)
    if late:
        line("grant after its place freed, mean", f"{statistics.fmean(late):.0f} ms", "")
    delays = {s: [(a.at_s - a.permitted_s) * 1000 for a in runs[s]] for s in sides}
    line(
        "permit to arrival, mean / max",
        *(
            f"{statistics.fmean(delays[s]):.0f} / {max(delays[s]):.0f} ms" if delays[s] else "-"
            for s in sides
        ),
    )
    permits = {s: [a.permitted_s for a in runs[s]] for s in sides}
    line("permits/s, sustained", *(f"{sustained_rate(permits[s]):.2f}" for s in sides))
    print(f"an urgent job while a bulk job runs ({URGENT_COUNT} urgent requests):")
    line("  bulk tasks queued at the first", urgents["narrate"][1], urgents["celery"][1])
    line("  urgent wait, median / max", *(median_max(waits[s]) for s in sides))
    queue_waits = {s: [a.started_s - a.submitted_s for a in urgents[s][0]] for s in sides}
    line("    of which in the broker queue", *(median_max(queue_waits[s]) for s in sides))
    if waits["narrate"] and waits["celery"]:
        ratio = statistics.median(waits["celery"]) / statistics.median(waits["narrate"])
        line("  Celery / narrate (median)", "", f"{ratio:.1f}x")
    met = rate["narrate"] >= args.target_rps and over["narrate"] == 0 and over["celery"] > 0
    print(
        f"\ntarget: narrate >= {args.target_rps:g}/s with 0 over the limit, and Celery over "
        f"the limit: {'met' if met else 'NOT met'}"
    )
    if ceiling_rps < args.target_rps:
        needed_ms = int(PROVIDER_LIMIT / args.target_rps * 1000 - PROVIDER_WINDOW_S * 1000)
        print(
            f"  (a {args.margin_ms} ms margin caps narrate at {ceiling_rps:.2f}/s; "
            f"{args.target_rps:g}/s needs a margin <= {needed_ms} ms: --margin-ms)"
        )
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--seconds", type=float, default=20.0, help="throughput run per side")
    parser.add_argument(
        "--margin-ms", type=int, default=RateLimit(PROVIDER_LIMIT).margin_ms,
        help="the floor of narrate's margin over the provider's 1 s window (default: "
        "narrate's own)",
    )  # fmt: skip
    parser.add_argument("--jitter-ms", type=float, default=50.0, help="0..J ms permit to send")
    parser.add_argument("--target-rps", type=float, default=2.7)
    args = parser.parse_args()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started in background
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up as on Ctrl-C
    client = redis.Redis.from_url(BROKER_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise SystemExit(f"Redis is not reachable at {BROKER_URL}: {exc}") from None
    clean_redis(client)  # what a killed earlier run left
    provider = Provider(PROVIDER_LIMIT, PROVIDER_WINDOW_S)
    server = serve(provider)
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="narrate-bench-") as tmp:
            url = f"http://127.0.0.1:{server.server_address[1]}"
            run = Run(args, url, provider, client, Path(tmp))
            runs, urgents, margins = {}, {}, {}
            for side in ("narrate", "celery"):
                runs[side], margins[side] = throughput(run, side)
                print(f"throughput, {side}: done at {time.monotonic() - started:.0f} s", flush=True)
            for side in ("narrate", "celery"):
                urgents[side] = urgent(run, side)
                print(f"urgent, {side}: done at {time.monotonic() - started:.0f} s", flush=True)
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        report(args, runs, urgents, margins["narrate"])
    except KeyboardInterrupt:
        print("interrupted: stopping the workers, deleting the Redis keys", flush=True)
        raise SystemExit(130) from None
    finally:
        server.shutdown()
        clean_redis(client)
        print(f"total {time.monotonic() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
