"""tools/autoscale: kubectl JSON parsing, sampling, CSV and the PNG timeline."""

import dataclasses
import json
import os
import stat
import struct
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fake_serving import serving
from tools.autoscale import __main__ as demo
from tools.autoscale import plot as pictures
from tools.autoscale import samples as sampling
from tools.loadtest.steps import parse_steps

DATA = Path(__file__).parent / "data"
CSV = DATA / "autoscale-dev.csv"  # recorded before nodes were counted: an old CSV
SHIPPED_CSV = Path(__file__).parents[3] / "docs" / "autoscale-demo.csv"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / name).read_text())
    return data


def test_parse_hpa_reads_replicas_utilisation_and_target() -> None:
    assert sampling.parse_hpa(fixture("hpa.json")) == sampling.HpaStatus(
        current_replicas=2,
        desired_replicas=3,
        cpu_percent=27,
        target_cpu_percent=20,
        min_replicas=1,
        max_replicas=3,
        target_kind="Deployment",
        target_name="tfserving-server-3c786a9c",
    )


def test_parse_hpa_before_metrics_server_has_numbers() -> None:
    status = sampling.parse_hpa(fixture("hpa-no-metrics.json"))
    assert (status.cpu_percent, status.target_cpu_percent, status.current_replicas) == (None, 20, 1)


def test_label_selector_and_pod_counts() -> None:
    assert sampling.label_selector(fixture("deployment.json")) == (
        "app.kubernetes.io/instance=tfserving,app.kubernetes.io/name=model-server,"
        "app.kubernetes.io/part-of=tfserving"
    )
    # 2 ready, 1 still starting, 1 terminating (alive, not ready), 1 finished (not counted).
    assert sampling.count_pods(fixture("pods.json")) == (4, 2)
    with pytest.raises(ValueError, match="matchLabels"):
        sampling.label_selector({"spec": {}})


def test_ready_nodes_are_counted() -> None:
    # 2 Ready; one joining (NotReady) and one cordoned for scale-in do not count.
    assert sampling.count_ready_nodes(fixture("nodes.json")) == 2
    assert sampling.count_ready_nodes({"items": []}) == 0


def test_csv_fixture_reads_back() -> None:
    samples = sampling.read_csv(CSV)
    assert {s.nodes for s in samples} == {None}  # an old CSV: no nodes column
    assert len(samples) == 145
    assert [s.elapsed_s for s in samples[:3]] == [0.0, 5.0, 10.0]
    assert {s.phase for s in samples} == {0, 1, 2, 3, -1}
    assert max(s.current_replicas for s in samples) == 3 == samples[0].max_replicas
    assert samples[0].cpu_percent == 7 and samples[0].target_cpu_percent == 20


def test_csv_round_trip_keeps_unknown_cpu_and_nodes(tmp_path: Path) -> None:
    steps = parse_steps("2:10s")
    samples = [
        sampling.make_sample(0, steps, sampling.parse_hpa(fixture("hpa-no-metrics.json")), (1, 0)),
        sampling.make_sample(12.34, steps, sampling.parse_hpa(fixture("hpa.json")), (4, 2), 3),
    ]
    sampling.write_csv(samples, tmp_path / "run.csv")
    assert (tmp_path / "run.csv").read_text().splitlines()[0].endswith(",pods,ready_pods,nodes")
    assert sampling.read_csv(tmp_path / "run.csv") == [
        samples[0],
        sampling.Sample(12.3, -1, 0, 2, 3, 27, 20, 3, 4, 2, 3),
    ]
    assert samples[0].cpu_percent is None and samples[0].nodes is None
    assert samples[0].users == 2


def test_the_shipped_csv_is_the_one_the_committed_picture_was_drawn_from() -> None:
    # docs/autoscale-demo.png was drawn from the recorded fixture; the README's plot command
    # reads the shipped copy (and writes into build/, never over the committed picture).
    assert SHIPPED_CSV.read_bytes() == CSV.read_bytes()


def test_csv_with_other_columns_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("time,replicas\n0,1\n")
    with pytest.raises(ValueError, match="expected columns"):
        sampling.read_csv(bad)


def test_phase_spans_cover_the_schedule_back_to_back() -> None:
    spans = pictures.phase_spans(sampling.read_csv(CSV))
    assert spans == [(0.0, 60.0, 2), (60.0, 180.0, 10), (180.0, 300.0, 25), (300.0, 720.0, 0)]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def test_png_from_the_recorded_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = record_steps(monkeypatch)
    png = tmp_path / "out" / "autoscale.png"
    pictures.plot(sampling.read_csv(CSV), png, "dev")
    width, height = png_size(png)
    assert (width, height) == (1210, 715)  # 11 x 6.5 in at 110 dpi
    assert png.stat().st_size > 20_000  # two panels of lines and shading, not an empty canvas
    assert "current replicas" in drawn and "nodes ready" not in drawn  # an old CSV: no nodes


