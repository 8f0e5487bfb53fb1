"""The whole `tfserving:*` namespace: keys, targets, models and memory, what only eks may set."""

import contextvars
import json
import typing
from typing import Annotated, Any, Literal

import pulumi
import pytest
from pydantic import Field

from config.errors import SettingsError
from config.model import ModelSettings
from config.settings import TARGETS, EksSettings, MinikubeSettings, StackSettings
from config.stack import (
    KEYS,
    TARGETS_OF,
    _closest,
    _is_structured,
    _stack_key,
    _top_level_problems,
    load,
    parse,
)

ARN = "arn:aws:acm:us-east-1:123456789012:certificate/0123abcd-0123-4567-89ab-0123456789ab"
GPU_GROUP = {"name": "gpu", "gpu": True, "instanceTypes": ["g5.xlarge"], "minSize": 0}
EKS = {"tfserving:target": "eks"}


def problems(config: dict[str, Any]) -> list[str]:
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    with pytest.raises(SettingsError) as caught:
        parse(raw)
    return caught.value.problems


def settings(config: dict[str, Any]) -> Any:
    return parse({k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()})


def s3_model(name: str, size: str) -> dict[str, str]:
    return {"name": name, "source": "s3", "uri": f"s3://bucket/models/{name}", "sizeLimit": size}


def memory(request: str) -> dict[str, Any]:
    amounts = {"cpu": "1", "memory": request}
    return {"resources": {"requests": amounts, "limits": amounts}}


@pytest.mark.parametrize(
    ("annotation", "structured"),
    [
        (ModelSettings, True),
        (list[int], True),
        (dict[str, str], True),
        (ModelSettings | None, True),
        (Annotated[list[ModelSettings] | None, Field(alias="models")], True),
        (str, False),
        (int, False),
        (str | None, False),
        (Literal["eks"], False),
    ],
)
def test_objects_and_lists_arrive_as_json_text(annotation, structured):
    assert _is_structured(annotation) is structured


def test_which_top_level_keys_are_json():
    assert KEYS["model"] and KEYS["models"] and KEYS["cluster"] and KEYS["autoscaling"]
    assert not (KEYS["namespace"] or KEYS["target"] or KEYS["kubeContext"])
    assert _stack_key(StackSettings, "single_model") == "model"
    assert _stack_key(StackSettings, "namespace") == "namespace"
    assert TARGETS_OF["cluster"] == ["eks"] and TARGETS_OF["namespace"] == list(TARGETS)


def test_a_close_word_is_suggested():
    assert _closest("nmespace", ["model", "namespace"]) == "; did you mean namespace?"
    assert _closest("zzz", ["model", "namespace"]) == ""


def test_typos_in_the_namespace_and_its_keys():
    known = ", ".join(sorted(KEYS))
    raw = {
        "tfserving:nmespace": "x",
        "tfserving:zzz": "x",
        "tfserving:a:b": "x",
        "tfservng:model": "{}",
        "serv:model": "x",  # too far from tfserving to be a typo of it
        "foo:bar": "x",
        "aws:region": "eu-west-1",
        "kubernetes:context": "x",
    }
    assert _top_level_problems(raw) == [
        f"tfserving:a:b is not a known setting (known: {known})",
        f"tfserving:nmespace is not a known setting; did you mean namespace? (known: {known})",
        f"tfserving:zzz is not a known setting (known: {known})",
        "tfservng:model is in namespace 'tfservng', which is not this project's; did you mean "
        "tfserving:model?",
    ]


def test_defaults_are_minikube_with_the_default_model():
    parsed = parse({})
    assert isinstance(parsed, MinikubeSettings)
    assert parsed.kube_context == "minikube"
    assert [m.name for m in parsed.models] == ["half_plus_two"]


def test_text_keys_stay_text_and_objects_must_be_json():
    parsed = settings({"tfserving:namespace": "models", "tfserving:kubeContext": "{}"})
    assert (parsed.namespace, parsed.kube_context) == ("models", "{}")
    assert problems({"tfserving:autoscaling": "minReplicas: 2"}) == [
        "tfserving:autoscaling must be a mapping of settings, got 'minReplicas: 2'"
    ]


