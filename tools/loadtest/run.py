"""Run the Locust load test headless against a stack (what `make loadtest` calls).

    python -m tools.loadtest.run --stack dev --run-time 60s
    python -m tools.loadtest.run --url http://HOST:8501/v1/models/half_plus_two:predict -t 30s
    python -m tools.loadtest.run --stack eks --user gateway --steps 10:1m,40:2m

Targets come from the stack outputs (predictUrl / predictUrlCommand, gatewayUrl /
gatewayUrlCommand) unless --url / --gateway-url are given. Without --steps the run time is split
into three steps of 5, 20 and 50 users. Locust prints its summary at the end; the exit code is
Locust's (1 when any request failed).
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import outputs as out
from config.paths import PROJECT_ROOT
from tools.loadtest.steps import parse_duration, parse_steps
from tools.stack_outputs import OutputsError, load_outputs, resolve_url

LOCUSTFILE = PROJECT_ROOT / "tools" / "loadtest" / "locustfile.py"


def default_steps(run_time: str) -> str:
    third = parse_duration(run_time) / 3
    return ",".join(f"{users}:{third:g}s" for users in (5, 20, 50))


def target_env(
    user: str,
    predict_url: str | None,
    gateway_url: str | None,
    outputs: dict[str, object] | None,
) -> dict[str, str]:
    """LOADTEST_* variables for the selected user classes; raises OutputsError if one is missing."""
    env = {"LOADTEST_USER": user}
    if user in ("predict", "both"):
        url = predict_url or (resolve_url(outputs, out.PREDICT_URL) if outputs else None)
        if not url:
            raise OutputsError("no predict URL: give --url, --stack or --outputs")
        env["LOADTEST_PREDICT_URL"] = url
        if outputs is not None and isinstance(outputs.get(out.MODEL_NAME), str):
            env["LOADTEST_MODEL"] = str(outputs[out.MODEL_NAME])
    if user in ("gateway", "both"):
        url = gateway_url or (resolve_url(outputs, out.GATEWAY_URL) if outputs else None)
        if not url:
            raise OutputsError("no gateway URL: give --gateway-url, or enable the gateway")
        env["LOADTEST_GATEWAY_URL"] = url
    return env


def locust_path() -> dict[str, str]:
    """PYTHONPATH for Locust: the locustfile imports the project's modules from its root."""
    existing = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), existing]))}


def locust_command(run_time: str, csv_prefix: Path | None, extra: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary"]
    cmd += ["--run-time", run_time]
    if csv_prefix is not None:
        cmd += ["--csv", str(csv_prefix)]
    return cmd + extra


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Headless Locust run against a stack.")
    parser.add_argument("--stack", help="read targets from `pulumi stack output -s STACK`")
    parser.add_argument("--outputs", type=Path, help="read targets from this outputs JSON")
    parser.add_argument("--url", help="REST predict URL (instead of the outputs)")
    parser.add_argument("--gateway-url", help="gateway base URL (instead of the outputs)")
    parser.add_argument("--user", choices=["predict", "gateway", "both"], default="predict")
    parser.add_argument("-t", "--run-time", default="60s", help="e.g. 60s, 5m (default 60s)")
    parser.add_argument("--steps", help="USERS:DURATION,... (default: 5/20/50 users over -t)")
    parser.add_argument("--spawn-rate", type=float, default=5.0)
    parser.add_argument("--csv", type=Path, help="write Locust's CSV stats with this prefix")
    parser.add_argument("locust_args", nargs="*", help="after --: passed on to locust")
    args = parser.parse_args(argv)
    try:
        steps = args.steps or default_steps(args.run_time)
        parse_steps(steps)  # fail here, with a clear message, rather than inside Locust
        needs_outputs = (args.user != "gateway" and not args.url) or (
            args.user != "predict" and not args.gateway_url
        )
        outputs = load_outputs(args.stack, args.outputs) if needs_outputs else None
        env = target_env(args.user, args.url, args.gateway_url, outputs)
    except (OutputsError, ValueError) as exc:
        print(f"loadtest: {exc}", file=sys.stderr)
        return 2
    env |= {"LOADTEST_STEPS": steps, "LOADTEST_SPAWN_RATE": f"{args.spawn_rate:g}"}
    targets = ", ".join(f"{k}={v}" for k, v in env.items() if k.endswith("_URL"))
    print(f"loadtest: {args.user} users, steps {steps}, run time {args.run_time}: {targets}")
    cmd = locust_command(args.run_time, args.csv, args.locust_args)
    return subprocess.call(cmd, cwd=PROJECT_ROOT, env={**os.environ, **env, **locust_path()})


if __name__ == "__main__":
    sys.exit(main())
