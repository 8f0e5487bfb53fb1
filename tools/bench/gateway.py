"""Gateway benchmark: the course's gateway, the same code tuned, and ours, back to back.

    venv/bin/python -m tools.bench.gateway [--seconds 5] [--levels 1,4,16,64]

One run, one fake TF Serving (tools/bench/model.py: a fixed 20 ms per call, requests checked
but not computed on, so that it takes little of the cores the servers share with it) and one
loopback image server for all three servers, each a separate process:
  (a) seed: Flask under gunicorn with ONE sync worker, urlopen, full decode, NEAREST (the
      course's gateway, tools/bench/seed_app.py): the reference every ratio is taken to;
  (b) the same code tuned: gunicorn gthread, 2 workers x 16 threads;
  (c) this project's gateway (python -m gateway), 2 decode threads.
Clients POST {"url": ...} for a 1024x768 JPEG at each concurrency level, then a 12 MP JPEG at
16 clients; the gateway is also measured with uploads. Within each workload the servers take
turns, three short runs each, so that drifting load on the machine meets all of them. CPU per
request is the server's processes' CPU time (all threads and workers) over answered requests;
the floor is the seed's bare preprocessing of the same image (decode + NEAREST + x/127.5-1),
one thread, in this process, sampled before, between and after the workloads. The CPU of the
fake, the image server and the load generator is printed too: they share the cores.
Refusals (503 + Retry-After) are the gateway shedding load by design, not errors.
Prints figures and ratios and writes docs/gateway-bench.png; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from config.paths import PROJECT_ROOT
from gateway.contract import Preprocessing
from gateway.imaging import ImageSpec, prepare
from tools.bench import images, report
from tools.bench.load import Result, drive, free_port, merged, stop, wait_ready
from tools.bench.report import GATEWAY, GATEWAY_UPLOAD, REFERENCE, TUNED, Floor

MODEL_MS = 20
IMAGES = {"1024x768": "/photo.jpg", "12 MP": "/12mp.jpg"}
CHART = PROJECT_ROOT / "docs" / "gateway-bench.png"
FLOOR_SAMPLE_SECONDS = 0.6
ROUNDS = 3  # short runs per server and workload, taking turns with the other servers
FAKE, IMAGE_SERVER = "fake TF Serving", "image server"


def seed_floor_ms(data: bytes, seconds: float) -> float:
    """CPU ms per image of the seed's bare preprocessing, one thread."""
    from tools.bench.seed_app import preprocess  # noqa: PLC0415 - needs Flask (bench only)

    preprocess(data)
    count, cpu0 = 0, time.process_time()
    stop_at = time.perf_counter() + seconds
    while time.perf_counter() < stop_at or count < 3:
        preprocess(data)
        count += 1
    return (time.process_time() - cpu0) / count * 1000


def drift(data: bytes) -> tuple[float, float]:
    """Max and mean |gateway - seed| on the scaled tensor (x/127.5-1 units; 1 level = 0.0078)."""
    from tools.bench.seed_app import preprocess  # noqa: PLC0415

    ours = prepare(data, ImageSpec(size=299, preprocessing=Preprocessing.XCEPTION)).tensor
    difference = np.abs(ours - preprocess(data))
    return float(difference.max()), float(difference.mean())


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_") and k != "PORT"}


def _start(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )


def seed_server(port: int, tfs_port: int, *, tuned: bool) -> subprocess.Popen[bytes]:
    workers = ["--workers", "2", "--threads", "16", "--worker-class", "gthread"] if tuned else [
        "--workers", "1"]  # fmt: skip
    command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", *workers,
               "--log-level", "warning", "tools.bench.seed_app:app"]  # fmt: skip
    return _start(command, _env() | {"TF_SERVING_HOST": f"127.0.0.1:{tfs_port}"})


def gateway_server(port: int, tfs_port: int) -> subprocess.Popen[bytes]:
    env = _env() | {
        "PORT": str(port),
        # Its own free port, so a run never collides with a gateway already on 9697.
        "GATEWAY_METRICS_PORT": str(free_port()),
        "GATEWAY_BIND_HOST": "127.0.0.1",
        "GATEWAY_TF_SERVING_TARGET": f"127.0.0.1:{tfs_port}",
        "GATEWAY_WORKER_THREADS": str(len(os.sched_getaffinity(0))),
        "GATEWAY_ALLOWED_INTERNAL": "127.0.0.1/32",  # the loopback image server
        "GATEWAY_LOG_LEVEL": "WARNING",
    }
    return _start([sys.executable, "-m", "gateway"], env)