def test_an_unknown_target_stops_everything_else():
    assert problems({"tfserving:target": "gke", "tfserving:zzz": "x"}) == [
        f"tfserving:zzz is not a known setting (known: {', '.join(sorted(KEYS))})",
        f"tfserving:target must be one of {', '.join(TARGETS)}, got 'gke'",
    ]


def test_keys_of_another_target_are_named_with_their_target():
    assert problems(
        {"tfserving:cluster": {}, "tfserving:registry": {}, "aws:region": "eu-west-1"}
    ) == [
        "aws:region only applies to target eks, not minikube",
        "tfserving:cluster only applies to target eks, not minikube",
        "tfserving:registry only applies to target eks, not minikube",
    ]
    context = " or ".join(TARGETS_OF["kubeContext"])
    assert problems({**EKS, "tfserving:kubeContext": "x"}) == [
        f"tfserving:kubeContext only applies to target {context}, not eks"
    ]


def test_validation_problems_start_after_the_target():
    assert problems({"tfserving:autoscaling": {"minReplicas": 0}}) == [
        "tfserving:autoscaling.minReplicas must be >= 1, got 0"
    ]
    assert problems({**EKS, "tfserving:cluster": {"availabilityZones": 1}}) == [
        "tfserving:cluster.availabilityZones must be between 2 and 6 (EKS needs subnets in at "
        "least two availability zones), got 1"
    ]


def test_problems_of_every_kind_are_reported_together():
    config = {
        "tfserving:zzz": "x",
        "tfserving:service": "[",
        "tfserving:autoscaling": {"minReplicas": 0},
    }
    assert problems(config) == [
        f"tfserving:zzz is not a known setting (known: {', '.join(sorted(KEYS))})",
        "tfserving:service must be a mapping of settings, got '['",
        "tfserving:autoscaling.minReplicas must be >= 1, got 0",
    ]


def test_one_model_or_a_list_of_distinct_models():
    both: dict[str, Any] = {"tfserving:model": {}, "tfserving:models": [{}]}
    assert problems(both) == [
        "tfserving:models cannot be combined with tfserving:model: list every model under models"
    ]
    assert problems({"tfserving:models": []}) == ["tfserving:models must list at least one model"]
    twice = [{"name": "a", "source": "gcs", "uri": "gs://b/a"}] * 2
    assert problems({"tfserving:models": twice}) == [
        "tfserving:models[1].name must be unique, 'a' is already models[0]"
    ]


def test_the_gateway_calls_a_served_model_the_first_by_default():
    models = [
        {"name": "a", "source": "gcs", "uri": "gs://b/a"},
        {"name": "b", "source": "gcs", "uri": "gs://b/b"},
    ]
    parsed = settings({"tfserving:models": models, "tfserving:gateway": {"enabled": True}})
    assert (parsed.model.name, [m.name for m in parsed.models]) == ("a", ["a", "b"])
    chosen = {"enabled": True, "model": "b"}
    assert (
        settings({"tfserving:models": models, "tfserving:gateway": chosen}).gateway.model_name
        == "b"
    )
    assert problems(
        {"tfserving:models": models, "tfserving:gateway": {**chosen, "model": "c"}}
    ) == ["tfserving:gateway.model must be one of the served models (a, b), got 'c'"]


