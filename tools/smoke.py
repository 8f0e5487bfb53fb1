"""Smoke test a deployed stack: does predict answer, and answer right?

    python -m tools.smoke --stack dev               # outputs from `pulumi stack output`
    python -m tools.smoke --outputs outputs.json    # outputs from a file
    python -m tools.smoke --url http://HOST:8501/v1/models/half_plus_two:predict
    python -m tools.smoke --stack dev --port-forward  # through `kubectl port-forward`

Posts {"instances": [1.0, 2.0, 5.0]} and expects half_plus_two's [2.5, 3.0, 4.5]. When the stack
exports a gateway (`gatewayUrl` / `gatewayUrlCommand`, or --gateway-url), posts an image to its
/predict and expects predictions back. A fresh endpoint is often not there yet (pods loading the
model, a new load balancer not yet in DNS): those cases are retried until --timeout, with a line
saying what is being waited for. What no wait can fix fails at once, with the likely cause: a URL
command printing a URL without host or port (cluster stopped, wrong kube context), outputs of the
offline render (mock values), a port-forward that exits. Exit 0 when everything answered right, 1
otherwise.

--port-forward reaches the Services through the stack's `...PortForwardCommand` outputs instead
of their node ports, which the host cannot route to with minikube's Docker driver on macOS and
Windows. The forwards run only while the checks do.
"""

import argparse
import json
import math
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import outputs as out
from config.paths import PROJECT_ROOT
from tools.stack_outputs import Outputs, OutputsError, likely_cause, load_outputs, resolve_url

INSTANCES = [1.0, 2.0, 5.0]
EXPECTED = [2.5, 3.0, 4.5]  # half_plus_two: y = 0.5 x + 2
RETRY_STATUSES = {502, 503, 504}  # a load balancer or ingress without a ready backend yet
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


class NotReadyError(Exception):
    """Not reachable or not ready yet: worth another try."""


class SmokeError(Exception):
    """A definite answer that is wrong: no point retrying."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise SmokeError(f"answer is not JSON: {self.body[:200]!r}") from exc


def post(url: str, body: bytes, content_type: str, timeout: float) -> Response:
    """POST once; raise NotReadyError for 'not there yet', SmokeError for a definite error."""
    host = urlsplit(url).netloc
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return Response(resp.status, resp.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode("utf-8", "replace").strip()
        if exc.code in RETRY_STATUSES:
            raise NotReadyError(
                f"HTTP {exc.code} from {host}: no ready backend yet ({detail})"
            ) from exc
        raise SmokeError(f"HTTP {exc.code} from {url}: {detail}") from exc
    except urllib.error.URLError as exc:
        raise NotReadyError(describe_network_error(exc.reason, host)) from exc
    except (TimeoutError, ConnectionError) as exc:  # raised while reading the body
        raise NotReadyError(describe_network_error(exc, host)) from exc


def describe_network_error(reason: object, host: str) -> str:
    if isinstance(reason, socket.gaierror):
        if ".elb." in host and host.partition(":")[0].endswith(".amazonaws.com"):
            return (
                f"{host}: the name does not resolve yet (a new AWS load balancer takes a few "
                "minutes to appear in DNS)"
            )
        return f"{host}: the name does not resolve ({reason})"
    if isinstance(reason, ConnectionRefusedError):
        return f"{host}: connection refused (nothing listens yet: pods starting, model loading?)"
    if isinstance(reason, TimeoutError | socket.timeout):
        return f"{host}: no answer in time (firewall, source ranges, or the server is busy)"
    return f"{host}: {reason}"


def retry(
    attempt: Callable[[], str],
    timeout: float,
    interval: float,
    log: Callable[[str], None],
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Call `attempt` until it returns, raises SmokeError, or `timeout` seconds have gone by."""
    deadline = clock() + timeout
    tries = 0
    while True:
        tries += 1
        try:
            return attempt()
        except NotReadyError as exc:
            left = deadline - clock()
            if left <= 0:
                raise SmokeError(
                    f"still not reachable after {timeout:.0f} s ({tries} tries): {exc}"
                ) from exc
            log(f"  waiting: {exc}; retrying ({left:.0f} s left)")
            sleep(min(interval, left))


