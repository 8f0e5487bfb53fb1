"""What the autoscaling demo samples: the HPA, its pods and the cluster's nodes, read with
kubectl, and their CSV (older CSVs without the nodes column still read)."""

import csv
import json
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Protocol

from tools.loadtest.steps import Step, step_at
from tools.stack_outputs import OutputsError

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


def count_ready_nodes(nodes: Mapping[str, Any]) -> int:
    """`kubectl get nodes -o json` -> nodes whose Ready condition is True (a new node counts once
    its kubelet is up, an old one stops counting when it goes NotReady or is cordoned off)."""
    ready = 0
    for node in nodes.get("items", []):
        conditions = (node.get("status") or {}).get("conditions") or []
        schedulable = not (node.get("spec") or {}).get("unschedulable")
        if schedulable and any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
        ):
            ready += 1
    return ready


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
    # Ready nodes (None in CSVs recorded before the demo counted them).
    nodes: int | None = None


COLUMNS = [f.name for f in fields(Sample)]
# The columns of CSVs written before `nodes` was added: still read, nodes unknown.
COLUMNS_WITHOUT_NODES = [c for c in COLUMNS if c != "nodes"]


def make_sample(
    elapsed: float,
    steps: Sequence[Step],
    hpa: HpaStatus,
    pods: tuple[int, int],
    nodes: int | None = None,
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
        nodes=nodes,
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
        if reader.fieldnames not in (COLUMNS, COLUMNS_WITHOUT_NODES):
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
                nodes=int(row["nodes"]) if row.get("nodes") else None,
            )
            for row in reader
        ]


def progress_line(s: Sample, phases: int) -> str:
    cpu = "?" if s.cpu_percent is None else f"{s.cpu_percent}%"
    target = "?" if s.target_cpu_percent is None else f"{s.target_cpu_percent}%"
    phase = f"step {s.phase + 1}/{phases}" if s.phase >= 0 else "done"
    nodes = "" if s.nodes is None else f" | nodes {s.nodes}"
    return (
        f"[{s.elapsed_s:6.0f}s] {phase} {s.users:3d} users | replicas {s.current_replicas}"
        f" -> {s.desired_replicas} | cpu {cpu:>5} (target {target}) | pods {s.pods}"
        f" ({s.ready_pods} ready){nodes}"
    )


# --- sampling, independent of where the numbers come from --------------------------------------


class Source(Protocol):
    def read(self) -> tuple[HpaStatus, tuple[int, int], int | None]:
        """The HPA, (pods alive, pods Ready) of its workload, Ready nodes (None: unknown)."""
        ...


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
        hpa, pods, nodes = source.read()
        yield make_sample(clock() - start, steps, hpa, pods, nodes)
        tick += 1
        sleep(max(0.0, start + tick * interval - clock()))


class Kubectl:
    """The HPA, pod and node counts, read with kubectl (context and namespace fixed)."""

    def __init__(self, namespace: str, hpa: str, context: str | None, timeout: float = 20):
        self.context = context
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
            raise OutputsError(
                f"`{' '.join(cmd)}` did not answer within {self.timeout:.0f} s{self._hint()}"
            ) from exc
        if proc.returncode != 0:
            raise OutputsError(f"`{' '.join(cmd)}` failed: {proc.stderr.strip()}{self._hint()}")
        data: dict[str, Any] = json.loads(proc.stdout)
        return data

    def _hint(self) -> str:
        context = self.context or "the current context (kubectl config current-context)"
        return (
            f". Is the cluster of {context} running, and is it the stack's cluster? "
            "(kubectl config get-contexts; --context CONTEXT)"
        )

    def read(self) -> tuple[HpaStatus, tuple[int, int], int | None]:
        hpa = parse_hpa(self.get_json("hpa", self.hpa))
        if self.selector is None:  # the selector of a Deployment never changes
            kind = hpa.target_kind.lower() or "deployment"
            self.selector = label_selector(self.get_json(kind, hpa.target_name))
        pods = count_pods(self.get_json("pods", "-l", self.selector))
        return hpa, pods, count_ready_nodes(self.get_json("nodes"))