def test_the_server_memory_holds_every_loaded_model_plus_a_reload():
    models = {"tfserving:models": [s3_model("a", "1Gi"), s3_model("b", "512Mi")]}
    enough = settings({**EKS, **models, "tfserving:server": memory("2560Mi")})
    assert [m.size_bytes for m in enough.models] == [2**30, 2**29]
    assert problems({**EKS, **models, "tfserving:server": memory("2559Mi")}) == [
        "tfserving:server.resources.requests.memory (2559Mi) is below what the models need: "
        "2560Mi = the loaded versions (1536Mi) plus a second copy of the largest while it "
        "reloads (1024Mi)"
    ]
    one = {"tfserving:model": s3_model("m", "1Gi")}
    assert settings({**EKS, **one, "tfserving:server": memory("2Gi")}).model.name == "m"
    assert problems({**EKS, **one, "tfserving:server": memory("2047Mi")})[0].startswith(
        "tfserving:server.resources.requests.memory (2047Mi) is below what the models need: 2048Mi"
    )


def test_minikube_cannot_copy_from_s3():
    message = (
        "must not be s3 on minikube: the model is copied from S3 with the pod's EKS Pod Identity "
        "role, which only target eks has; use source configmap (up to 1 MiB) or image here"
    )
    assert problems({"tfserving:model": s3_model("m", "1Gi")}) == [
        f"tfserving:model.source {message}"
    ]
    models = [{"name": "a", "source": "gcs", "uri": "gs://b/a"}, s3_model("b", "1Gi")]
    assert problems({"tfserving:models": models}) == [f"tfserving:models[1].source {message}"]


def test_minikube_has_no_gpus_and_no_load_balancers():
    assert problems({"tfserving:server": {"gpu": 1}}) == [
        "tfserving:server.gpu only applies to target eks: this project schedules GPU pods onto "
        "NVIDIA node groups or an Auto Mode GPU NodePool, which minikube does not have; serve on "
        "CPUs here (server.gpu: 0)"
    ]
    message = (
        "must not be LoadBalancer on minikube: it never gets an address unless `minikube tunnel` "
        "runs, and pulumi up would wait for it until it times out; use NodePort (or ClusterIP "
        "behind the gateway)"
    )
    assert problems({"tfserving:service": {"type": "LoadBalancer"}}) == [
        f"tfserving:service.type {message}"
    ]
    gateway = {"enabled": True, "service": {"type": "LoadBalancer"}}
    assert problems({"tfserving:gateway": gateway}) == [f"tfserving:gateway.service.type {message}"]


def test_eks_gpus_need_gpu_nodes_and_gpu_nodes_need_gpus():
    groups = {"nodeGroups": [{"name": "cpu"}, GPU_GROUP]}
    both = settings({**EKS, "tfserving:cluster": groups, "tfserving:server": {"gpu": 1}})
    assert isinstance(both, EksSettings) and both.server.gpu == 1
    assert problems({**EKS, "tfserving:server": {"gpu": 1}}) == [
        "tfserving:server.gpu is 1 but no node group has GPUs: add a group with gpu: true and an "
        "NVIDIA instance type (e.g. g5.xlarge, minSize 0), or use compute: autoMode"
    ]
    assert problems({**EKS, "tfserving:cluster": groups}) == [
        "tfserving:cluster.nodeGroups[1].gpu is true but nothing asks for a GPU (server.gpu is 0): "
        "the GPU nodes would sit idle and be billed; set server.gpu or drop the group"
    ]
    auto = {"compute": "autoMode"}
    assert (
        settings({**EKS, "tfserving:cluster": auto, "tfserving:server": {"gpu": 1}}).server.gpu == 1
    )
    pool = {**auto, "gpuNodePool": {"maxGpus": 2}}
    assert (
        settings({**EKS, "tfserving:cluster": pool, "tfserving:server": {"gpu": 2}}).server.gpu == 2
    )
    assert problems({**EKS, "tfserving:cluster": pool}) == [
        "tfserving:cluster.gpuNodePool only applies when server.gpu > 0 (the GPU NodePool serves "
        "the model server)"
    ]