def flatten(values: Any) -> list[float]:
    """TF Serving answers [y, ...] or [[y], ...] depending on the output shape."""
    out: list[float] = []
    for v in values:
        if isinstance(v, list):
            out.extend(flatten(v))
        elif isinstance(v, int | float) and not isinstance(v, bool):
            out.append(float(v))
        else:
            raise SmokeError(f"prediction {v!r} is not a number")
    return out


def check_predict(url: str, request_timeout: float) -> str:
    body = json.dumps({"instances": INSTANCES}).encode()
    started = time.monotonic()
    answer = post(url, body, "application/json", request_timeout).json()
    predictions = answer.get("predictions") if isinstance(answer, dict) else None
    if not isinstance(predictions, list):
        raise SmokeError(f"no 'predictions' list in the answer: {answer!r}")
    got = flatten(predictions)
    if len(got) != len(EXPECTED) or not all(
        math.isclose(g, e, rel_tol=1e-4, abs_tol=1e-4) for g, e in zip(got, EXPECTED, strict=False)
    ):
        raise SmokeError(f"predict {INSTANCES} answered {got}, expected {EXPECTED}")
    return f"predict {url} -> {got} in {time.monotonic() - started:.2f} s"


def png(width: int = 64, height: int = 64) -> bytes:
    """A small RGB gradient PNG, built with the standard library (no Pillow needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(
        b"\x00" + bytes(c for x in range(width) for c in (4 * x % 256, 4 * y % 256, 128))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def sample_image(root: Path = PROJECT_ROOT) -> tuple[bytes, str, str]:
    """(bytes, content type, description): a demo model's sample image, or a generated PNG."""
    for path in sorted(root.glob("models/*/samples/*")):
        content_type = IMAGE_TYPES.get(path.suffix.lower())
        if content_type:
            return path.read_bytes(), content_type, str(path.relative_to(root))
    return png(), "image/png", "a generated 64x64 PNG"


def check_gateway(base_url: str, request_timeout: float, root: Path = PROJECT_ROOT) -> str:
    url = base_url.rstrip("/") + out.GATEWAY_PREDICT_PATH
    image, content_type, what = sample_image(root)
    answer = post(url, image, content_type, request_timeout).json()
    predictions = answer.get("predictions") if isinstance(answer, dict) else None
    if not isinstance(predictions, dict | list) or not predictions:
        raise SmokeError(f"gateway {url} answered without predictions: {answer!r}")
    return f"gateway {url} classified {what}: {len(predictions)} predictions"


_FORWARD = re.compile(r"(\d+):(\d+)(?=\s|$)")  # LOCAL:REMOTE, as kubectl port-forward takes


