"""tools/smoke.py against loopback servers: right, wrong, late and absent endpoints."""

import json
import socket
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from config.paths import PROJECT_ROOT
from tests.fake_serving import Behaviour, closed_port, serving
from tools import smoke

FAST = ["--timeout", "1", "--interval", "0.05", "--request-timeout", "2"]


def write_outputs(tmp_path: Path, **outputs: str) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"modelName": "half_plus_two", "namespace": "tfserving", **outputs}))
    return path


def test_right_answer_passes(capsys: pytest.CaptureFixture[str]) -> None:
    with serving() as server:
        assert smoke.main(["--url", server.predict_url, *FAST]) == 0
        body = json.loads(server.behaviour.seen[0]["body"])
    assert body == {"instances": [1.0, 2.0, 5.0]}
    assert "smoke: OK predict" in capsys.readouterr().out


def test_wrong_answer_fails_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    with serving(Behaviour(wrong=True)) as server:
        assert smoke.main(["--url", server.predict_url, *FAST]) == 1
        assert len(server.behaviour.seen) == 1  # a wrong answer is not retried
    err = capsys.readouterr().err
    assert "answered [2.0, 3.0, 6.0], expected [2.5, 3.0, 4.5]" in err


def test_unknown_model_is_a_clear_failure(capsys: pytest.CaptureFixture[str]) -> None:
    with serving(Behaviour(model="other")) as server:
        url = server.predict_url.replace("other", "half_plus_two")
        assert smoke.main(["--url", url, *FAST]) == 1
    assert "HTTP 404" in capsys.readouterr().err


def test_not_reachable_gives_up_within_the_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1/models/half_plus_two:predict"
    assert smoke.main(["--url", url, "--timeout", "0.3", "--interval", "0.05"]) == 1
    captured = capsys.readouterr()
    assert "still not reachable after 0 s" in captured.err
    assert "connection refused" in captured.err
    assert "waiting:" in captured.out  # it said what it was waiting for while retrying


