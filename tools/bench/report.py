"""The benchmark's table, its verdicts against issue 11's targets, and its chart."""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from tools.bench.load import LOAD_GENERATOR, Result

REFERENCE = "seed (1 sync worker)"
TUNED = "seed tuned (gthread 2x16)"
GATEWAY = "gateway"
GATEWAY_UPLOAD = "gateway, uploads"
COLUMNS = (
    ("server", 26, "{}"),
    ("image", 9, "{}"),
    ("clients", 7, "{:d}"),
    ("requests/s", 10, "{:.1f}"),
    ("x seed", 6, "{:.2f}"),
    ("p50 ms", 7, "{:.0f}"),
    ("p99 ms", 7, "{:.0f}"),
    ("CPU ms per request", 18, "{:.2f}"),
    ("x seed floor", 12, "{:.2f}"),
    ("refused (503, by design)", 24, "{:d}"),
    ("errors", 6, "{:d}"),
)


@dataclass(frozen=True)
class Floor:
    """CPU ms per image of the seed's bare preprocessing, one thread, in this process: the
    mean of every sample taken in the run (before, between and after the workloads)."""

    samples: dict[str, list[float]]

    @property
    def by_image(self) -> dict[str, float]:
        return {image: sum(values) / len(values) for image, values in self.samples.items()}

    def ratio(self, result: Result) -> float:
        return result.cpu_ms_per_request / self.by_image[result.image]


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {len(os.sched_getaffinity(0))} cores"


def _reference(results: Sequence[Result], result: Result) -> Result | None:
    for other in results:
        if (other.server, other.image, other.clients) == (REFERENCE, result.image, result.clients):
            return other
    return None


def table(results: Sequence[Result], floor: Floor) -> str:
    head = "  ".join(f"{name:>{width}}" for name, width, _ in COLUMNS)
    lines = [head, "-" * len(head)]
    for r in results:
        ref = _reference(results, r)
        ratio = r.rps / ref.rps if ref and ref.rps else math.nan
        values = (
            r.server, r.image, r.clients, r.rps, ratio, r.percentile(50), r.percentile(99),
            r.cpu_ms_per_request, floor.ratio(r), r.refused, r.errors,
        )  # fmt: skip
        cells = [fmt.format(v) for (_, _, fmt), v in zip(COLUMNS, values, strict=True)]
        lines.append("  ".join(f"{c:>{w}}" for c, (_, w, _) in zip(cells, COLUMNS, strict=True)))
    return "\n".join(lines)


def harness(results: Sequence[Result], fake: str, images: str) -> str:
    """CPU of the benchmark's own processes per answered request, at 16 clients, and how busy
    the machine's cores were: what the measured server did not get."""
    names = ((fake, "fake TF Serving"), (images, "image server"), (LOAD_GENERATOR, "load gen."))
    head = f"{'server':>26}  {'image':>9}  " + "  ".join(f"{label:>15}" for _, label in names)
    lines = [head + f"  {'cores busy':>11}", "-" * (len(head) + 13)]
    cores = len(os.sched_getaffinity(0))
    for r in results:
        if r.clients != 16:
            continue
        cells = "  ".join(f"{r.harness_ms_per_request(name):15.2f}" for name, _ in names)
        busy = (r.cpu_s + sum(r.harness_cpu_s.values())) / (r.seconds * cores)
        lines.append(f"{r.server:>26}  {r.image:>9}  {cells}  {busy * 100:10.0f}%")
    return "\n".join(lines)


def _find(results: Sequence[Result], server: str, image: str, clients: int) -> Result | None:
    for r in results:
        if (r.server, r.image, r.clients) == (server, image, clients):
            return r
    return None


def verdicts(results: Sequence[Result], floor: Floor) -> list[str]:
    """Issue 11's targets, each with the figure measured in this run."""
    lines = []
    gw, tuned = _find(results, GATEWAY, "1024x768", 16), _find(results, TUNED, "1024x768", 16)
    big = _find(results, GATEWAY, "12 MP", 16)
    checks = []
    if gw is not None:
        checks.append(("CPU per request / seed floor at 16 clients", floor.ratio(gw), "<=", 1.0))
        checks.append(("p99 ms at 16 clients", gw.percentile(99), "<=", 80.0))
        if tuned is not None and tuned.rps:
            checks.append(("requests/s / tuned seed at 16 clients", gw.rps / tuned.rps, ">=", 1.5))
    if big is not None:
        checks.append(("CPU per request / seed floor, 12 MP JPEG", floor.ratio(big), "<=", 0.30))
    for name, value, op, target in checks:
        met = value <= target if op == "<=" else value >= target
        lines.append(
            f"  {name}: {value:.2f} (target {op} {target:g}) {'met' if met else 'NOT met'}"
        )
    return lines


def chart(results: Sequence[Result], floor: Floor, path: Path, note: str = "") -> None:
    import matplotlib  # noqa: PLC0415 - optional: only the chart needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, (rps_ax, p99_ax, cpu_ax) = plt.subplots(1, 3, figsize=(16, 5))
    for server in (REFERENCE, TUNED, GATEWAY):
        points = sorted(
            (r for r in results if r.server == server and r.image == "1024x768"),
            key=lambda r: r.clients,
        )
        clients = [r.clients for r in points]
        rps_ax.plot(clients, [r.rps for r in points], marker="o", label=server)
        p99_ax.plot(clients, [r.percentile(99) for r in points], marker="o", label=server)
    for ax, label in ((rps_ax, "requests/s (answered)"), (p99_ax, "p99 latency, ms")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent clients (1024x768 JPEG by URL)")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.legend()
    p99_ax.set_yscale("log")
    p99_ax.axhline(80, color="grey", linestyle="--", linewidth=1)
    bars = [r for r in results if r.clients == 16]
    names = [f"{r.server}\n{r.image}" for r in bars]
    cpu_ax.barh(names, [floor.ratio(r) for r in bars], color="tab:blue")
    cpu_ax.axvline(1.0, color="black", linewidth=1)
    cpu_ax.set_xlabel("CPU per request / seed's bare preprocessing (1.0 = the floor)")
    cpu_ax.invert_yaxis()
    cpu_ax.tick_params(axis="y", labelsize=7)
    fig.suptitle(f"Gateway benchmark, {date.today().isoformat()}, {machine()}{note}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