@contextmanager
def port_forward(command: str, remote_port: int, ready_timeout: float = 20.0) -> Iterator[int]:
    """Run a port-forward command in the background; yield the local port for `remote_port`.

    Fails at once when the command exits before it listens (kubectl cannot reach the cluster,
    the Service does not exist): its own error, not minutes of refused connections, says why.
    """
    local = {int(r): int(lo) for lo, r in _FORWARD.findall(command)}.get(remote_port)
    if local is None:
        raise OutputsError(f"`{command}` forwards no local port to {remote_port}")
    with tempfile.TemporaryFile("w+") as errors:
        # Its own process group, so the shell and kubectl under it stop together.
        proc = subprocess.Popen(
            command,
            shell=True,
            cwd=PROJECT_ROOT,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        try:
            _wait_listening(proc, local, ready_timeout, command, errors)
            yield local
        finally:
            _stop_group(proc)


def _wait_listening(
    proc: subprocess.Popen[bytes], port: int, timeout: float, command: str, errors: IO[str]
) -> None:
    """Until 127.0.0.1:`port` accepts, or the command has exited (an error), or `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            errors.seek(0)
            said = " | ".join(line.strip() for line in errors.read().splitlines() if line.strip())
            raise OutputsError(
                f"`{command}` exited (code {code}) before forwarding: {said or 'no output'}"
                f"{likely_cause(None, command)}"
            )
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)


def _stop_group(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """Stop a process group: SIGTERM, then SIGKILL whatever is still there after `grace`."""
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=grace)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)  # anyone left in the group (kubectl under the shell)?
        except ProcessLookupError:
            return
        time.sleep(0.02)
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def forwarded_targets(outputs: Outputs, stack: ExitStack) -> tuple[str | None, str | None]:
    """(predict URL, gateway URL) on localhost, for what the stack exposes publicly."""
    predict_url = gateway_url = None
    if out.PREDICT_URL in outputs or out.command(out.PREDICT_URL) in outputs:
        forward = str(outputs[out.PORT_FORWARD_COMMAND])
        port = stack.enter_context(port_forward(forward, out.REST_PORT))
        predict_url = f"http://127.0.0.1:{port}{out.predict_path(str(outputs[out.MODEL_NAME]))}"
    if out.GATEWAY_URL in outputs or out.command(out.GATEWAY_URL) in outputs:
        forward = str(outputs[out.GATEWAY_PORT_FORWARD_COMMAND])
        port = stack.enter_context(port_forward(forward, out.GATEWAY_SERVICE_PORT))
        gateway_url = f"http://127.0.0.1:{port}"
    if predict_url is None and gateway_url is None:
        raise OutputsError("the stack exposes neither predict nor a gateway to forward to")
    return predict_url, gateway_url


def targets(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """(predict URL, gateway URL) from --url / --gateway-url or the stack outputs."""
    if args.url:
        return args.url, args.gateway_url
    outputs = load_outputs(args.stack, args.outputs)
    gateway_url = args.gateway_url or resolve_url(outputs, out.GATEWAY_URL, required=False)
    # With the gateway on, the model server may be private (ClusterIP): predict is then optional.
    predict_url = resolve_url(outputs, out.PREDICT_URL, required=gateway_url is None)
    return predict_url, gateway_url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--stack", help="read outputs with `pulumi stack output -s STACK`")
    source.add_argument("--outputs", type=Path, help="read outputs from this JSON file")
    source.add_argument("--url", help="the REST predict URL to check (no outputs needed)")
    parser.add_argument("--gateway-url", help="the gateway's base URL (POST <url>/predict)")
    parser.add_argument(
        "--port-forward",
        action="store_true",
        help="reach the Services through `kubectl port-forward` (node ports not routable)",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="total wait, seconds")
    parser.add_argument("--interval", type=float, default=5.0, help="between tries, seconds")
    parser.add_argument("--request-timeout", type=float, default=10.0, help="per request")
    args = parser.parse_args(argv)

    def log(line: str) -> None:
        print(line, flush=True)

    try:
        with ExitStack() as forwards:
            if args.port_forward:
                outputs = load_outputs(args.stack, args.outputs)
                predict_url, gateway_url = forwarded_targets(outputs, forwards)
            else:
                predict_url, gateway_url = targets(args)
            run_checks(predict_url, gateway_url, args, log)
    except (OutputsError, SmokeError) as exc:
        print(f"smoke: FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


def run_checks(
    predict_url: str | None,
    gateway_url: str | None,
    args: argparse.Namespace,
    log: Callable[[str], None],
) -> None:
    checks: list[tuple[str, Callable[[], str]]] = []
    if predict_url:
        checks.append(("predict", partial(check_predict, predict_url, args.request_timeout)))
    if gateway_url:
        checks.append(("gateway", partial(check_gateway, gateway_url, args.request_timeout)))
    for name, check in checks:
        log(f"smoke: checking {name} ...")
        log(f"smoke: OK {retry(check, args.timeout, args.interval, log)}")


if __name__ == "__main__":
    sys.exit(main())
