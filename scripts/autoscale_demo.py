"""Watch the HPA scale TF Serving under a step load, and draw it.

    make autoscale-demo STACK=dev
    python scripts/autoscale_demo.py --stack dev --steps 2:1m,10:2m,25:2m,0:7m
    python scripts/autoscale_demo.py --plot build/dev/autoscale/autoscale.csv   # redraw only

Starts Locust (headless, the step shape of loadtest/locustfile.py) against the stack's predict
URL, and every --interval seconds reads the HPA (`kubectl get hpa -o json`: current and desired
replicas, CPU utilisation) and the pods of the Deployment it scales (by its label selector),
with a one-line progress display. Writes `autoscale.csv` and `autoscale.png` (replicas and CPU
over time, load steps shaded, the HPA target dashed) to --out. The last step should be a
cool-down (0 users) longer than the HPA's scale-down window (300 s by default) to see it scale in.
"""

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Protocol

import yaml

if __package__ in (None, ""):  # run as `python scripts/autoscale_demo.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loadtest.run import locust_command, target_env
from loadtest.steps import Step, parse_steps, step_at, total_seconds
from scripts.stack_outputs import REPO, OutputsError, load_outputs

# Warm-up, two load steps, then a cool-down longer than the HPA's scale-down window (300 s) plus
# two 60 s scale-down periods, so the picture shows it scale back in.
DEFAULT_STEPS = "2:1m,10:2m,25:2m,0:7m"


# --- what kubectl says, parsed ----------------------------------------------------------------


@dataclass(frozen=True)
class HpaStatus:
    current_replicas: int
    desired_replicas: int
    cpu_percent: int | None  # None while metrics-server has no numbers yet ("<unknown>")
    target_cpu_percent: int | None
    min_replicas: int
    max_replicas: int
    target_kind: str
    target_name: str


def parse_hpa(hpa: Mapping[str, Any]) -> HpaStatus:
    """`kubectl get hpa NAME -o json` (autoscaling/v2) -> the numbers the demo plots."""
    spec, status = hpa.get("spec", {}), hpa.get("status", {})
    target = None
    for metric in spec.get("metrics", []):
        if metric.get("type") == "Resource" and metric["resource"].get("name") == "cpu":
            target = metric["resource"].get("target", {}).get("averageUtilization")
    current = None
    for metric in status.get("currentMetrics") or []:
        resource = metric.get("resource") or {}
        if metric.get("type") == "Resource" and resource.get("name") == "cpu":
            current = resource.get("current", {}).get("averageUtilization")
    ref = spec.get("scaleTargetRef", {})
    return HpaStatus(
        current_replicas=int(status.get("currentReplicas", 0)),
        desired_replicas=int(status.get("desiredReplicas", 0)),
        cpu_percent=None if current is None else int(current),
        target_cpu_percent=None if target is None else int(target),
        min_replicas=int(spec.get("minReplicas", 1)),
        max_replicas=int(spec["maxReplicas"]),
        target_kind=str(ref.get("kind", "")),
        target_name=str(ref.get("name", "")),
    )


def label_selector(workload: Mapping[str, Any]) -> str:
    """A Deployment's spec.selector.matchLabels as a `kubectl -l` selector."""
    labels = workload.get("spec", {}).get("selector", {}).get("matchLabels") or {}
    if not labels:
        raise ValueError("the scaled workload has no spec.selector.matchLabels")
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def count_pods(pods: Mapping[str, Any]) -> tuple[int, int]:
    """`kubectl get pods -o json` -> (pods alive, pods Ready); finished pods do not count."""
    alive = ready = 0
    for pod in pods.get("items", []):
        status = pod.get("status", {})
        if status.get("phase") in ("Succeeded", "Failed"):
            continue
        alive += 1
        conditions = status.get("conditions") or []
        if not pod["metadata"].get("deletionTimestamp") and any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
        ):
            ready += 1
    return alive, ready


# --- samples and their CSV ----------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    elapsed_s: float
    phase: int  # index of the load step, -1 after the schedule
    users: int
    current_replicas: int
    desired_replicas: int
    cpu_percent: int | None
    target_cpu_percent: int | None
    max_replicas: int
    pods: int
    ready_pods: int


COLUMNS = [f.name for f in fields(Sample)]


