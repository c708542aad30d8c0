"""The dashboard screenshot in docs/: a load test against a server scraped by a local Prometheus.

    make dashboard-screenshot            # ~4 minutes; writes docs/images/dashboard.png

Starts, on free 127.0.0.1 ports and in a temporary directory:

1. ``arbiter serve`` on the embedded store seeded with the benchmark's
   customers (``benchmarks.decide_bench --serve-memory``), the example
   policies plus a demonstration volume guard on the ``in_app`` channel
   (``max_grants`` a little under what the load grants per window, ``on_trip:
   pause``, so it trips, pauses and lifts during the run), the decision log
   on, ``/metrics`` on;
2. Prometheus (Debian's ``prometheus``), scraping it every 5 s and
   evaluating ``deploy/prometheus/alerts.yml``;
3. a paced load: Decide calls over the benchmark's surfaces at ``--rate``
   per second, 2 % of them invalid (a placement the policy does not know);

then renders every dashboard panel with ``scripts/render_dashboard.py``
and prints the alerts Prometheus reports firing. Only processes it started
are stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

GUARD_YAML = """
volume_guards:
  - id: demo_in_app_storm
    description: Demonstration guard of scripts/dashboard_screenshot.py (trips under its load).
    channel: in_app
    max_grants: {max_grants}
    window: {window}s
    on_trip: pause
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


async def _load(address: str, rate: float, seconds: float, customers: int) -> dict[str, int]:
    import grpc

    from arbiter.v1 import decision_pb2_grpc
    from benchmarks.decide_bench import _requests, customer_id

    rng = random.Random(7)
    pool = _requests(4096, customers, rng)
    counts: dict[str, int] = {}
    channel = grpc.aio.insecure_channel(address)
    stub = decision_pb2_grpc.DecisionServiceStub(channel)
    interval = 1.0 / rate
    start = time.monotonic()
    tasks: set[asyncio.Task[None]] = set()

    async def track(i: int) -> None:
        # Carts updated and orders placed: journey entries and exits, tracked events.
        from google.protobuf import timestamp_pb2

        from arbiter.v1 import decision_pb2, value_pb2

        customer = customer_id(rng.randrange(customers))
        stamp = timestamp_pb2.Timestamp()
        stamp.GetCurrentTime()
        event = decision_pb2.Event(event_id=uuid.uuid4().hex, customer_id=customer, timestamp=stamp)
        if i % 3:
            event.type = "cart_updated"
            event.properties["cart_id"].CopyFrom(value_pb2.Value(string_value=f"cart-{i}"))
            event.properties["item_count"].CopyFrom(value_pb2.Value(int_value=2))
            event.properties["cart_value"].CopyFrom(value_pb2.Value(double_value=42.5))
        else:
            event.type = "order_placed"
            event.properties["order_id"].CopyFrom(value_pb2.Value(string_value=f"o-{i}"))
            event.properties["total"].CopyFrom(value_pb2.Value(double_value=42.5))
        try:
            await stub.Track(decision_pb2.TrackRequest(events=[event]), timeout=2.0)
            key = "Track OK"
        except grpc.aio.AioRpcError as exc:
            key = f"Track {exc.code().name}"
        counts[key] = counts.get(key, 0) + 1

    async def one(i: int) -> None:
        if i % 10 == 9:
            await track(i)
            return
        request = pool[i % len(pool)]
        request = type(request).FromString(request.SerializeToString())
        request.request_id = uuid.uuid4().hex
        if rng.random() < 0.02:
            request.placement = "no_such_placement"
        try:
            await stub.Decide(request, timeout=2.0)
            key = "OK"
        except grpc.aio.AioRpcError as exc:
            key = exc.code().name
        counts[key] = counts.get(key, 0) + 1

    i = 0
    while (now := time.monotonic()) - start < seconds:
        task = asyncio.create_task(one(i))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        i += 1
        await asyncio.sleep(max(0.0, start + i * interval - now))
    await asyncio.gather(*tasks)
    await channel.close()
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=210.0, help="load duration")
    parser.add_argument("--rate", type=float, default=120.0, help="Decide calls per second")
    parser.add_argument("--customers", type=int, default=20000)
    parser.add_argument("--window", type=int, default=60, help="demo guard window, seconds")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "dashboard.png")
    args = parser.parse_args(argv)
    prometheus_bin = shutil.which("prometheus")
    if prometheus_bin is None:
        print("prometheus is not installed (apt-get install prometheus)", file=sys.stderr)
        return 2
    from benchmarks.decide_bench import memory_server_argv

    work = Path(tempfile.mkdtemp(prefix="arbiter-dashboard-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        policies = work / "policies"
        shutil.copytree(
            ROOT / "examples" / "policies", policies, ignore=shutil.ignore_patterns("tests")
        )
        # About a quarter of the calls grant an in-app action at first (fewer as the customers'
        # caps fill): the guard trips within the first windows, pauses, lifts.
        max_grants = int(args.rate * 0.12 * args.window)
        (policies / "demo_guard.yaml").write_text(
            GUARD_YAML.format(max_grants=max_grants, window=args.window)
        )
        grpc_port, metrics_port, prom_port = _free_port(), _free_port(), _free_port()
        now_ms = time.time_ns() // 1_000_000
        argv_server = [
            a.replace("{port}", str(grpc_port))
            for a in memory_server_argv(
                policies,
                args.customers,
                1,
                now_ms,
                "--metrics-port",
                str(metrics_port),
                "--decision-log",
                str(work / "decisions.jsonl"),
            )
        ]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        with (work / "server.log").open("wb") as log:
            procs.append(
                subprocess.Popen(
                    [sys.executable, *argv_server],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        _wait_http(f"http://127.0.0.1:{metrics_port}/metrics", 120)
        config = {
            "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
            "rule_files": [str(ROOT / "deploy" / "prometheus" / "alerts.yml")],
            "scrape_configs": [
                {
                    "job_name": "arbiter",
                    "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}],
                }
            ],
        }
        (work / "prometheus.yml").write_text(json.dumps(config))
        with (work / "prometheus.log").open("wb") as log:
            procs.append(
                subprocess.Popen(
                    [
                        prometheus_bin,
                        f"--config.file={work / 'prometheus.yml'}",
                        f"--storage.tsdb.path={work / 'tsdb'}",
                        f"--web.listen-address=127.0.0.1:{prom_port}",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        prometheus = f"http://127.0.0.1:{prom_port}"
        _wait_http(f"{prometheus}/-/ready", 60)
        time.sleep(10)
        start = time.time()
        counts = asyncio.run(
            _load(f"127.0.0.1:{grpc_port}", args.rate, args.seconds, args.customers)
        )
        time.sleep(12)  # the last scrapes
        end = time.time()
        print(f"load: {args.seconds:.0f} s at {args.rate:.0f} Decide/s: {counts}")
        from render_dashboard import render

        empty = render(prometheus, start - 10, end, args.out, rate_interval="20s", step=5.0)
        print(f"wrote {args.out} ({empty} panels without data)")
        with urllib.request.urlopen(f"{prometheus}/api/v1/alerts", timeout=10) as r:
            alerts = json.loads(r.read())["data"]["alerts"]
        for alert in alerts:
            print(f"alert {alert['labels']['alertname']} {alert['state']} {alert['labels']}")
        print((work / "server.log").read_text()[-2000:])
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