def measure(
    servers: dict[str, subprocess.Popen[bytes]], ports: dict[str, int], image_port: int, *,
    levels: list[int], seconds: float, photo: dict[str, bytes], floor: dict[str, list[float]],
    harness: dict[str, int],
) -> list[Result]:  # fmt: skip
    """Every workload on every server. The servers take turns within each workload, in
    ROUNDS short runs each, so that they meet the same conditions (this machine's other load
    drifts within seconds). After each workload, with the servers idle, the floor of its
    image is sampled again."""
    groups: list[tuple[str, int, list[tuple[str, dict[str, str] | bytes]]]] = []
    for image, path in IMAGES.items():
        by_url: dict[str, str] | bytes = {"url": f"http://127.0.0.1:{image_port}{path}"}
        for clients in levels if image == "1024x768" else [16]:
            groups.append((image, clients, [(name, by_url) for name in servers]))
    groups.append(("1024x768", 16, [(GATEWAY_UPLOAD, photo["1024x768"])]))
    results = []
    for image, clients, runs in groups:
        parts: dict[str, list[Result]] = {name: [] for name, _ in runs}
        for _ in range(ROUNDS if len(runs) > 1 else 1):
            for name, body in runs:
                server = GATEWAY if name == GATEWAY_UPLOAD else name
                url = f"http://127.0.0.1:{ports[server]}/predict"
                share = seconds / ROUNDS if len(runs) > 1 else seconds
                parts[name].append(asyncio.run(drive(
                    name, image, url, body, clients=clients, seconds=share,
                    pid=servers[server].pid, harness=harness)))  # fmt: skip
        for name, _ in runs:
            result = merged(parts[name])
            print(f"  {name:<26} {image:>8} {clients:>3} clients: {result.rps:7.1f} req/s")
            results.append(result)
        floor[image].append(seed_floor_ms(photo[image], FLOOR_SAMPLE_SECONDS))
    order = {name: i for i, name in enumerate([*servers, GATEWAY_UPLOAD])}
    return sorted(results, key=lambda r: (order[r.server], r.image != "1024x768", r.clients))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="measured time per level")
    parser.add_argument("--levels", default="1,4,16,64", help="concurrent clients, 1024x768")
    parser.add_argument("--chart", type=Path, default=CHART)
    args = parser.parse_args()
    missing = [name for name in ("flask", "gunicorn") if importlib.util.find_spec(name) is None]
    if missing:
        raise SystemExit(
            f"the seed servers need {', '.join(missing)}: "
            "venv/bin/pip install -r tools/bench/requirements.txt"
        )
    levels = [int(x) for x in args.levels.split(",")]
    load_before = os.getloadavg()[0]
    photo = {name: images.test_image(*size) for name, size in (("1024x768", images.PHOTO),
                                                              ("12 MP", images.BIG))}  # fmt: skip
    samples = {name: [seed_floor_ms(data, 1.5)] for name, data in photo.items()}
    print(f"machine: {report.machine()}; fake TF Serving: {MODEL_MS} ms per call")
    for name, data in photo.items():
        worst, mean = drift(data)
        print(f"  {name} JPEG, {len(data) // 1024} KiB: gateway vs seed pixels (scaled tensor): "
              f"max |diff| {worst:.3f}, mean {mean:.4f}")  # fmt: skip
    fake = _start([sys.executable, "-m", "tools.bench.model", "--port", "0", "--latency-ms",
                   str(MODEL_MS)], _env())  # fmt: skip
    server = _start([sys.executable, "-m", "tools.bench.images"], _env())
    servers: dict[str, subprocess.Popen[bytes]] = {}
    try:
        assert fake.stdout is not None and server.stdout is not None
        tfs_port, image_port = int(fake.stdout.readline()), int(server.stdout.readline())
        ports = {name: free_port() for name in (REFERENCE, TUNED, GATEWAY)}
        servers[REFERENCE] = seed_server(ports[REFERENCE], tfs_port, tuned=False)
        servers[TUNED] = seed_server(ports[TUNED], tfs_port, tuned=True)
        servers[GATEWAY] = gateway_server(ports[GATEWAY], tfs_port)
        for name, proc in servers.items():
            wait_ready(f"http://127.0.0.1:{ports[name]}/healthz", proc)
        harness = {FAKE: fake.pid, IMAGE_SERVER: server.pid}
        results = measure(servers, ports, image_port, levels=levels, seconds=args.seconds,
                          photo=photo, floor=samples, harness=harness)  # fmt: skip
    finally:
        for proc in [*servers.values(), fake, server]:
            stop(proc)
    # Sampled before, between and after the workloads: this machine's other work drifts.
    for name, data in photo.items():
        samples[name].append(seed_floor_ms(data, 1.5))
    floor = Floor(samples)
    for name, values in samples.items():
        print(
            f"  seed floor, {name}: {floor.by_image[name]:.2f} CPU ms per image "
            f"({len(values)} samples, {min(values):.2f} to {max(values):.2f})"
        )
    print()
    print(report.table(results, floor))
    print("\nThe benchmark's own processes, CPU ms per answered request at 16 clients (they")
    print("share the cores with the server measured; cores busy = server + these, of all cores):")
    print(report.harness(results, FAKE, IMAGE_SERVER))
    print("\nIssue 11's targets, measured in this run:")
    print("\n".join(report.verdicts(results, floor)))
    # Other work on the machine slows every server and inflates CPU time: say how much there was.
    note = f", load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}"
    print(f"\nmachine load (1-minute average) before and after: {note.split(' ', 3)[-1]}")
    report.chart(results, floor, args.chart, note)
    print(f"\nchart: {args.chart}")
    print(
        "\nCPU ms per request: the server's CPU time (all processes and threads) per answered\n"
        "request. x seed floor: that over the seed's bare preprocessing of the same image\n"
        "(decode + NEAREST resize + x/127.5-1, one thread, this process). x seed: requests/s\n"
        "over the seed's at the same clients and image. Refused: 503 + Retry-After, the\n"
        "gateway's load shedding (clients pause 50 ms and go on). The load generator, the fake\n"
        "TF Serving and the image server share the same cores."
    )


if __name__ == "__main__":
    main()