def test_grpc_over_tls_needs_auto_modes_load_balancer():
    tls = {"type": "LoadBalancer", "tls": {"certificateArn": ARN}}
    assert problems({**EKS, "tfserving:service": tls}) == [
        "tfserving:service.exposeGrpc must be false with tls in compute nodeGroups: gRPC over TLS "
        "needs ALPN (h2), which the AWS cloud provider's load balancer cannot negotiate; TLS then "
        "covers REST only (exposeGrpc: false, gRPC stays in the cluster), or use compute: "
        "autoMode, whose load balancer negotiates h2"
    ]
    rest_only = settings({**EKS, "tfserving:service": {**tls, "exposeGrpc": False}})
    assert not rest_only.service.grpc_on_service
    auto = {"tfserving:cluster": {"compute": "autoMode"}}
    assert settings({**EKS, **auto, "tfserving:service": tls}).service.grpc_on_service


def test_aws_keys_of_an_eks_stack():
    assert problems({**EKS, "aws:regin": "eu-west-1", "aws:zzzz": "x"}) == [
        "aws:regin is not a setting of the AWS provider; did you mean aws:region?",
        "aws:zzzz is not a setting of the AWS provider",
    ]
    assert settings({**EKS, "aws:region": "eu-west-1", "aws:profile": "ci"}).target == "eks"


def test_a_certificate_must_be_in_the_stacks_region():
    tls = {"type": "LoadBalancer", "tls": {"certificateArn": ARN}, "exposeGrpc": False}
    gateway = {"enabled": True, "service": {"type": "LoadBalancer", "tls": {"certificateArn": ARN}}}
    config = {**EKS, "tfserving:service": tls, "tfserving:gateway": gateway}
    assert settings({**config, "aws:region": "us-east-1"}).service.tls is not None
    assert settings(config).gateway.service.tls is not None  # no region: nothing to compare
    mismatch = (
        "is in us-east-1, but the stack deploys to aws:region eu-west-1: an ACM certificate can "
        "only be used in its own region"
    )
    assert problems({**config, "aws:region": "eu-west-1"}) == [
        f"tfserving:service.tls.certificateArn {mismatch}",
        f"tfserving:gateway.service.tls.certificateArn {mismatch}",
    ]
    # a region that is no region: that is the problem to fix first
    assert problems({**config, "aws:region": "mars-1", "aws:zzzz": "x"}) == [
        "aws:zzzz is not a setting of the AWS provider",
        "aws:region is not an AWS region, got 'mars-1'",
    ]


def test_load_reads_the_engines_config_over_the_environment(monkeypatch):
    monkeypatch.setenv(
        "PULUMI_CONFIG",
        json.dumps({"tfserving:namespace": "from-env", "tfserving:kubeContext": 7}),
    )

    def read() -> Any:
        pulumi.runtime.set_all_config({"tfserving:namespace": "from-engine"})
        return load()

    loaded = contextvars.Context().run(read)
    assert (loaded.namespace, loaded.kube_context) == ("from-engine", "7")


def test_every_target_has_its_settings_model():
    assert typing.get_args(TARGETS["eks"].model_fields["target"].annotation) == ("eks",)
    assert TARGETS["minikube"] is MinikubeSettings


# --- a typo in the namespace ------------------------------------------------------------------


def test_a_misspelt_namespace_names_only_the_key_not_a_target():
    # tfservng:model is not a target: the stack stays minikube, one problem.
    assert problems({"tfservng:model": '{"name": "x"}'}) == [
        "tfservng:model is in namespace 'tfservng', which is not this project's; "
        "did you mean tfserving:model?"
    ]
    # A key whose name has a colon is not a target key either.
    assert problems({"tfservng:x:target": "eks", "tfserving:cluster": "{}"}) == [
        "tfservng:x:target is in namespace 'tfservng', which is not this project's; "
        "did you mean tfserving:x:target?",
        "tfserving:cluster only applies to target eks, not minikube",
    ]


def test_a_namespace_only_a_little_like_ours_is_someone_elses():
    # "tfse" is 0.62 alike "tfserving": below the 0.7 that makes it a typo of ours, so its
    # target key is not ours either and the stack stays minikube.
    assert problems({"tfse:target": "eks", "tfserving:cluster": "{}"}) == [
        "tfserving:cluster only applies to target eks, not minikube"
    ]
