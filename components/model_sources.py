"""How each model's files reach TF Serving's /models/<name>/<version>/ in the pod.

- configmap: its files in a ConfigMap (binaryData), mounted read-only;
- image: baked into the image the pod runs (components/model_image.py): nothing to mount;
- gcs: TF Serving reads gs:// itself;
- s3: TF Serving cannot read s3:// since 2.7 (tensorflow/serving#1963), so an init container
  copies the versions the policy loads into an emptyDir of `sizeLimit`, checks the copy against
  the bucket's listing, and TF Serving reads the volume. Its AWS access is the pod's EKS Pod
  Identity role, which can read that prefix only (components/model_access.py).
"""

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components import kube
from components.tfserving_config import MODELS_ROOT
from config.model import ModelSettings, ModelSource, VersionPolicy

# The AWS CLI, pinned, from ECR Public (no Docker Hub pull limits on EKS nodes).
AWS_CLI_IMAGE = "public.ecr.aws/aws-cli/aws-cli:2.17.0"
SYNC_RESOURCES = (("100m", "128Mi"), ("1", "512Mi"))


@dataclass
class PodModels:
    """What the pod needs for its models: volumes, TF Serving's mounts, init containers."""

    volumes: list[k8s.core.v1.VolumeArgs] = field(default_factory=list)
    mounts: list[k8s.core.v1.VolumeMountArgs] = field(default_factory=list)
    init_containers: list[k8s.core.v1.ContainerArgs] = field(default_factory=list)
    # Pod-template annotations: what must restart the pods when it changes (s3 versions).
    annotations: dict[str, str] = field(default_factory=dict)


def volume_name(index: int) -> str:
    # The first model's volume keeps the name it always had.
    return "model" if index == 0 else f"model-{index}"


def configmap_name(name: str, index: int, model: ModelSettings) -> str:
    return f"{name}-model" if index == 0 else f"{name}-model-{model.name}"


def files_configmap(
    name: str,
    model: ModelSettings,
    metadata: k8s.meta.v1.ObjectMetaArgs,
    opts: pulumi.ResourceOptions,
) -> k8s.core.v1.ConfigMap:
    binary = {
        f.configmap_key: base64.b64encode(f.source.read_bytes()).decode("ascii")
        for f in model.folder.files
    }
    # Replaced under a new name when the files change, which rolls the Deployment.
    return k8s.core.v1.ConfigMap(name, metadata=metadata, binary_data=binary, opts=opts)


def _configmap_volume(
    index: int, model: ModelSettings, configmap: k8s.core.v1.ConfigMap
) -> k8s.core.v1.VolumeArgs:
    # ConfigMap keys are flat; items put each file back at <version>/<path> under the mount.
    return k8s.core.v1.VolumeArgs(
        name=volume_name(index),
        config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(
            name=kube.name_of(configmap),
            default_mode=0o444,
            items=[
                k8s.core.v1.KeyToPathArgs(key=f.configmap_key, path=f.relative_path)
                for f in model.folder.files
            ],
        ),
    )


def _versions_choice(policy: VersionPolicy | None) -> str:
    """The shell that prints the versions to copy, one per line, from $available."""
    policy = policy or VersionPolicy(latest=1)
    if policy.latest is not None:
        return f'echo "$available" | tail -n {policy.latest}'
    if policy.all:
        return 'echo "$available"'
    return "printf '%s\\n' " + " ".join(str(v) for v in sorted(policy.specific or []))


