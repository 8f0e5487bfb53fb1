"""The offline render: files, their shape, strict schema validity, determinism, errors."""

import json
import os
import stat
from pathlib import Path

import pytest
import yaml

from tests.conftest import FIXTURE_STACK_FILES, STACK_FILES
from tools import validate
from tools.render import __main__ as render
from tools.render.engine import autoname, render_stack
from tools.stack_outputs import MOCK_KEY

KUBERNETES_VERSIONS = validate.KUBERNETES_VERSIONS


@pytest.fixture(
    scope="module",
    params=STACK_FILES + FIXTURE_STACK_FILES,
    ids=lambda p: p.stem.split(".", 1)[1],
)
def rendered(request):
    return render_stack(request.param)


def is_custom_resource(obj: dict) -> bool:
    """A kind of the CRDs we ship (anything else must be a built-in Kubernetes kind)."""
    return (obj["apiVersion"], obj["kind"]) in validate.crd_schemas()


# tools.validate is what `make validate` runs: the same check, with the schemas loaded once.
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_is_valid_under_strict_schemas(rendered, version):
    builtin = [o for o in rendered.kubernetes_objects if not is_custom_resource(o)]
    assert builtin
    assert validate.problems(builtin, [version]) == []


def test_every_custom_resource_is_valid_under_its_published_crd(rendered):
    custom = [o for o in rendered.kubernetes_objects if is_custom_resource(o)]
    assert validate.problems(custom) == []
    assert validate.summary(rendered.kubernetes_objects).custom == len(custom)


def test_every_resource_is_listed_with_its_identity(rendered):
    assert rendered.resources
    urns = {r["urn"] for r in rendered.resources}
    for resource in rendered.resources:
        assert set(resource) == {
            "urn",
            "type",
            "name",
            "custom",
            "parent",
            "provider",
            "dependencies",
            "inputs",
        }
        assert resource["urn"].endswith(f"{resource['type']}::{resource['name']}")
        assert all(d in urns for d in resource["dependencies"]), resource["name"]
        json.dumps(resource)  # serialisable as written


def test_objects_reference_only_names_that_exist(rendered):
    names = {(o["kind"], o["metadata"]["name"]) for o in rendered.kubernetes_objects}
    for obj in rendered.kubernetes_objects:
        if obj["kind"] == "HorizontalPodAutoscaler":
            ref = obj["spec"]["scaleTargetRef"]
            assert (ref["kind"], ref["name"]) in names
        if obj["kind"] == "Deployment":
            pod = obj["spec"]["template"]["spec"]
            for container in pod["containers"]:
                for source in container.get("envFrom", []):
                    assert ("ConfigMap", source["configMapRef"]["name"]) in names
            for volume in pod.get("volumes", []):
                if "configMap" in volume:
                    assert ("ConfigMap", volume["configMap"]["name"]) in names
                if "secret" in volume:
                    assert ("Secret", volume["secret"]["secretName"]) in names
            account = pod.get("serviceAccountName")
            if account is not None:
                assert ("ServiceAccount", account) in names
            mounted = {m["name"] for c in pod["containers"] for m in c.get("volumeMounts", [])}
            mounted |= {m["name"] for c in pod.get("initContainers", []) for m in c["volumeMounts"]}
            assert mounted <= {v["name"] for v in pod.get("volumes", [])}