def make_sample(
    elapsed: float, steps: Sequence[Step], hpa: HpaStatus, pods: tuple[int, int]
) -> Sample:
    current = step_at(list(steps), elapsed)
    phase, users = (current[0], current[1].users) if current else (-1, 0)
    return Sample(
        elapsed_s=round(elapsed, 1),
        phase=phase,
        users=users,
        current_replicas=hpa.current_replicas,
        desired_replicas=hpa.desired_replicas,
        cpu_percent=hpa.cpu_percent,
        target_cpu_percent=hpa.target_cpu_percent,
        max_replicas=hpa.max_replicas,
        pods=pods[0],
        ready_pods=pods[1],
    )


def write_csv(samples: Sequence[Sample], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for s in samples:
            writer.writerow({k: "" if v is None else v for k, v in asdict(s).items()})


def read_csv(path: Path) -> list[Sample]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != COLUMNS:
            raise ValueError(f"{path}: expected columns {COLUMNS}, got {reader.fieldnames}")
        return [
            Sample(
                elapsed_s=float(row["elapsed_s"]),
                phase=int(row["phase"]),
                users=int(row["users"]),
                current_replicas=int(row["current_replicas"]),
                desired_replicas=int(row["desired_replicas"]),
                cpu_percent=int(row["cpu_percent"]) if row["cpu_percent"] else None,
                target_cpu_percent=(
                    int(row["target_cpu_percent"]) if row["target_cpu_percent"] else None
                ),
                max_replicas=int(row["max_replicas"]),
                pods=int(row["pods"]),
                ready_pods=int(row["ready_pods"]),
            )
            for row in reader
        ]


def progress_line(s: Sample, phases: int) -> str:
    cpu = "?" if s.cpu_percent is None else f"{s.cpu_percent}%"
    target = "?" if s.target_cpu_percent is None else f"{s.target_cpu_percent}%"
    phase = f"step {s.phase + 1}/{phases}" if s.phase >= 0 else "done"
    return (
        f"[{s.elapsed_s:6.0f}s] {phase} {s.users:3d} users | replicas {s.current_replicas}"
        f" -> {s.desired_replicas} | cpu {cpu:>5} (target {target}) | pods {s.pods}"
        f" ({s.ready_pods} ready)"
    )


# --- sampling, independent of where the numbers come from --------------------------------------


class Source(Protocol):
    def read(self) -> tuple[HpaStatus, tuple[int, int]]: ...


def sample_loop(
    source: Source,
    steps: Sequence[Step],
    interval: float,
    duration: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Sample]:
    """One Sample every `interval` seconds (on a fixed grid, so slow reads do not drift)."""
    start = clock()
    tick = 0
    while True:
        elapsed = clock() - start
        if elapsed > duration:
            return
        hpa, pods = source.read()
        yield make_sample(clock() - start, steps, hpa, pods)
        tick += 1
        sleep(max(0.0, start + tick * interval - clock()))


class Kubectl:
    """The HPA and pod counts, read with kubectl (context and namespace fixed)."""

    def __init__(self, namespace: str, hpa: str, context: str | None, timeout: float = 20):
        self.base = ["kubectl", *(["--context", context] if context else []), "-n", namespace]
        self.hpa, self.timeout = hpa, timeout
        self.selector: str | None = None

    def get_json(self, *args: str) -> dict[str, Any]:
        cmd = [*self.base, "get", *args, "-o", "json"]
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=self.timeout, check=False
            )
        except FileNotFoundError as exc:
            raise OutputsError("kubectl not found: install it to watch the HPA") from exc
        except subprocess.TimeoutExpired as exc:
            raise OutputsError(f"`{' '.join(cmd)}` timed out") from exc
        if proc.returncode != 0:
            raise OutputsError(f"`{' '.join(cmd)}` failed: {proc.stderr.strip()}")
        data: dict[str, Any] = json.loads(proc.stdout)
        return data

    def read(self) -> tuple[HpaStatus, tuple[int, int]]:
        hpa = parse_hpa(self.get_json("hpa", self.hpa))
        if self.selector is None:  # the selector of a Deployment never changes
            kind = hpa.target_kind.lower() or "deployment"
            self.selector = label_selector(self.get_json(kind, hpa.target_name))
        return hpa, count_pods(self.get_json("pods", "-l", self.selector))


