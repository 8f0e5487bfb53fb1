"""tools/validate (`make validate`): strict schemas and CRDs, offline, with exit codes that say."""

import copy
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROJECT_ROOT, dev_config, merged, write_stack
from tools import validate
from tools.render import render_stack
from tools.stack_outputs import MOCK_KEY

AUTO_STACK = PROJECT_ROOT / "tests" / "fixtures" / "stacks" / "Pulumi.eks-auto.yaml"


@pytest.fixture(scope="module")
def dev_objects() -> list[dict[str, Any]]:
    return render_stack(PROJECT_ROOT / "Pulumi.dev.yaml").kubernetes_objects


@pytest.mark.parametrize("stack", ["dev", "kind", "eks"])
def test_committed_stacks_validate_offline(
    stack: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("tools.validate must not open a connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    assert validate.main(["--stack", stack]) == 0
    out = capsys.readouterr().out
    assert f"validate: stack {stack}:" in out and "Kubernetes 1.30-1.36" in out
    assert "kubectl apply --dry-run=server" in out  # says what it does not cover


def test_an_unknown_field_is_an_error_naming_object_version_and_path(dev_objects) -> None:
    deployment = copy.deepcopy(next(o for o in dev_objects if o["kind"] == "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["resource"] = {}  # typo
    (problem,) = validate.object_problems(deployment, ["1.35"])
    name = deployment["metadata"]["name"]
    assert problem.startswith(f"Deployment tfserving/{name} (Kubernetes 1.35): ")
    assert "spec.template.spec.containers.0" in problem and "'resource' was unexpected" in problem


def test_each_version_is_checked(dev_objects) -> None:
    hpa = copy.deepcopy(next(o for o in dev_objects if o["kind"] == "HorizontalPodAutoscaler"))
    hpa["spec"]["bogus"] = 1
    problems = validate.object_problems(hpa, ["1.30", "1.36"])
    assert [p.split("(Kubernetes ")[1][:4] for p in problems] == ["1.30", "1.36"]


def test_an_api_without_a_schema_is_reported() -> None:
    old = {"apiVersion": "policy/v1beta1", "kind": "PodSecurityPolicy", "metadata": {"name": "x"}}
    (problem,) = validate.object_problems(old, ["1.30"])
    assert "no schema for policy/v1beta1 PodSecurityPolicy in Kubernetes 1.30" in problem


def test_custom_resources_are_checked_against_their_crd_closed() -> None:
    objects = render_stack(AUTO_STACK).kubernetes_objects
    (pool,) = [o for o in objects if o["kind"] == "NodePool"]
    assert validate.problems([pool]) == []
    bad = copy.deepcopy(pool)
    bad["spec"]["template"]["spec"]["nodeClasRef"] = {}  # unknown to the CRD
    (problem,) = validate.problems([bad])
    assert "(CRD karpenter.sh/v1)" in problem and "'nodeClasRef' was unexpected" in problem
    assert validate.summary(objects).custom == 1


def test_cli_writes_the_render_when_asked(tmp_path: Path, capsys) -> None:
    assert validate.main(["--stack", "kind", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "kubernetes.yaml",
        "outputs.json",
        "resources.json",
    ]
    assert MOCK_KEY in json.loads((tmp_path / "outputs.json").read_text())
    assert f"(render in {tmp_path})" in capsys.readouterr().out


def test_invalid_objects_exit_1_and_list_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = validate.object_problems

    def one_bad(obj: dict[str, Any], versions: Any = validate.KUBERNETES_VERSIONS) -> list[str]:
        if obj["kind"] == "Service":
            obj = {**obj, "spec": {**obj["spec"], "bogus": True}}
        return real(obj, versions)

    monkeypatch.setattr(validate, "object_problems", one_bad)
    assert validate.main(["--stack", "dev", "--versions", "1.33,1.34"]) == 1
    err = capsys.readouterr().err
    assert "validate: stack dev: 4 problems:" in err  # 2 Services x 2 versions
    assert err.count("'bogus' was unexpected") == 4


def test_bad_config_exits_2_and_an_unknown_version_is_refused(tmp_path: Path, capsys) -> None:
    stack = write_stack(
        tmp_path, merged(dev_config(), {"tfserving:autoscaling": {"minReplicas": 0}})
    )
    assert validate.main(["--stack-file", str(stack)]) == 2
    assert "tfserving:autoscaling.minReplicas must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        validate.main(["--stack", "dev", "--versions", "1.99"])
    assert exit_.value.code == 2
    assert "1.99 is not among kubernetes-validate's schemas" in capsys.readouterr().err
