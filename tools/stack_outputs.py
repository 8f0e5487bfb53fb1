"""Read a stack's outputs and turn them into reachable URLs (shared by smoke, loadtest, demo).

Outputs come from `pulumi stack output --json -s STACK` in real use, or from a JSON file
(`--outputs FILE`) in tests and for people without the CLI at hand. A URL output comes either as
the URL itself (`predictUrl`, on eks) or as a shell command that prints it (`predictUrlCommand`,
on minikube, where the node IP is only known to `minikube ip`).
"""

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import outputs as out
from config.paths import PROJECT_ROOT

Outputs = dict[str, Any]


class OutputsError(Exception):
    """The outputs cannot be read or do not hold what is needed; the message says why."""


def pulumi_outputs(stack: str, cwd: Path = PROJECT_ROOT, timeout: float = 60.0) -> Outputs:
    cmd = ["pulumi", "stack", "output", "--json", "-s", stack]
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise OutputsError(
            "the pulumi CLI is not installed (https://www.pulumi.com/docs/install/); "
            "or pass --outputs FILE / --url URL"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise OutputsError(f"`{' '.join(cmd)}` did not answer within {timeout:.0f} s") from exc
    if proc.returncode != 0:
        raise OutputsError(
            f"`{' '.join(cmd)}` failed (exit {proc.returncode}): {proc.stderr.strip()}\n"
            "Is the stack deployed and the state backend the one it was deployed with "
            "(PULUMI_BACKEND_URL)?"
        )
    return parse_outputs(proc.stdout, source=f"pulumi stack output -s {stack}")


def parse_outputs(text: str, source: str) -> Outputs:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OutputsError(f"{source}: not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise OutputsError(f"{source}: expected a JSON object of outputs")
    return data


def load_outputs(stack: str | None, outputs_file: Path | None) -> Outputs:
    if outputs_file is not None:
        try:
            text = outputs_file.read_text()
        except OSError as exc:
            raise OutputsError(f"cannot read {outputs_file}: {exc.strerror}") from exc
        return parse_outputs(text, source=str(outputs_file))
    if stack is None:
        raise OutputsError("give --stack STACK, --outputs FILE or --url URL")
    return pulumi_outputs(stack)


def run_url_command(command: str, timeout: float = 30.0) -> str:
    """Run an output's `...Command` (e.g. `echo "http://$(minikube ip):30001/..."`)."""
    try:
        proc = subprocess.run(
            command,
            shell=True,  # the command is a stack output meant for a shell, written by us
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=os.environ.copy(),
        )
    except subprocess.TimeoutExpired as exc:
        raise OutputsError(f"`{command}` did not finish within {timeout:.0f} s") from exc
    url = proc.stdout.strip().splitlines()[-1].strip() if proc.stdout.strip() else ""
    if proc.returncode != 0 or not url.startswith(("http://", "https://")):
        raise OutputsError(
            f"`{command}` did not print a URL (exit {proc.returncode}): "
            f"{(proc.stderr or proc.stdout).strip() or 'no output'}"
        )
    return url


def resolve_url(outputs: Outputs, key: str, required: bool = True) -> str | None:
    """`key` (e.g. predictUrl) or the URL printed by `keyCommand`; None if neither and optional."""
    url = outputs.get(key)
    if isinstance(url, str) and url:
        return url
    command = outputs.get(out.command(key))
    if isinstance(command, str) and command:
        return run_url_command(command)
    if required:
        raise OutputsError(
            f"the stack outputs have neither {key} nor {out.command(key)} "
            f"(outputs present: {', '.join(sorted(outputs)) or 'none'})"
        )
    return None