# --- the picture --------------------------------------------------------------------------------


def phase_spans(samples: Sequence[Sample]) -> list[tuple[float, float, int]]:
    """(start, end, users) of each load step seen in the samples, back to back."""
    starts = [
        (s.elapsed_s, s.users)
        for i, s in enumerate(samples)
        if s.phase >= 0 and (i == 0 or samples[i - 1].phase != s.phase)
    ]
    after = [s.elapsed_s for s in samples if s.phase < 0]
    end = after[0] if after else samples[-1].elapsed_s if samples else 0.0
    ends = [start for start, _ in starts[1:]] + [end]
    return [(start, stop, users) for (start, users), stop in zip(starts, ends, strict=True)]


def plot(samples: Sequence[Sample], png: Path, title: str) -> None:
    """Replicas (top) and CPU utilisation (bottom) over time, load steps shaded."""
    import matplotlib  # noqa: PLC0415 - only the plot needs it, and Agg must be chosen first

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

    if not samples:
        raise ValueError("no samples to plot")
    minutes = max(s.elapsed_s for s in samples) > 180
    scale, unit = (60.0, "min") if minutes else (1.0, "s")
    t = [s.elapsed_s / scale for s in samples]
    fig, (ax_rep, ax_cpu) = plt.subplots(
        2, 1, sharex=True, figsize=(11, 6.5), height_ratios=[1.1, 1], layout="constrained"
    )
    spans = phase_spans(samples)
    peak_users = max((u for _, _, u in spans), default=0) or 1
    for start, end, users in spans:
        for ax in (ax_rep, ax_cpu):
            ax.axvspan(
                start / scale,
                end / scale,
                color="#f2a93b",
                alpha=0.08 + 0.3 * users / peak_users,
                lw=0,
            )
        ax_rep.annotate(
            f"{users} users" if users else "no load",
            xy=((start + end) / 2 / scale, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(0, -12),
            textcoords="offset points",
            ha="center",
            fontsize=9,
            color="#7a4a00",
        )

    ready = [s.ready_pods for s in samples]
    ax_rep.fill_between(
        t, ready, step="post", color="#2e9e5b", alpha=0.15, lw=0, label="pods ready"
    )
    ax_rep.step(
        t,
        [s.desired_replicas for s in samples],
        where="post",
        ls="--",
        lw=1.6,
        color="#555555",
        label="desired (HPA)",
    )
    ax_rep.step(
        t,
        [s.current_replicas for s in samples],
        where="post",
        lw=2.4,
        color="#1f5fa8",
        label="current replicas",
    )
    for limit in sorted({s.max_replicas for s in samples}):
        ax_rep.axhline(limit, ls=":", lw=1.2, color="#1f5fa8")
        ax_rep.annotate(
            f"maxReplicas {limit}",
            xy=(1.0, limit),
            xycoords=("axes fraction", "data"),
            xytext=(-4, 4),
            textcoords="offset points",
            ha="right",
            fontsize=9,
            color="#1f5fa8",
        )
    top = max(max(s.desired_replicas, s.current_replicas, s.pods, s.max_replicas) for s in samples)
    ax_rep.set_ylim(0, top + 1.2)
    ax_rep.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax_rep.set_ylabel("replicas")

    cpu_t = [ti for ti, s in zip(t, samples, strict=True) if s.cpu_percent is not None]
    cpu = [s.cpu_percent for s in samples if s.cpu_percent is not None]
    # The HPA refreshes its metric every 15 s: draw it as the steps it is.
    ax_cpu.plot(
        cpu_t,
        cpu,
        lw=2,
        color="#c2410c",
        drawstyle="steps-post",
        label="CPU (% of request, pod average)",
    )
    targets = {s.target_cpu_percent for s in samples if s.target_cpu_percent is not None}
    for target in sorted(targets):
        ax_cpu.axhline(target, ls="--", lw=1.4, color="#444444")
        ax_cpu.annotate(
            f"HPA target {target}%",
            xy=(1.0, target),
            xycoords=("axes fraction", "data"),
            xytext=(-4, 4),
            textcoords="offset points",
            ha="right",
            fontsize=9,
        )
    ax_cpu.set_ylim(0, max([*cpu, *targets, 10]) * 1.15)
    ax_cpu.set_ylabel("CPU utilisation (%)")
    ax_cpu.set_xlabel(f"time ({unit})")
    ax_cpu.set_xlim(t[0], t[-1])
    for ax in (ax_rep, ax_cpu):
        ax.grid(axis="y", alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle(title, fontsize=12)
    handles = [h for ax in (ax_rep, ax_cpu) for h in ax.get_legend_handles_labels()[0]]
    fig.legend(
        handles=handles, loc="outside lower center", ncol=len(handles), fontsize=9, frameon=False
    )
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)


# --- the demo -----------------------------------------------------------------------------------


def stack_context(stack: str | None) -> str | None:
    """`tfserving:kubeContext` from Pulumi.<stack>.yaml, if the stack pins one."""
    path = REPO / f"Pulumi.{stack}.yaml"
    if stack is None or not path.is_file():
        return None
    config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    context = config.get("tfserving:kubeContext")
    return str(context) if context else None


def run_demo(args: argparse.Namespace) -> int:
    steps = parse_steps(args.steps)
    outputs = load_outputs(args.stack, args.outputs)
    for key in ("namespace", "hpaName"):
        if not outputs.get(key):
            raise OutputsError(f"the stack outputs have no {key}")
    source = Kubectl(
        outputs["namespace"], outputs["hpaName"], args.context or stack_context(args.stack)
    )
    env = target_env("predict", args.url, None, outputs)
    env |= {"LOADTEST_STEPS": args.steps, "LOADTEST_SPAWN_RATE": "5"}
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    duration = total_seconds(steps)
    cmd = locust_command(f"{math.ceil(duration) + 30}s", out / "locust", [])
    print(
        f"autoscale-demo: {args.steps} against {env['LOADTEST_PREDICT_URL']}; "
        f"{duration:.0f} s, sampling every {args.interval:g} s -> {out}"
    )
    samples: list[Sample] = []
    tty = sys.stdout.isatty()
    with (out / "locust.log").open("w") as log:
        locust = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **env}, stdout=log, stderr=log)
        try:
            for sample in sample_loop(source, steps, args.interval, duration):
                samples.append(sample)
                line = progress_line(sample, len(steps))
                print(f"\r{line}\033[K" if tty else line, end="" if tty else "\n", flush=True)
        except KeyboardInterrupt:
            print("\nautoscale-demo: interrupted, writing what was sampled")
        finally:
            early_exit = locust.poll()  # Locust should still be running: the schedule is ours
            if early_exit is None:
                locust.terminate()
            locust.wait(timeout=30)
    print()
    if early_exit not in (None, 0):
        print(f"autoscale-demo: warning: Locust stopped early (exit {early_exit}), see {log.name}")
    write_csv(samples, out / "autoscale.csv")
    title = f"HPA under step load: stack {args.stack or 'custom'}, {outputs['hpaName']}"
    plot(samples, out / "autoscale.png", title)
    print(f"autoscale-demo: wrote {out / 'autoscale.csv'} and {out / 'autoscale.png'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Drive load, watch the HPA, plot it.")
    parser.add_argument("--stack", help="read outputs with `pulumi stack output -s STACK`")
    parser.add_argument("--outputs", type=Path, help="read outputs from this JSON file")
    parser.add_argument("--url", help="REST predict URL (default: from the outputs)")
    parser.add_argument("--context", help="kube context (default: the stack's kubeContext)")
    parser.add_argument("--steps", default=DEFAULT_STEPS, help=f"default {DEFAULT_STEPS}")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "autoscale")
    parser.add_argument("--plot", type=Path, metavar="CSV", help="only redraw this CSV's PNG")
    parser.add_argument("--png", type=Path, help="with --plot: where to write the PNG")
    parser.add_argument("--title", help="with --plot: the picture's title")
    args = parser.parse_args(argv)
    try:
        if args.plot:
            png = args.png or args.plot.with_suffix(".png")
            plot(read_csv(args.plot), png, args.title or f"HPA under step load ({args.plot.name})")
            print(f"autoscale-demo: wrote {png}")
            return 0
        return run_demo(args)
    except (OutputsError, ValueError) as exc:
        print(f"autoscale-demo: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
