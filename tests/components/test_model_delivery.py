"""How each model reaches /models/<name>/<version>/ in the pod (components/model_sources.py):
ConfigMap files and their volume, nothing for image and gcs, an S3 copy checked before TF Serving.
"""

import base64
import json
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components import model_sources as sources
from components.kube import container_security_context
from config.model import ModelSettings, VersionPolicy
from config.paths import PROJECT_ROOT
from tests.components.mocked import plain, register

ONE_VERSION = PROJECT_ROOT / "models" / "half_plus_two"
TWO_VERSIONS = PROJECT_ROOT / "tests" / "fixtures" / "models" / "half_plus_two"
FILES = [
    "fingerprint.pb",
    "saved_model.pb",
    "variables/variables.data-00000-of-00001",
    "variables/variables.index",
]


def model(**data: Any) -> ModelSettings:
    return ModelSettings.model_validate(data)


def s3(name: str, **data: Any) -> ModelSettings:
    return model(name=name, source="s3", uri=f"s3://bucket/models/{name}", sizeLimit="2Gi", **data)


def test_names_of_volumes_and_configmaps_keep_the_first_models_own():
    first, other = model(name="a", path=str(ONE_VERSION)), model(name="b", path=str(ONE_VERSION))
    assert (sources.volume_name(0), sources.volume_name(2)) == ("model", "model-2")
    assert sources.configmap_name("tfserving", 0, first) == "tfserving-model"
    assert sources.configmap_name("tfserving", 1, other) == "tfserving-model-b"


@pytest.mark.parametrize(
    ("policy", "shell"),
    [
        (None, 'echo "$available" | tail -n 1'),
        ({"latest": 3}, 'echo "$available" | tail -n 3'),
        ({"all": True}, 'echo "$available"'),
        ({"specific": [5, 2]}, "printf '%s\\n' 2 5"),
    ],
)
def test_the_versions_to_copy(policy, shell):
    chosen = VersionPolicy.model_validate(policy) if policy is not None else None
    assert sources._versions_choice(chosen) == shell


def test_the_copy_lists_the_models_prefix_in_its_bucket():
    script = sources.sync_script(s3("m", versionPolicy={"latest": 2}))
    lines = script.splitlines()
    assert lines[:5] == [
        "set -eu",
        'src="s3://bucket/models/m"',
        'dst="$MODEL_DIR"',
        'prefixes=$(aws s3api list-objects-v2 --bucket "bucket" \\',
        '  --prefix "models/m/" --delimiter / \\',
    ]
    assert 'chosen=$(echo "$available" | tail -n 2)' in lines
    assert lines[-1] == 'echo "copied versions $(echo $chosen) of $src"'


def _pod_models(models: list[ModelSettings], region: str | None = None) -> Any:
    def build() -> dict[str, Any]:
        metadata = k8s.meta.v1.ObjectMetaArgs(namespace="ns", labels={"app": "x"})
        pod = sources.pod_models(
            "tfserving", models, metadata, pulumi.ResourceOptions(), region=region
        )
        return {
            "volumes": plain(pod.volumes),
            "mounts": plain(pod.mounts),
            "init": plain(pod.init_containers),
            "annotations": pod.annotations,
        }

    return register(build)


def test_configmap_models_are_files_in_a_configmap_mounted_read_only():
    first, second = model(name="a", path=str(ONE_VERSION)), model(name="b", path=str(TWO_VERSIONS))
    done = _pod_models([first, second])
    configmaps = {r["name"]: r for r in done.of("kubernetes:core/v1:ConfigMap")}
    assert set(configmaps) == {"tfserving-model", "tfserving-model-b"}
    a = configmaps["tfserving-model"]["inputs"]
    assert a["metadata"] == {"namespace": "ns", "labels": {"app": "x"}}
    assert a["binaryData"] == {
        f"1__{f.replace('/', '__')}": base64.b64encode((ONE_VERSION / "1" / f).read_bytes()).decode(
            "ascii"
        )
        for f in FILES
    }
    assert sorted(configmaps["tfserving-model-b"]["inputs"]["binaryData"]) == sorted(
        f"{v}__{f.replace('/', '__')}" for v in (1, 2) for f in FILES
    )
    name = configmaps["tfserving-model"]["state"]["metadata"]["name"]
    assert done.outputs["volumes"][0] == {
        "name": "model",
        "configMap": {
            "name": name,
            "defaultMode": 0o444,
            "items": [{"key": f"1__{f.replace('/', '__')}", "path": f"1/{f}"} for f in FILES],
        },
    }
    assert done.outputs["volumes"][1]["name"] == "model-1"
    assert done.outputs["mounts"] == [
        {"name": "model", "mountPath": "/models/a", "readOnly": True},
        {"name": "model-1", "mountPath": "/models/b", "readOnly": True},
    ]
    assert (done.outputs["init"], done.outputs["annotations"]) == ([], {})


def test_image_and_gcs_models_need_nothing_in_the_pod():
    image = model(name="i", source="image", path=str(ONE_VERSION))
    gcs = model(name="g", source="gcs", uri="gs://bucket/models/g")
    done = _pod_models([image, gcs])
    assert done.outputs == {"volumes": [], "mounts": [], "init": [], "annotations": {}}
    assert done.records == []


def _sync(index: int, name: str, env: list[dict[str, str]], script: str) -> dict[str, Any]:
    return {
        "name": f"sync-{index}",
        "image": "public.ecr.aws/aws-cli/aws-cli:2.17.0",
        "command": ["/bin/sh", "-c", script],
        "env": env,
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        },
        "securityContext": plain(container_security_context()),
        "volumeMounts": [
            {"name": "model" if index == 0 else f"model-{index}", "mountPath": f"/models/{name}"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }


def test_s3_models_are_copied_into_a_volume_before_tf_serving_starts():
    gcs = model(name="g", source="gcs", uri="gs://bucket/models/g")
    first, second = s3("a"), s3("b", versionPolicy={"specific": [3, 1]})
    done = _pod_models([first, gcs, second], region="eu-west-1")
    assert done.outputs["volumes"] == [
        {"name": "model", "emptyDir": {"sizeLimit": "2Gi"}},
        {"name": "model-2", "emptyDir": {"sizeLimit": "2Gi"}},
    ]
    assert done.outputs["mounts"] == [
        {"name": "model", "mountPath": "/models/a", "readOnly": True},
        {"name": "model-2", "mountPath": "/models/b", "readOnly": True},
    ]

    def env(name: str) -> list[dict[str, str]]:
        return [
            {"name": "HOME", "value": "/tmp"},
            {"name": "MODEL_DIR", "value": f"/models/{name}"},
            {"name": "AWS_REGION", "value": "eu-west-1"},
        ]

    assert done.outputs["init"] == [
        _sync(0, "a", env("a"), sources.sync_script(first)),
        _sync(2, "b", env("b"), sources.sync_script(second)),
    ]
    assert done.outputs["annotations"] == {
        "tfserving.dev/s3-model-0": json.dumps(
            {"uri": "s3://bucket/models/a", "versionPolicy": {}}, sort_keys=True
        ),
        "tfserving.dev/s3-model-2": json.dumps(
            {"uri": "s3://bucket/models/b", "versionPolicy": {"specific": [3, 1]}}, sort_keys=True
        ),
    }


def test_without_a_region_the_copy_takes_the_clis_own():
    done = _pod_models([s3("a")])
    assert done.outputs["init"][0]["env"] == [
        {"name": "HOME", "value": "/tmp"},
        {"name": "MODEL_DIR", "value": "/models/a"},
    ]
