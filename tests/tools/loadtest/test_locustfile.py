"""The Locust load test, run headless for a few seconds against a loopback fake TF Serving.

Locust monkey-patches the standard library with gevent, so it only ever runs in subprocesses
here; the three runs go concurrently to keep the suite fast.
"""

import csv
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from config.paths import PROJECT_ROOT
from tests.fake_serving import Behaviour, FakeServer, serving
from tools.loadtest import run
from tools.loadtest.steps import Step, boundaries, parse_duration, parse_steps, step_at


@dataclass
class Run:
    returncode: int
    output: str
    stats: dict[str, dict[str, str]]  # request name -> row of <prefix>_stats.csv
    history: list[dict[str, str]]  # rows of <prefix>_stats_history.csv


def start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cmd,
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(proc: subprocess.Popen[str], prefix: Path) -> Run:
    output, _ = proc.communicate(timeout=60)
    with open(f"{prefix}_stats.csv") as f:
        stats = {row["Name"]: row for row in csv.DictReader(f)}
    with open(f"{prefix}_stats_history.csv") as f:
        history = list(csv.DictReader(f))
    return Run(proc.returncode, output, stats, history)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Run]]:
    tmp = tmp_path_factory.mktemp("locust")
    locust = [sys.executable, "-m", "locust", "-f", "tools/loadtest/locustfile.py", "--headless"]
    with serving() as good, serving(Behaviour(wrong=True)) as wrong:
        procs = {
            # Through the runner (`make loadtest`), with a two-step shape: 2 then 4 users.
            "predict": start(
                [
                    *(sys.executable, "-m", "tools.loadtest.run", "--url", good.predict_url),
                    *("-t", "10s", "--steps", "2:1s,4:1.5s", "--spawn-rate", "20"),
                    *("--csv", str(tmp / "predict")),
                ],
                {},
            ),
            "both": start(
                [*locust, "-t", "5s", "--csv", str(tmp / "both")],
                both_env(good),
            ),
            "wrong": start(
                [*locust, "-t", "5s", "--csv", str(tmp / "wrong")],
                {"LOADTEST_STEPS": "2:1.5s", "LOADTEST_PREDICT_URL": wrong.predict_url},
            ),
        }
        yield {name: finish(proc, tmp / name) for name, proc in procs.items()}


def both_env(server: FakeServer) -> dict[str, str]:
    return {
        "LOADTEST_USER": "both",
        "LOADTEST_STEPS": "4:2s",
        "LOADTEST_PREDICT_URL": server.predict_url,
        "LOADTEST_GATEWAY_URL": server.base_url,
    }


def test_predict_requests_succeed(runs: dict[str, Run]) -> None:
    result = runs["predict"]
    assert result.returncode == 0, result.output
    total = result.stats["Aggregated"]
    assert int(total["Request Count"]) > 0
    assert int(total["Failure Count"]) == 0
    assert "predict" in result.stats
    assert "Aggregated" in result.output  # the summary is printed


def test_the_step_shape_ramps_and_stops(runs: dict[str, Run]) -> None:
    result = runs["predict"]
    users = [int(row["User Count"]) for row in result.history]
    assert 2 in users and max(users) == 4
    assert users.index(2) < users.index(4)
    assert "Shape test completed" in result.output  # the shape ended it, not -t 10s


def test_both_user_classes_run_against_their_own_targets(runs: dict[str, Run]) -> None:
    result = runs["both"]
    assert result.returncode == 0, result.output
    for name in ("predict", "gateway /predict"):
        assert int(result.stats[name]["Request Count"]) > 0
        assert int(result.stats[name]["Failure Count"]) == 0


def test_wrong_answers_count_as_failures(runs: dict[str, Run]) -> None:
    result = runs["wrong"]
    assert result.returncode == 1
    total = result.stats["Aggregated"]
    assert int(total["Failure Count"]) == int(total["Request Count"]) > 0
    assert "wrong answer" in result.output


def test_steps_parsing() -> None:
    steps = parse_steps("5:30s, 20:1m,0:1m30s")
    assert steps == [Step(5, 30), Step(20, 60), Step(0, 90)]
    assert step_at(steps, 0) == (0, Step(5, 30))
    assert step_at(steps, 30) == (1, Step(20, 60))
    assert step_at(steps, 179.9) == (2, Step(0, 90))
    assert step_at(steps, 180) is None
    assert boundaries(steps)[1] == (30, 90, Step(20, 60))
    assert parse_duration("90") == 90


@pytest.mark.parametrize("text", ["", "5", "x:30s", "5:abc", "5:0s"])
def test_bad_steps_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match=r"step|duration"):
        parse_steps(text)


def test_runner_splits_the_run_time_into_three_steps() -> None:
    assert run.default_steps("90s") == "5:30s,20:30s,50:30s"
    assert sum(s.seconds for s in parse_steps(run.default_steps("1m"))) == 60


def test_runner_resolves_targets_from_outputs() -> None:
    outputs: dict[str, object] = {
        "modelName": "half_plus_two",
        "predictUrlCommand": "echo http://10.0.0.1:30001/v1/models/half_plus_two:predict",
        "gatewayUrl": "http://gw:9696",
    }
    assert run.target_env("both", None, None, outputs) == {
        "LOADTEST_USER": "both",
        "LOADTEST_PREDICT_URL": "http://10.0.0.1:30001/v1/models/half_plus_two:predict",
        "LOADTEST_MODEL": "half_plus_two",
        "LOADTEST_GATEWAY_URL": "http://gw:9696",
    }


def test_runner_says_what_is_missing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    outputs = tmp_path / "o.json"
    outputs.write_text('{"predictUrl": "http://x:8501/v1/models/m:predict"}')
    assert run.main(["--outputs", str(outputs), "--user", "gateway"]) == 2
    assert "neither gatewayUrl nor gatewayUrlCommand" in capsys.readouterr().err
    assert run.main(["--url", "http://x", "--steps", "5"]) == 2
    assert "bad step '5'" in capsys.readouterr().err
