"""Watch the HPA scale TF Serving under a step load, and draw it.

    make autoscale-demo STACK=dev
    venv/bin/python -m tools.autoscale --stack dev --steps 2:1m,10:2m,25:2m,0:7m
    venv/bin/python -m tools.autoscale --plot docs/autoscale-demo.csv --png build/demo.png

Starts Locust (headless, the step shape of tools/loadtest/locustfile.py) against the stack's predict
URL, and every --interval seconds reads the HPA (`kubectl get hpa -o json`: current and desired
replicas, CPU utilisation), the pods of the Deployment it scales (by its label selector) and the
cluster's Ready nodes (`kubectl get nodes -o json`), with a one-line progress display. Writes
`autoscale.csv` and `autoscale.png` (replicas, nodes and CPU over time, load steps shaded, the
HPA target dashed) to --out. The last step should be a cool-down (0 users) longer than the HPA's
scale-down window (300 s by default) to see it scale in.

Before any load starts, the URL and one kubectl read are checked: a stopped cluster or a wrong
context fails at once, with the likely cause.
"""

import argparse
import math
import os
import subprocess
import sys
from pathlib import Path

import yaml

from config.errors import SettingsError
from config.paths import PROJECT_ROOT
from config.stack import parse
from tools.autoscale.plot import plot
from tools.autoscale.samples import Kubectl, Sample, progress_line, read_csv, sample_loop, write_csv
from tools.loadtest.run import locust_command, locust_path, target_env
from tools.loadtest.steps import parse_steps, total_seconds
from tools.render.engine import stack_config
from tools.stack_outputs import OutputsError, load_outputs

# Warm-up, two load steps, then a cool-down longer than the HPA's scale-down window (300 s) plus
# two 60 s scale-down periods, so the picture shows it scale back in.
DEFAULT_STEPS = "2:1m,10:2m,25:2m,0:7m"


# --- the demo -----------------------------------------------------------------------------------


def stack_context(stack: str | None) -> str | None:
    """The kube context of Pulumi.<stack>.yaml: its kubeContext (minikube), the one its
    clusterName gives (kind), or None (eks: kubectl's current context, set by kubeconfigCommand)."""
    path = PROJECT_ROOT / f"Pulumi.{stack}.yaml"
    if stack is None or not path.is_file():
        return None
    try:
        settings = parse(stack_config(path))
    except SettingsError:
        config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
        context = config.get("tfserving:kubeContext")
        return str(context) if context else None
    context = getattr(settings, "kube_context", None)
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
    source.read()  # fails here, before any load, when the cluster cannot be read
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
        locust = subprocess.Popen(
            cmd,
            cwd=PROJECT_ROOT,
            env={**os.environ, **env, **locust_path()},
            stdout=log,
            stderr=log,
        )
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
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "build" / "autoscale")
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
