"""Serving beyond the labs: several models with versions and labels, batching, models from S3,
rollouts that drain. TF Serving's files are parsed with its own message definitions."""

import json
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import text_format

from components.model_access import read_policy
from components.model_sources import sync_script
from config.stack import parse
from tests.conftest import PROJECT_ROOT, objects_of, one, one_resource
from tests.pod_security import restricted_problems
from tests.tfserving_config import batching_pb2, model_server_config_pb2, monitoring_config_pb2
from tools.render import Rendered, render_stack

FIXTURES = PROJECT_ROOT / "tests" / "fixtures" / "stacks"


@pytest.fixture(scope="module")
def multi() -> Rendered:
    return render_stack(FIXTURES / "Pulumi.multi-model.yaml")


@pytest.fixture(scope="module")
def s3() -> Rendered:
    return render_stack(FIXTURES / "Pulumi.eks-s3.yaml")


def _server(rendered: Rendered) -> dict[str, Any]:
    return one(rendered, "Deployment", "tfserving-server-")["spec"]["template"]


def _flags(rendered: Rendered) -> list[str]:
    (container,) = _server(rendered)["spec"]["containers"]
    return container["args"]


def _model_config(rendered: Rendered) -> model_server_config_pb2.ModelServerConfig:
    (configmap,) = [
        c
        for c in objects_of(rendered, "ConfigMap")
        if c["metadata"]["name"] == "tfserving-model-config"
    ]
    return text_format.Parse(
        configmap["data"]["models.config"], model_server_config_pb2.ModelServerConfig()
    )


def test_several_models_are_one_model_config_parsed_as_tf_serving_reads_it(multi):
    config = _model_config(multi)
    first, second = config.model_config_list.config
    assert (first.name, first.base_path, first.model_platform) == (
        "half_plus_two",
        "/models/half_plus_two",
        "tensorflow",
    )
    assert first.model_version_policy.WhichOneof("policy_choice") == "specific"
    assert list(first.model_version_policy.specific.versions) == [1, 2]
    assert dict(first.version_labels) == {"stable": 1, "canary": 2}
    assert (second.name, second.base_path) == ("shapes", "/models/shapes")
    assert not second.HasField("model_version_policy") and not second.version_labels


def test_the_model_config_is_polled_in_place_not_rolled(multi):
    flags = _flags(multi)
    assert "--model_config_file=/etc/tfserving-models/models.config" in flags
    assert "--model_config_file_poll_wait_seconds=30" in flags
    assert "--allow_version_labels_for_unavailable_models=true" in flags
    # A changed version policy is found by polling the model folders.
    assert "--file_system_poll_wait_seconds=30" in flags
    spec = _server(multi)["spec"]
    (volume,) = [v for v in spec["volumes"] if v["name"] == "model-config"]
    assert volume == {"name": "model-config", "configMap": {"name": "tfserving-model-config"}}
    (mount,) = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "model-config"]
    assert "subPath" not in mount, "a subPath mount never sees the ConfigMap's updates"


def test_changing_labels_rewrites_the_polled_config_and_keeps_the_pods(tmp_path, multi):
    text = (
        (FIXTURES / "Pulumi.multi-model.yaml")
        .read_text()
        .replace("labels: {stable: 1, canary: 2}", "labels: {stable: 2}")
    )
    changed = tmp_path / "Pulumi.multi-model.yaml"
    changed.write_text(text)
    promoted = render_stack(changed)
    assert dict(_model_config(promoted).model_config_list.config[0].version_labels) == {"stable": 2}
    # Same ConfigMap name, same pod template: no rollout.
    assert _server(promoted) == _server(multi)


def test_each_models_files_are_mounted_at_their_base_path(multi):
    spec = _server(multi)["spec"]
    mounts = {m["mountPath"]: m for m in spec["containers"][0]["volumeMounts"]}
    for name in ("half_plus_two", "shapes"):
        assert mounts[f"/models/{name}"]["readOnly"] is True
    volumes = {v["name"]: v for v in spec["volumes"]}
    paths = sorted(
        i["path"] for i in volumes[mounts["/models/half_plus_two"]["name"]]["configMap"]["items"]
    )
    assert [p.split("/", 1)[0] for p in paths].count("2") == 4, "both versions' files"


def test_the_gateway_calls_the_model_it_names(multi):
    env = one(multi, "ConfigMap", "tfserving-gateway-env-")["data"]
    assert env["GATEWAY_MODEL_NAME"] == "shapes"


