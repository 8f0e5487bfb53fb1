"""Read a stack's outputs and turn them into reachable URLs (shared by smoke, loadtest, demo).

Outputs come from `pulumi stack output --json -s STACK` in real use, or from a JSON file
(`--outputs FILE`) in tests and for people without the CLI at hand. A URL output comes either as
the URL itself (`predictUrl`, on eks) or as a shell command that prints it (`predictUrlCommand`,
on minikube, where the node IP is only known to `minikube ip`).

Two things are refused at once rather than waited on: outputs written by the offline render
(`tools/render` marks them with a `_mock` key: their hosts and accounts are made up), and a URL
command that prints a URL without a host or port (`http://:/v1/...` when minikube is stopped or
kubectl talks to the wrong cluster): no retry can make such a URL work, so the error says what
is the likely cause on the stack's target.
"""

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import outputs as out
from config.paths import PROJECT_ROOT

Outputs = dict[str, Any]
# The key tools/render adds to the outputs.json it writes (a render's values are mock values).
MOCK_KEY = "_mock"


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
    if MOCK_KEY in data:
        raise OutputsError(
            f"{source} was written by the offline render ({data[MOCK_KEY]}), not by a deployed "
            "stack: nothing answers at its addresses. Use --stack STACK (pulumi stack output of "
            "the deployed stack), --outputs with `pulumi stack output --json` saved to a file, "
            "or --url"
        )
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


def run_url_command(command: str, timeout: float = 30.0, target: str | None = None) -> str:
    """Run an output's `...Command` (e.g. `echo "http://$(minikube ip):30001/..."`).

    Raises OutputsError at once when it fails or prints a URL missing its host or port.
    """
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
        raise OutputsError(
            f"`{command}` did not finish within {timeout:.0f} s{likely_cause(target, command)}"
        ) from exc
    url = proc.stdout.strip().splitlines()[-1].strip() if proc.stdout.strip() else ""
    errors = proc.stderr.strip()
    if proc.returncode != 0 or not url.startswith(("http://", "https://")):
        raise OutputsError(
            f"`{command}` did not print a URL (exit {proc.returncode}): "
            f"{(errors or proc.stdout).strip() or 'no output'}"
        )
    missing = missing_parts(url)
    if missing:
        said = f"; it said: {_last_lines(errors)}" if errors else ""
        raise OutputsError(
            f"`{command}` printed {url!r}, which has no {' and no '.join(missing)}{said}"
            f"{likely_cause(target, command)}"
        )
    return url


def missing_parts(url: str) -> list[str]:
    """What an http(s) URL lacks of host and port: `http://:/x` -> ["host", "port"]."""
    netloc = url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    host, colon, port = netloc.rpartition(":") if not netloc.endswith("]") else (netloc, "", "")
    if not colon:
        host, port = netloc, "default"
    missing = [] if host.strip("[]") else ["host"]
    if not port or (port != "default" and not port.isdigit()):
        missing.append("port")
    return missing


def _last_lines(text: str, lines: int = 3) -> str:
    return " | ".join(line.strip() for line in text.splitlines()[-lines:] if line.strip())


def likely_cause(target: str | None, command: str = "") -> str:
    """Why a URL command of a stack on `target` gives nothing usable, and what to check."""
    context = re.search(r"--context[ =](\S+)", command)
    ctx = context.group(1) if context else None
    profile = re.search(r"minikube -p (\S+) ip", command)
    if target == "minikube" or (target is None and profile):
        name = profile.group(1) if profile else "minikube"
        return (
            f". Likely cause: minikube is not running (`minikube -p {name} status`; "
            f"`make dev` starts it), or kubectl's context {ctx or name!r} is not that "
            "cluster (`kubectl config get-contexts`)"
        )
    if target == "kind" or (ctx or "").startswith("kind-"):
        cluster = (ctx or "kind-tfserving").removeprefix("kind-")
        return (
            f". Likely cause: the kind cluster {cluster!r} is not running (`kind get clusters`, "
            "`docker ps`: is Docker up?; `make dev STACK=kind` creates it), or the context "
            f"{ctx or 'kind-' + cluster!r} is missing from your kubeconfig "
            f"(`kind export kubeconfig --name {cluster}`)"
        )
    if target == "eks":
        return (
            ". Likely cause: kubectl is not pointed at the stack's cluster "
            "(`$(pulumi stack output kubeconfigCommand)`), or AWS credentials have expired"
        )
    return ". Likely cause: the cluster is not running or kubectl's context is not its"


def resolve_url(outputs: Outputs, key: str, required: bool = True) -> str | None:
    """`key` (e.g. predictUrl) or the URL printed by `keyCommand`; None if neither and optional."""
    url = outputs.get(key)
    if isinstance(url, str) and url:
        return url
    command = outputs.get(out.command(key))
    if isinstance(command, str) and command:
        target = outputs.get(out.TARGET)
        return run_url_command(command, target=target if isinstance(target, str) else None)
    if required:
        raise OutputsError(
            f"the stack outputs have neither {key} nor {out.command(key)} "
            f"(outputs present: {', '.join(sorted(outputs)) or 'none'})"
        )
    return None