def test_nodes_get_a_line_of_their_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = record_steps(monkeypatch)
    with_nodes = [
        dataclasses.replace(s, nodes=1 + s.current_replicas // 3) for s in sampling.read_csv(CSV)
    ]
    pictures.plot(with_nodes, tmp_path / "new.png", "new")
    assert drawn.count("nodes ready") == 1
    assert png_size(tmp_path / "new.png") == (1210, 715)


def record_steps(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The label of every stepped line the plot draws, in order."""
    from matplotlib.axes import Axes  # noqa: PLC0415 - matplotlib only where plots are tested

    drawn: list[str] = []
    real = Axes.step

    def step(self: Axes, *args: Any, **kwargs: Any) -> Any:
        drawn.append(str(kwargs.get("label")))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Axes, "step", step)
    return drawn


def test_plot_only_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "demo.png"
    assert demo.main(["--plot", str(CSV), "--png", str(png), "--title", "t"]) == 0
    assert png_size(png) == (1210, 715)
    assert str(png) in capsys.readouterr().out


def test_nothing_to_plot_is_an_error() -> None:
    with pytest.raises(ValueError, match="no samples"):
        pictures.plot([], Path("unused.png"), "empty")


class FakeSource:
    """Replays HPA states; counts reads."""

    def __init__(self) -> None:
        self.reads = 0

    def read(self) -> tuple[sampling.HpaStatus, tuple[int, int], int | None]:
        self.reads += 1
        hpa = sampling.parse_hpa(fixture("hpa.json"))
        return hpa, (self.reads, self.reads), 1


def test_sample_loop_keeps_a_fixed_grid_and_stops_after_the_schedule() -> None:
    now = [100.0]

    def clock() -> float:
        return now[0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    source = FakeSource()
    steps = parse_steps("3:10s,8:10s")
    samples = []
    for sample in sampling.sample_loop(source, steps, 5, 20, clock=clock, sleep=sleep):
        now[0] += 1.5  # each kubectl round trip takes time; the grid must not drift
        samples.append(sample)
    assert [s.elapsed_s for s in samples] == [0, 5, 10, 15, 20]
    assert [(s.phase, s.users) for s in samples] == [(0, 3), (0, 3), (1, 8), (1, 8), (-1, 0)]
    assert {s.nodes for s in samples} == {1}
    assert source.reads == 5


def test_progress_line() -> None:
    sample = sampling.make_sample(
        95, parse_steps("2:60s,10:60s"), sampling.parse_hpa(fixture("hpa.json")), (3, 2)
    )
    assert sampling.progress_line(sample, 2) == (
        "[    95s] step 2/2  10 users | replicas 2 -> 3 | cpu   27% (target 20%) | pods 3 (2 ready)"
    )
    with_nodes = dataclasses.replace(sample, nodes=2)
    assert sampling.progress_line(with_nodes, 2).endswith("| pods 3 (2 ready) | nodes 2")


def fake_kubectl(bin_dir: Path, log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `kubectl` on PATH that logs its arguments and answers with the captured JSON."""
    fake = bin_dir / "kubectl"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {log}\n'
        'case "$*" in\n'
        f'  *" get hpa "*) cat {DATA / "hpa.json"} ;;\n'
        f'  *" get deployment "*) cat {DATA / "deployment.json"} ;;\n'
        f'  *" get pods "*) cat {DATA / "pods.json"} ;;\n'
        f'  *" get nodes "*) cat {DATA / "nodes.json"} ;;\n'
        '  *) echo "unexpected: $*" >&2; exit 1 ;;\n'
        "esac\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


def test_kubectl_source_asks_for_the_hpa_then_the_pods_of_its_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "calls"
    fake_kubectl(tmp_path, log, monkeypatch)
    source = sampling.Kubectl("tfserving", "tfserving-server-469322fa", context="minikube")
    for _ in range(2):
        hpa, pods, nodes = source.read()
    assert (hpa.current_replicas, pods, nodes) == (2, (4, 2), 2)
    selector = sampling.label_selector(fixture("deployment.json"))
    base = "--context minikube -n tfserving get"
    assert log.read_text().splitlines() == [
        f"{base} hpa tfserving-server-469322fa -o json",
        f"{base} deployment tfserving-server-3c786a9c -o json",
        f"{base} pods -l {selector} -o json",
        f"{base} nodes -o json",
        f"{base} hpa tfserving-server-469322fa -o json",  # the selector is asked for once
        f"{base} pods -l {selector} -o json",
        f"{base} nodes -o json",
    ]


def test_kubectl_errors_are_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "kubectl"
    fake.write_text(
        "#!/bin/sh\necho 'Error from server (NotFound): hpa \"x\" not found' >&2\nexit 1\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    with pytest.raises(sampling.OutputsError, match="NotFound") as caught:
        sampling.Kubectl("tfserving", "x", context="kind-tfserving").read()
    assert "Is the cluster of kind-tfserving running" in str(caught.value)


def test_the_demo_needs_the_hpa_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text('{"namespace": "tfserving"}')
    assert demo.main(["--outputs", str(outputs)]) == 1
    assert "no hpaName" in capsys.readouterr().err


def test_stack_context_comes_from_the_stack_file() -> None:
    assert demo.stack_context("dev") == "minikube"
    assert demo.stack_context("kind") == "kind-tfserving"  # from clusterName
    assert demo.stack_context("eks") is None  # kubectl's context, from kubeconfigCommand
    assert demo.stack_context("no-such-stack") is None


def test_the_whole_demo_against_a_fake_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A stand-in for Locust (tests/tools/loadtest runs the real one) that posts once with what
    # the demo hands it, against a loopback TF Serving; kubectl answers captured JSON.
    fake_kubectl(tmp_path, tmp_path / "calls", monkeypatch)
    seen_env = tmp_path / "load-env.json"
    load = (
        "import json, os, sys, time, urllib.request\n"
        f"json.dump(dict(os.environ), open({str(seen_env)!r}, 'w'))\n"
        "body = json.dumps({'instances': [1.0]}).encode()\n"
        "urllib.request.urlopen(os.environ['LOADTEST_PREDICT_URL'], body, timeout=10).read()\n"
        "time.sleep(120)\n"
    )
    monkeypatch.setattr(demo, "locust_command", lambda *args: [sys.executable, "-c", load])
    out = tmp_path / "demo"
    with serving() as server:
        outputs = tmp_path / "outputs.json"
        outputs.write_text(
            json.dumps(
                {
                    "namespace": "tfserving",
                    "hpaName": "tfserving-server-469322fa",
                    "modelName": "half_plus_two",
                    "predictUrl": server.predict_url,
                }
            )
        )
        argv = ["--outputs", str(outputs), "--steps", "3:4s", "--interval", "1"]
        assert demo.main([*argv, "--out", str(out)]) == 0
        requests = len(server.behaviour.seen)
    samples = sampling.read_csv(out / "autoscale.csv")
    # One a second for 4 s; fewer when the machine is busy (four kubectl calls per sample).
    assert 2 <= len(samples) <= 6
    assert {(s.users, s.current_replicas, s.cpu_percent) for s in samples[:-1]} == {(3, 2, 27)}
    assert {s.nodes for s in samples} == {2}
    assert png_size(out / "autoscale.png") == (1210, 715)
    assert requests > 0  # the load generator ran while the demo sampled
    env = json.loads(seen_env.read_text())
    assert env["LOADTEST_PREDICT_URL"] == server.predict_url
    assert (env["LOADTEST_STEPS"], env["LOADTEST_USER"]) == ("3:4s", "predict")
    assert "replicas 2 -> 3" in capsys.readouterr().out


def test_a_stopped_cluster_fails_before_any_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = tmp_path / "outputs.json"
    command = (
        'echo "http://127.0.0.1:$(kubectl --context kind-tfserving -n tfserving get svc x '
        "-o jsonpath='{.spec.ports[0].nodePort}' 2>/dev/null)/v1/models/half_plus_two:predict\""
    )
    outputs.write_text(
        json.dumps(
            {
                "namespace": "tfserving",
                "hpaName": "h",
                "target": "kind",
                "predictUrlCommand": command,
            }
        )
    )
    fake = tmp_path / "bin" / "kubectl"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\necho 'The connection to the server 127.0.0.1:6443 was refused' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    assert demo.main(["--outputs", str(outputs), "--out", str(tmp_path / "demo")]) == 1
    err = capsys.readouterr().err
    assert "which has no port" in err and "kind cluster 'tfserving' is not running" in err
    assert not (tmp_path / "demo" / "locust.log").exists(), "no load was started"


def test_an_unreadable_cluster_fails_before_any_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = tmp_path / "outputs.json"
    url = "http://127.0.0.1:30001/v1/models/half_plus_two:predict"
    outputs.write_text(json.dumps({"namespace": "tfserving", "hpaName": "h", "predictUrl": url}))
    fake = tmp_path / "bin" / "kubectl"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'error: context \"minikube\" does not exist' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    args = ["--outputs", str(outputs), "--context", "minikube", "--out", str(tmp_path / "demo")]
    assert demo.main(args) == 1
    err = capsys.readouterr().err
    assert (
        'context "minikube" does not exist' in err and "Is the cluster of minikube running" in err
    )
    assert not (tmp_path / "demo" / "locust.log").exists(), "no load was started"