def test_batching_parameters_parse_and_follow_the_cpu_limit():
    rendered = render_stack(FIXTURES / "Pulumi.batching.yaml")
    flags = _flags(rendered)
    assert "--enable_batching=true" in flags
    assert "--batching_parameters_file=/etc/tfserving/batching.config" in flags
    config = one(rendered, "ConfigMap", "tfserving-monitoring-")["data"]
    parameters = text_format.Parse(config["batching.config"], batching_pb2.BatchingParameters())
    assert parameters.max_batch_size.value == 32
    assert parameters.batch_timeout_micros.value == 2000
    assert parameters.max_enqueued_batches.value == 8
    assert parameters.num_batch_threads.value == 4, "one per core of the CPU limit"
    assert list(parameters.allowed_batch_sizes) == [8, 16, 32]
    monitoring = text_format.Parse(
        config["monitoring.config"], monitoring_config_pb2.MonitoringConfig()
    )
    assert monitoring.prometheus_config.enable is True
    assert monitoring.prometheus_config.path == "/monitoring/prometheus/metrics"


def test_s3_model_is_copied_by_a_restricted_init_container_into_a_sized_volume(s3):
    template = _server(s3)
    spec = template["spec"]
    (init,) = spec["initContainers"]
    assert init["image"] == "public.ecr.aws/aws-cli/aws-cli:2.17.0"
    assert restricted_problems(spec) == []
    assert init["command"][:2] == ["/bin/sh", "-c"]
    env = {e["name"]: e["value"] for e in init["env"]}
    assert env == {"HOME": "/tmp", "MODEL_DIR": "/models/clothing", "AWS_REGION": "us-east-1"}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["model"] == {"name": "model", "emptyDir": {"sizeLimit": "2Gi"}}
    assert spec["serviceAccountName"] == "tfserving-model-server"
    assert json.loads(template["metadata"]["annotations"]["tfserving.dev/s3-model-0"]) == {
        "uri": "s3://example-models-bucket/serving/clothing",
        "versionPolicy": {"latest": 2},
    }
    account = one(s3, "ServiceAccount", "tfserving-model-server")
    assert account["automountServiceAccountToken"] is False