def sync_script(model: ModelSettings) -> str:
    """Copy the chosen versions of s3://bucket/prefix/<name>/ to /models/<name>/ and prove it:
    every chosen version exists in the bucket and has a saved_model.pb, and a second sync finds
    nothing left to copy (same files, same sizes). Any failure stops the pod before TF Serving.
    Only the shell, the AWS CLI and coreutils (sort, tail) are used: what the image has."""
    bucket, prefix = model.bucket_and_prefix
    return f"""set -eu
src={json.dumps(model.uri)}
dst="$MODEL_DIR"
prefixes=$(aws s3api list-objects-v2 --bucket {json.dumps(bucket)} \\
  --prefix {json.dumps(prefix + "/")} --delimiter / \\
  --query 'CommonPrefixes[].Prefix' --output text)
available=$(for p in $prefixes; do
  v=${{p%/}}; v=${{v##*/}}
  case $v in ''|*[!0-9]*) ;; *) echo "$v";; esac
done | sort -n)
[ -n "$available" ] || {{ echo "no numbered versions under $src/" >&2; exit 1; }}
chosen=$({_versions_choice(model.version_policy)})
for v in $chosen; do
  case " $(echo $available) " in *" $v "*) ;; *) echo "version $v not in $src/" >&2; exit 1;; esac
  aws s3 sync "$src/$v" "$dst/$v" --only-show-errors --no-progress
  [ -f "$dst/$v/saved_model.pb" ] || {{ echo "$src/$v has no saved_model.pb" >&2; exit 1; }}
  left=$(aws s3 sync "$src/$v" "$dst/$v" --dryrun --size-only)
  [ -z "$left" ] || {{ echo "copy of $src/$v differs from the bucket: $left" >&2; exit 1; }}
done
echo "copied versions $(echo $chosen) of $src"
"""


def _sync_container(
    index: int, model: ModelSettings, region: str | None
) -> k8s.core.v1.ContainerArgs:
    env = [
        k8s.core.v1.EnvVarArgs(name="HOME", value="/tmp"),  # the CLI's cache; root is read-only
        k8s.core.v1.EnvVarArgs(name="MODEL_DIR", value=f"{MODELS_ROOT}/{model.name}"),
    ]
    if region:
        env.append(k8s.core.v1.EnvVarArgs(name="AWS_REGION", value=region))
    return k8s.core.v1.ContainerArgs(
        name=f"sync-{index}",
        image=AWS_CLI_IMAGE,
        command=["/bin/sh", "-c", sync_script(model)],
        env=env,
        resources=k8s.core.v1.ResourceRequirementsArgs(
            requests=dict(zip(("cpu", "memory"), SYNC_RESOURCES[0], strict=True)),
            limits=dict(zip(("cpu", "memory"), SYNC_RESOURCES[1], strict=True)),
        ),
        security_context=kube.container_security_context(),
        volume_mounts=[
            k8s.core.v1.VolumeMountArgs(
                name=volume_name(index), mount_path=f"{MODELS_ROOT}/{model.name}"
            ),
            k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),
        ],
    )


def pod_models(
    name: str,
    models: Sequence[ModelSettings],
    metadata: k8s.meta.v1.ObjectMetaArgs,
    opts: pulumi.ResourceOptions,
    region: str | None = None,
) -> PodModels:
    """The volumes, mounts and init containers that put every model where TF Serving reads it."""
    pod = PodModels()
    for index, model in enumerate(models):
        mount = k8s.core.v1.VolumeMountArgs(
            name=volume_name(index), mount_path=f"{MODELS_ROOT}/{model.name}", read_only=True
        )
        if model.source is ModelSource.CONFIGMAP:
            configmap = files_configmap(configmap_name(name, index, model), model, metadata, opts)
            pod.volumes.append(_configmap_volume(index, model, configmap))
            pod.mounts.append(mount)
        elif model.source is ModelSource.S3:
            assert model.size_limit is not None  # required for s3 (config)
            pod.volumes.append(
                k8s.core.v1.VolumeArgs(
                    name=volume_name(index),
                    empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(
                        size_limit=str(model.size_limit)
                    ),
                )
            )
            pod.mounts.append(mount)
            pod.init_containers.append(_sync_container(index, model, region))
            policy = (
                model.version_policy.model_dump(exclude_none=True) if model.version_policy else {}
            )
            # The copy is made at pod start: a different choice of versions needs new pods.
            pod.annotations[f"tfserving.dev/s3-model-{index}"] = json.dumps(
                {"uri": model.uri, "versionPolicy": policy}, sort_keys=True
            )
    return pod
