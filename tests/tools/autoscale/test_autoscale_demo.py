"""tools/autoscale: kubectl JSON parsing, sampling, CSV and the PNG timeline."""

import json
import os
import stat
import struct
from pathlib import Path
from typing import Any

import pytest

from tests.fake_serving import serving
from tools.autoscale import __main__ as demo
from tools.autoscale import plot as pictures
from tools.autoscale import samples as sampling
from tools.loadtest.steps import parse_steps

DATA = Path(__file__).parent / "data"
CSV = DATA / "autoscale-dev.csv"


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


def test_csv_fixture_reads_back() -> None:
    samples = sampling.read_csv(CSV)
    assert len(samples) == 145
    assert [s.elapsed_s for s in samples[:3]] == [0.0, 5.0, 10.0]
    assert {s.phase for s in samples} == {0, 1, 2, 3, -1}
    assert max(s.current_replicas for s in samples) == 3 == samples[0].max_replicas
    assert samples[0].cpu_percent == 7 and samples[0].target_cpu_percent == 20


def test_csv_round_trip_keeps_unknown_cpu(tmp_path: Path) -> None:
    steps = parse_steps("2:10s")
    samples = [
        sampling.make_sample(0, steps, sampling.parse_hpa(fixture("hpa-no-metrics.json")), (1, 0)),
        sampling.make_sample(12.34, steps, sampling.parse_hpa(fixture("hpa.json")), (4, 2)),
    ]
    sampling.write_csv(samples, tmp_path / "run.csv")
    assert sampling.read_csv(tmp_path / "run.csv") == [
        samples[0],
        sampling.Sample(12.3, -1, 0, 2, 3, 27, 20, 3, 4, 2),
    ]
    assert samples[0].cpu_percent is None and samples[0].users == 2


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


def test_png_from_the_recorded_csv(tmp_path: Path) -> None:
    png = tmp_path / "out" / "autoscale.png"
    pictures.plot(sampling.read_csv(CSV), png, "dev")
    width, height = png_size(png)
    assert (width, height) == (1210, 715)  # 11 x 6.5 in at 110 dpi
    assert png.stat().st_size > 20_000  # two panels of lines and shading, not an empty canvas


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

    def read(self) -> tuple[sampling.HpaStatus, tuple[int, int]]:
        self.reads += 1
        hpa = sampling.parse_hpa(fixture("hpa.json"))
        return hpa, (self.reads, self.reads)


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
    assert source.reads == 5


def test_progress_line() -> None:
    sample = sampling.make_sample(
        95, parse_steps("2:60s,10:60s"), sampling.parse_hpa(fixture("hpa.json")), (3, 2)
    )
    assert sampling.progress_line(sample, 2) == (
        "[    95s] step 2/2  10 users | replicas 2 -> 3 | cpu   27% (target 20%) | pods 3 (2 ready)"
    )


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
        hpa, pods = source.read()
    assert (hpa.current_replicas, pods) == (2, (4, 2))
    selector = sampling.label_selector(fixture("deployment.json"))
    base = "--context minikube -n tfserving get"
    assert log.read_text().splitlines() == [
        f"{base} hpa tfserving-server-469322fa -o json",
        f"{base} deployment tfserving-server-3c786a9c -o json",
        f"{base} pods -l {selector} -o json",
        f"{base} hpa tfserving-server-469322fa -o json",  # the selector is asked for once
        f"{base} pods -l {selector} -o json",
    ]


def test_kubectl_errors_are_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "kubectl"
    fake.write_text(
        "#!/bin/sh\necho 'Error from server (NotFound): hpa \"x\" not found' >&2\nexit 1\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    with pytest.raises(sampling.OutputsError, match="NotFound"):
        sampling.Kubectl("tfserving", "x", context=None).read()


def test_the_demo_needs_the_hpa_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text('{"namespace": "tfserving"}')
    assert demo.main(["--outputs", str(outputs)]) == 1
    assert "no hpaName" in capsys.readouterr().err


def test_stack_context_comes_from_the_stack_file() -> None:
    assert demo.stack_context("dev") == "minikube"
    assert demo.stack_context("no-such-stack") is None


def test_the_whole_demo_against_a_fake_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Real Locust (subprocess) against a loopback TF Serving, kubectl answering captured JSON.
    fake_kubectl(tmp_path, tmp_path / "calls", monkeypatch)
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
    assert 4 <= len(samples) <= 6
    assert {(s.users, s.current_replicas, s.cpu_percent) for s in samples[:-1]} == {(3, 2, 27)}
    assert png_size(out / "autoscale.png") == (1210, 715)
    assert requests > 0  # Locust really drove load while the demo sampled
    assert "replicas 2 -> 3" in capsys.readouterr().out