def test_cli_writes_applyable_yaml_and_json(tmp_path, capsys):
    out = tmp_path / "dev"
    assert render.main(["--stack", "dev", "--out", str(out)]) == 0
    assert "rendered stack dev" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [
        "kubernetes.yaml",
        "outputs.json",
        "resources.json",
    ]
    documents = list(yaml.safe_load_all((out / "kubernetes.yaml").read_text()))
    assert documents[0]["kind"] == "Namespace", "the namespace must be applied first"
    for document in documents:
        assert {"apiVersion", "kind", "metadata"} <= document.keys()
        assert list(document)[:3] == ["apiVersion", "kind", "metadata"]
    resources = json.loads((out / "resources.json").read_text())
    assert len(resources) > len(documents)  # plus provider and component
    outputs = json.loads((out / "outputs.json").read_text())
    assert outputs["modelName"] == "half_plus_two"
    # Labelled as mock values, and otherwise exactly the stack outputs.
    assert "mock values" in outputs.pop(MOCK_KEY)
    assert outputs == json.loads(
        json.dumps(render_stack(STACK_FILES[0].parent / "Pulumi.dev.yaml").outputs)
    )
    assert "minikube" in outputs["predictUrlCommand"] and ":predict" in outputs["predictUrlCommand"]


def test_rendering_twice_gives_identical_files(tmp_path):
    for run in ("a", "b"):
        assert render.main(["--stack", "dev", "--out", str(tmp_path / run)]) == 0
    for name in ("kubernetes.yaml", "resources.json", "outputs.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_bad_config_leaves_earlier_output_untouched(tmp_path, capsys):
    out = tmp_path / "out"
    assert render.main(["--stack", "dev", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text("config:\n  tfserving:autoscaling: {minReplicas: 0}\n")
    assert render.main(["--stack-file", str(bad), "--out", str(out)]) == 2
    assert "tfserving:autoscaling.minReplicas must be >= 1" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_missing_or_broken_stack_file_exits_2(tmp_path, capsys):
    assert render.main(["--stack", "nope", "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    broken = tmp_path / "Pulumi.broken.yaml"
    broken.write_text("config: [unclosed\n")
    assert render.main(["--stack-file", str(broken), "--out", str(tmp_path / "o")]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_autoname_is_stable_and_follows_configmap_content():
    urn = (
        "urn:pulumi:dev::tfserving::tfserving:index:ModelServer$kubernetes:apps/v1:Deployment::web"
    )
    deployment = "kubernetes:apps/v1:Deployment"
    first = autoname(urn, deployment, "web", {"spec": {"a": 1}})
    assert first == autoname(urn, deployment, "web", {"spec": {"a": 2}})
    assert first.startswith("web-") and len(first) == len("web-") + 8
    elsewhere = urn.replace("ModelServer$", "Gateway$")
    assert autoname(elsewhere, deployment, "web", {}) != first, "the parent chain is identity"
    cm = "kubernetes:core/v1:ConfigMap"
    cm_urn = urn.replace(deployment, cm)
    assert autoname(cm_urn, cm, "env", {"data": {"A": "1"}}) != autoname(
        cm_urn, cm, "env", {"data": {"A": "2"}}
    )
    eks_urn = cm_urn.replace(":dev::", ":eks::")
    assert autoname(cm_urn, cm, "env", {"data": {}}) != autoname(eks_urn, cm, "env", {"data": {}})


def test_stack_name_comes_from_the_file_name(tmp_path: Path):
    stack_file = tmp_path / "Pulumi.review.yaml"
    stack_file.write_text("config: {}\n")
    rendered = render_stack(stack_file)
    assert rendered.stack == "review"
    assert all(":review::" in r["urn"] for r in rendered.resources)


def test_written_files_are_readable_like_any_new_file(tmp_path):
    assert render.main(["--stack", "dev", "--out", str(tmp_path)]) == 0
    umask = os.umask(0)
    os.umask(umask)
    for path in tmp_path.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path.name


def test_a_failed_write_leaves_no_temporary_files(tmp_path, monkeypatch):
    rendered = render_stack(STACK_FILES[0])
    chmod = os.chmod
    calls = []

    def fail_on_second(path, mode):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        chmod(path, mode)

    monkeypatch.setattr(render.os, "chmod", fail_on_second)
    with pytest.raises(OSError, match="disk full"):
        render.write(rendered, tmp_path)
    assert len(calls) == 2, "the failure came after a file was already staged"
    assert list(tmp_path.iterdir()) == []