def test_a_load_balancer_without_backends_yet_is_waited_for(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with serving(Behaviour(unavailable_first=2)) as server:
        assert smoke.main(["--url", server.predict_url, *FAST]) == 0
        assert len(server.behaviour.seen) == 3
    assert capsys.readouterr().out.count("HTTP 503") == 2


def test_url_from_a_command_output(tmp_path: Path) -> None:
    with serving() as server:
        command = f'echo "{server.base_url}/v1/models/half_plus_two:predict"'
        outputs = write_outputs(tmp_path, predictUrlCommand=command)
        assert smoke.main(["--outputs", str(outputs), *FAST]) == 0
        assert server.behaviour.seen[0]["path"] == "/v1/models/half_plus_two:predict"


def test_a_failing_url_command_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = write_outputs(tmp_path, predictUrlCommand="echo 'minikube: not running' >&2; exit 3")
    assert smoke.main(["--outputs", str(outputs), *FAST]) == 1
    assert "did not print a URL (exit 3): minikube: not running" in capsys.readouterr().err


def test_outputs_without_an_endpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert smoke.main(["--outputs", str(write_outputs(tmp_path)), *FAST]) == 1
    err = capsys.readouterr().err
    assert "neither predictUrl nor predictUrlCommand" in err
    assert "modelName, namespace" in err


def test_gateway_is_checked_when_exported(tmp_path: Path) -> None:
    with serving() as server:
        outputs = write_outputs(
            tmp_path, predictUrl=server.predict_url, gatewayUrlCommand=f"echo {server.base_url}"
        )
        assert smoke.main(["--outputs", str(outputs), *FAST]) == 0
        paths = [r["path"] for r in server.behaviour.seen]
        image = server.behaviour.seen[-1]
    assert paths == ["/v1/models/half_plus_two:predict", "/predict"]
    assert image["content_type"].startswith("image/")
    assert image["body"][:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xe1")


def test_gateway_only_stack_needs_no_predict_url(tmp_path: Path) -> None:
    with serving() as server:
        outputs = write_outputs(tmp_path, gatewayUrl=server.base_url)
        assert smoke.main(["--outputs", str(outputs), *FAST]) == 0
        assert [r["path"] for r in server.behaviour.seen] == ["/predict"]


def test_generated_png_is_a_valid_image(tmp_path: Path) -> None:
    data, content_type, what = smoke.sample_image(tmp_path)  # no samples there
    assert (content_type, what) == ("image/png", "a generated 64x64 PNG")
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert data[12:16] == b"IHDR" and int.from_bytes(data[16:20], "big") == 64
    idat_len = int.from_bytes(data[33:37], "big")
    pixels = zlib.decompress(data[41 : 41 + idat_len])
    assert len(pixels) == 64 * (1 + 64 * 3)  # one filter byte + RGB per row


def test_sample_images_of_a_demo_model_are_preferred(tmp_path: Path) -> None:
    samples = tmp_path / "models" / "clothes" / "samples"
    samples.mkdir(parents=True)
    (samples / "shirt.jpg").write_bytes(b"\xff\xd8\xff\xe0jpeg")
    assert smoke.sample_image(tmp_path) == (
        b"\xff\xd8\xff\xe0jpeg",
        "image/jpeg",
        "models/clothes/samples/shirt.jpg",
    )


def test_dns_failures_are_explained() -> None:
    error = socket.gaierror(-2, "Name or service not known")
    nlb = "tfserving-server-0123.elb.us-east-1.amazonaws.com:8501"
    message = smoke.describe_network_error(error, nlb)
    assert "does not resolve yet" in message and "load balancer" in message
    # Only an AWS load balancer's name is worth the "new NLB" explanation.
    other = smoke.describe_network_error(error, "model.internal:8501")
    assert "load balancer" not in other and "does not resolve" in other


def test_retry_stops_at_the_deadline_without_real_waiting() -> None:
    now = [0.0]
    calls: list[float] = []

    def attempt() -> str:
        calls.append(now[0])
        raise smoke.NotReadyError("refused")

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(smoke.SmokeError, match=r"after 10 s \(5 tries\): refused"):
        smoke.retry(attempt, 10, 3, lambda _: None, clock=lambda: now[0], sleep=sleep)
    assert calls == [0.0, 3.0, 6.0, 9.0, 10.0]


def test_runs_as_a_script() -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1/models/half_plus_two:predict"
    proc = subprocess.run(
        [sys.executable, "-m", "tools.smoke", "--url", url, "--timeout", "0"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 1
    assert "smoke: FAILED: still not reachable" in proc.stderr


def test_port_forward_mode_checks_through_the_forward_and_stops_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = closed_port()
    # Stands in for `kubectl port-forward svc/... 8500:8500 <local>:8501`: a server on <local>.
    forward = f"{sys.executable} -m tests.fake_serving {local} # 8500:8500 {local}:8501"
    outputs = write_outputs(
        tmp_path, predictUrlCommand="echo http://unroutable.invalid", portForwardCommand=forward
    )
    args = ["--outputs", str(outputs), "--port-forward", "--timeout", "10", "--interval", "0.1"]
    assert smoke.main(args) == 0
    assert f"predict http://127.0.0.1:{local}/v1/models/half_plus_two:predict" in (
        capsys.readouterr().out
    )
    with socket.socket() as probe:  # the forward is gone once the checks are done
        assert probe.connect_ex(("127.0.0.1", local)) != 0


def test_port_forward_mode_skips_what_the_stack_does_not_expose(tmp_path: Path) -> None:
    outputs = write_outputs(tmp_path, portForwardCommand="true 8501:8501")
    assert smoke.main(["--outputs", str(outputs), "--port-forward", *FAST]) == 1


def test_port_forward_command_without_the_port_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = write_outputs(
        tmp_path, predictUrlCommand="echo x", portForwardCommand="kubectl port-forward svc/x 80:80"
    )
    assert smoke.main(["--outputs", str(outputs), "--port-forward", *FAST]) == 1
    assert "forwards no local port to 8501" in capsys.readouterr().err


# --- what no wait can fix fails at once, saying the likely cause --------------------------------

MINIKUBE_STOPPED = (
    # What predictUrlCommand does when minikube is stopped: both substitutions print nothing.
    """echo "http://$(echo '* The control-plane node minikube host is not running' >&2):"""
    """$(echo 'The connection to the server was refused' >&2)/v1/models/half_plus_two:predict\""""
)


@pytest.mark.parametrize(
    ("target", "command", "cause"),
    [
        ("minikube", MINIKUBE_STOPPED.replace("echo '*", "echo 'minikube -p minikube ip: *"),
         "minikube is not running"),
        ("kind", 'echo "http://127.0.0.1:$(kubectl --context kind-demo get svc x 2>/dev/null)/v1"',
         "kind cluster 'demo' is not running"),
        ("eks", 'echo "http://:8501/v1"', "kubectl is not pointed at the stack's cluster"),
    ],
    ids=["minikube", "kind", "eks"],
)  # fmt: skip
def test_a_url_without_host_or_port_fails_at_once_with_the_likely_cause(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str, command: str, cause: str
) -> None:
    outputs = write_outputs(tmp_path, predictUrlCommand=command, target=target)
    # A long timeout: were it retried, the test would hang instead of failing at once.
    assert smoke.main(["--outputs", str(outputs), "--timeout", "300", "--interval", "5"]) == 1
    captured = capsys.readouterr()
    assert "which has no" in captured.err and cause in captured.err
    assert "waiting" not in captured.out


def test_minikube_stopped_says_what_minikube_and_kubectl_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = write_outputs(tmp_path, predictUrlCommand=MINIKUBE_STOPPED, target="minikube")
    assert smoke.main(["--outputs", str(outputs), *FAST]) == 1
    err = capsys.readouterr().err
    assert "'http://:/v1/models/half_plus_two:predict', which has no host and no port" in err
    assert "host is not running | The connection to the server was refused" in err
    assert "minikube is not running (`minikube -p minikube status`" in err
    assert "load balancer" not in err


def test_outputs_of_the_offline_render_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tools.render import __main__ as render  # noqa: PLC0415 - only this test renders

    assert render.main(["--stack", "eks", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    assert smoke.main(["--outputs", str(tmp_path / "outputs.json"), *FAST]) == 1
    err = capsys.readouterr().err
    assert "written by the offline render" in err and "mock values" in err


def test_a_port_forward_that_exits_fails_at_once_with_its_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    forward = (
        "echo 'error: context \"kind-tfserving\" does not exist' >&2; exit 1; "
        "kubectl --context kind-tfserving port-forward svc/x 8501:8501"
    )
    outputs = write_outputs(
        tmp_path, predictUrlCommand="echo http://unused", portForwardCommand=forward
    )
    args = ["--outputs", str(outputs), "--port-forward", "--timeout", "300"]
    assert smoke.main(args) == 1
    err = capsys.readouterr().err
    assert "exited (code 1) before forwarding" in err
    assert 'context "kind-tfserving" does not exist' in err and "kind cluster" in err