def test_s3_role_reads_that_prefix_only_for_that_service_account(s3):
    association = one_resource(
        s3, "aws:eks/podIdentityAssociation:PodIdentityAssociation", "tfserving-models-pod-identity"
    )
    assert association["inputs"]["namespace"] == "tfserving"
    assert association["inputs"]["serviceAccount"] == "tfserving-model-server"
    policy = json.loads(
        one_resource(s3, "aws:iam/rolePolicy:RolePolicy", "tfserving-models-read")["inputs"][
            "policy"
        ]
    )
    assert policy["Statement"] == [
        {
            "Sid": "ListModel0",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": "arn:aws:s3:::example-models-bucket",
            "Condition": {"StringLike": {"s3:prefix": ["serving/clothing/", "serving/clothing/*"]}},
        },
        {
            "Sid": "ReadModel0",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::example-models-bucket/serving/clothing/*",
        },
    ]
    # The pods start only once their role is bound.
    deployment = one_resource(s3, "kubernetes:apps/v1:Deployment", "tfserving-server")
    assert association["urn"] in deployment["dependencies"]


def test_read_policy_covers_every_s3_model():
    settings = parse(
        {
            "tfserving:target": "eks",
            "tfserving:server": json.dumps(
                {
                    "resources": {
                        "requests": {"cpu": "1", "memory": "8Gi"},
                        "limits": {"cpu": "1", "memory": "8Gi"},
                    }
                }
            ),
            "tfserving:models": json.dumps(
                [
                    {"name": "a", "source": "s3", "uri": "s3://bucket-one/x/a", "sizeLimit": "1Gi"},
                    {"name": "b", "source": "s3", "uri": "s3://bucket-two/b", "sizeLimit": "1Gi"},
                ]
            ),
        }
    )
    resources = [s["Resource"] for s in json.loads(read_policy(settings.models))["Statement"]]
    assert resources == [
        "arn:aws:s3:::bucket-one",
        "arn:aws:s3:::bucket-one/x/a/*",
        "arn:aws:s3:::bucket-two",
        "arn:aws:s3:::bucket-two/b/*",
    ]


# --- the init container's script, run for real against a fake AWS CLI on loopback files ------

FAKE_AWS = r"""#!/bin/sh
# s3api list-objects-v2 --bucket B --prefix P --delimiter / --query ... --output text
# s3 sync s3://B/K DIR [--dryrun] [--size-only] ...      (files under $BUCKETS/B/K)
set -eu
if [ "$1" = s3api ]; then
  bucket=$4; prefix=$6
  out=""
  for d in "$BUCKETS/$bucket/$prefix"*/; do
    [ -d "$d" ] && out="$out$prefix$(basename "$d")/	"
  done
  printf '%s\n' "$out"; exit 0
fi
src=${3#s3://}; dst=$4; dry=no
for a in "$@"; do [ "$a" = --dryrun ] && dry=yes; done
cd "$BUCKETS/$src"
find . -type f | while read -r f; do
  if [ ! -f "$dst/$f" ] || [ "$(wc -c < "$f")" != "$(wc -c < "$dst/$f")" ]; then
    if [ $dry = yes ]; then echo "(dryrun) download: $f"; continue; fi
    mkdir -p "$dst/$(dirname "$f")"; cp "$f" "$dst/$f"
  fi
done
"""


def _bucket(root: Path, versions: list[int]) -> Path:
    for version in versions:
        folder = root / "buckets" / "models-bucket" / "serving" / "m" / str(version)
        (folder / "variables").mkdir(parents=True)
        (folder / "saved_model.pb").write_bytes(b"graph %d" % version)
        (folder / "variables" / "variables.index").write_bytes(b"index")
    (root / "buckets" / "models-bucket" / "serving" / "m" / "notes").mkdir(
        parents=True
    )  # not a version
    return root / "buckets"


def _run_sync(tmp_path: Path, policy: dict[str, Any], versions: list[int]) -> tuple[int, str, Path]:
    settings = parse(
        {
            "tfserving:target": "eks",
            "tfserving:server": json.dumps(
                {
                    "resources": {
                        "requests": {"cpu": "1", "memory": "4Gi"},
                        "limits": {"cpu": "1", "memory": "4Gi"},
                    }
                }
            ),
            "tfserving:model": json.dumps(
                {
                    "name": "m",
                    "source": "s3",
                    "uri": "s3://models-bucket/serving/m",
                    "sizeLimit": "1Gi",
                    "versionPolicy": policy,
                }
            ),
        }
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    aws = bin_dir / "aws"
    aws.write_text(FAKE_AWS)
    aws.chmod(aws.stat().st_mode | stat.S_IXUSR)
    target = tmp_path / "models" / "m"
    done = subprocess.run(
        ["/bin/sh", "-c", sync_script(settings.model)],
        env={
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "BUCKETS": str(_bucket(tmp_path, versions)),
            "MODEL_DIR": str(target),
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr, target


def test_sync_copies_the_newest_versions_and_checks_the_copy(tmp_path):
    code, output, target = _run_sync(tmp_path, {"latest": 2}, [1, 2, 10])
    assert code == 0, output
    assert sorted(p.name for p in target.iterdir()) == ["10", "2"], "numeric order, not text"
    assert (target / "10" / "saved_model.pb").read_bytes() == b"graph 10"
    assert "copied versions 2 10 of s3://models-bucket/serving/m" in output


def test_sync_refuses_a_missing_version(tmp_path):
    code, output, _ = _run_sync(tmp_path, {"specific": [1, 3]}, [1, 2])
    assert code == 1
    assert "version 3 not in s3://models-bucket/serving/m/" in output


def test_sync_refuses_an_empty_prefix(tmp_path):
    code, output, _ = _run_sync(tmp_path, {"all": True}, [])
    assert code == 1
    assert "no numbered versions under s3://models-bucket/serving/m/" in output


# --- rollouts that drop nothing ---------------------------------------------------------------


def test_tf_serving_pauses_before_sigterm_long_enough_to_leave_the_endpoints(render_dev):
    spec = _server(render_dev())["spec"]
    (container,) = spec["containers"]
    # Endpoint removal (10 s) plus the gateway's model deadline (5 s); then 10 s to exit.
    assert container["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", "15"]}}}
    assert spec["terminationGracePeriodSeconds"] == 25


def test_auto_modes_load_balancer_deregistration_is_covered_by_the_pause():
    rendered = render_stack(FIXTURES / "Pulumi.eks-auto.yaml")
    service = one(rendered, "Service", "tfserving-server-")
    attributes = service["metadata"]["annotations"][
        "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes"
    ]
    assert attributes == "deregistration_delay.timeout_seconds=20"
    spec = _server(rendered)["spec"]
    # 10 s endpoints + 20 s deregistration + 5 s model deadline.
    assert spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "35"]
    assert spec["terminationGracePeriodSeconds"] == 45


def test_the_gateway_pauses_then_drains_what_it_holds(render_dev):
    rendered = render_dev({"tfserving:gateway": {"enabled": True, "image": "example.com/gw:1.0"}})
    spec = one(rendered, "Deployment", "tfserving-gateway-")["spec"]["template"]["spec"]
    assert spec["containers"][0]["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", "10"]}}}
    # Then SIGTERM: a download (10 s) and a model call (5 s) at most, and 10 s to exit.
    assert spec["terminationGracePeriodSeconds"] == 35
