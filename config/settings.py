"""The settings of a stack, one model per target: a union `tfserving:target` picks from.

A setting that only one target uses exists only on that target's settings (an EKS cluster on
`EksSettings`, a kube context on `MinikubeSettings` and `KindSettings`), so no code has to ask
whether it is there. `config.stack` reads a stack's config into one of these.
"""

import re
from typing import Annotated, Any, Literal, Self

from pydantic import Field, model_validator

from config.base import DnsLabel, Strict
from config.cluster import ClusterSettings, Compute, RegistrySettings
from config.errors import InvalidSettingError
from config.gateway import API_KEYS_EXAMPLE, ApiKeysSetting, GatewaySettings
from config.model import ModelSettings, ModelSource
from config.service import ModelServiceSettings
from config.workload import AutoscalingSettings, ServerSettings

DEFAULT_NAMESPACE = "tfserving"


class StackSettings(Strict):
    """What every target has: the namespace, the model, the model server and the gateway."""

    namespace: DnsLabel = DEFAULT_NAMESPACE
    # One model (tfserving:model) or several (tfserving:models); parse() fills in the default
    # model when neither is given (its directory is checked then, not at import).
    single_model: Annotated[ModelSettings | None, Field(alias="model")] = None
    model_list: Annotated[list[ModelSettings] | None, Field(alias="models")] = None
    server: ServerSettings = ServerSettings()
    service: ModelServiceSettings = ModelServiceSettings()
    autoscaling: AutoscalingSettings = AutoscalingSettings()
    gateway: GatewaySettings = GatewaySettings()
    # The keys the gateway's clients send: a Pulumi secret of its own (not inside gateway).
    gateway_api_keys: Annotated[ApiKeysSetting, Field(alias="gatewayApiKeys")] = None

    @model_validator(mode="after")
    def _models_fit(self) -> Self:
        if self.single_model is not None and self.model_list is not None:
            raise InvalidSettingError(
                "cannot be combined with tfserving:model: list every model under models",
                at="models",
            )
        if self.model_list is not None:
            if not self.model_list:
                raise InvalidSettingError("must list at least one model", at="models")
            seen: dict[str, int] = {}
            for index, model in enumerate(self.model_list):
                if model.name in seen:
                    raise InvalidSettingError(
                        f"must be unique, {model.name!r} is already models[{seen[model.name]}]",
                        at=f"models.{index}.name",
                    )
                seen[model.name] = index
        gateway_model = self.gateway.model_name
        if gateway_model is not None and gateway_model not in {m.name for m in self.models}:
            raise InvalidSettingError(
                f"must be one of the served models ({', '.join(m.name for m in self.models)}), "
                f"got {gateway_model!r}",
                at="gateway.model",
            )
        self._check_memory()
        self._check_gateway()
        return self

    def _check_gateway(self) -> None:
        gateway = self.gateway
        if self.gateway_api_keys is not None and not gateway.enabled:
            raise InvalidSettingError(
                "only applies while tfserving:gateway.enabled is true", at="gatewayApiKeys"
            )
        if gateway.enabled and gateway.service.internet_facing and not self.gateway_api_keys:
            raise InvalidSettingError(
                "is required while the gateway's load balancer is internet-facing "
                f"(gateway.service.scheme): anyone could use the model; {API_KEYS_EXAMPLE}",
                at="gatewayApiKeys",
            )
        if gateway.canary is None:
            return
        model = self.gateway_model
        labels = model.labels or {}
        wanted = [("label", gateway.canary.label), ("stableLabel", gateway.canary.stable_label)]
        for key, label in wanted:
            if label and label not in labels:
                raise InvalidSettingError(
                    f"{label!r} is not a version label of model {model.name} (labels: "
                    f"{', '.join(sorted(labels)) or 'none'}); add it to the model's labels",
                    at=f"gateway.canary.{key}",
                )

    def _check_memory(self) -> None:
        # Every loaded version is in memory, and a reload (a new version, a config change) holds
        # the old and the new copy of a model at once (tensorflow/serving#2017).
        sizes = [m.size_bytes for m in self.models]
        need = sum(sizes) + max(sizes)
        have = int(self.server.resources.requests.memory.amount)
        if need > have:
            raise InvalidSettingError(
                f"({self.server.resources.requests.memory}) is below what the models need: "
                f"{need // 2**20}Mi = the loaded versions ({sum(sizes) // 2**20}Mi) plus a second "
                f"copy of the largest while it reloads ({max(sizes) // 2**20}Mi)",
                at="server.resources.requests.memory",
            )

    @property
    def models(self) -> tuple[ModelSettings, ...]:
        """Every model TF Serving serves, in order."""
        if self.model_list is not None:
            return tuple(self.model_list)
        assert self.single_model is not None  # parse() fills the default in
        return (self.single_model,)

    @property
    def model(self) -> ModelSettings:
        """The first model: the one the gateway calls unless gateway.model says otherwise."""
        return self.models[0]

    @property
    def gateway_model(self) -> ModelSettings:
        """The model the gateway calls."""
        wanted = self.gateway.model_name
        return next((m for m in self.models if m.name == wanted), self.model)


class MinikubeSettings(StackSettings):
    """A laptop cluster: the current minikube profile's context, images in its Docker daemon."""

    target: Literal["minikube"] = "minikube"
    kube_context: str = Field(default="minikube", alias="kubeContext")

    @model_validator(mode="before")
    @classmethod
    def _no_s3(cls, data: Any) -> Any:
        # Before the models are validated: the first thing to say is that s3 cannot work here.
        if not isinstance(data, dict):
            return data
        entries = [("model", data.get("model"))] + [
            (f"models.{i}", m) for i, m in enumerate(data.get("models") or [])
        ]
        for key, model in entries:
            if isinstance(model, dict) and model.get("source") == ModelSource.S3.value:
                raise InvalidSettingError(
                    "must not be s3 on minikube: the model is copied from S3 with the pod's EKS "
                    "Pod Identity role, which only target eks has; use source configmap (up to "
                    "1 MiB) or image here",
                    at=f"{key}.source",
                )
        return data

    @model_validator(mode="after")
    def _laptop(self) -> Self:
        if self.server.gpu:
            raise InvalidSettingError(
                "only applies to target eks: this project schedules GPU pods onto NVIDIA node "
                "groups or an Auto Mode GPU NodePool, which minikube does not have; serve on "
                "CPUs here (server.gpu: 0)",
                at="server.gpu",
            )
        for key, service in (("service", self.service), ("gateway.service", self.gateway.service)):
            if service.load_balancer:
                raise InvalidSettingError(
                    "must not be LoadBalancer on minikube: it never gets an address unless "
                    "`minikube tunnel` runs, and pulumi up would wait for it until it times out; "
                    "use NodePort (or ClusterIP behind the gateway)",
                    at=f"{key}.type",
                )
        return self


class EksSettings(StackSettings):
    """An EKS cluster of its own, with ECR for the images."""

    target: Literal["eks"]
    cluster: ClusterSettings = ClusterSettings()
    registry: RegistrySettings = RegistrySettings()

    @model_validator(mode="after")
    def _gpu_compute(self) -> Self:
        gpus, cluster = self.server.gpu, self.cluster
        if cluster.compute is Compute.NODE_GROUPS:
            if gpus and not cluster.gpu_groups:
                raise InvalidSettingError(
                    f"is {gpus} but no node group has GPUs: add a group with gpu: true and an "
                    "NVIDIA instance type (e.g. g5.xlarge, minSize 0), or use compute: autoMode",
                    at="server.gpu",
                )
            if cluster.gpu_groups and not gpus:
                index = cluster.node_groups.index(cluster.gpu_groups[0])
                raise InvalidSettingError(
                    "is true but nothing asks for a GPU (server.gpu is 0): the GPU nodes would "
                    "sit idle and be billed; set server.gpu or drop the group",
                    at=f"cluster.nodeGroups.{index}.gpu",
                )
        if (
            cluster.compute is Compute.NODE_GROUPS
            and self.service.tls is not None
            and self.service.grpc_on_service
        ):
            raise InvalidSettingError(
                "must be false with tls in compute nodeGroups: gRPC over TLS needs ALPN (h2), "
                "which the AWS cloud provider's load balancer cannot negotiate; TLS then covers "
                "REST only (exposeGrpc: false, gRPC stays in the cluster), or use compute: "
                "autoMode, whose load balancer negotiates h2",
                at="service.exposeGrpc",
            )
        if (
            cluster.compute is not Compute.NODE_GROUPS
            and cluster.gpu_node_pool is not None
            and not gpus
        ):
            raise InvalidSettingError(
                "only applies when server.gpu > 0 (the GPU NodePool serves the model server)",
                at="cluster.gpuNodePool",
            )
        return self


# kind's own rule for cluster names (sigs.k8s.io/kind pkg/internal/apis/config/validate.go); the
# name also becomes part of container and context names, so keep it short.
_KIND_NAME = re.compile(r"^[a-z0-9.-]{1,40}$")


class KindSettings(StackSettings):
    """A laptop cluster made by kind (Kubernetes in Docker): its context, images loaded into it.

    kind names a cluster's kubeconfig context `kind-<name>`; `kubeContext` follows `clusterName`
    unless given, and must agree with it (images are loaded with `kind load docker-image --name
    <clusterName>`, objects go to the context: two different clusters would mean pods whose images
    are elsewhere). Like minikube it has no cloud load balancer and no GPUs.
    """

    target: Literal["kind"]
    cluster_name: str = Field(default="tfserving", alias="clusterName")
    kube_context: str = Field(default="kind-tfserving", alias="kubeContext")

    @model_validator(mode="before")
    @classmethod
    def _kind_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for key, model in [("model", data.get("model"))] + [
            (f"models.{i}", m) for i, m in enumerate(data.get("models") or [])
        ]:
            if isinstance(model, dict) and model.get("source") == "s3":
                raise InvalidSettingError(
                    "must not be s3 on kind: the model is copied from S3 with the pod's EKS Pod "
                    "Identity role, which only target eks has; use source configmap (up to 1 MiB) "
                    "or image here",
                    at=f"{key}.source",
                )
        name = data.get("clusterName")
        if isinstance(name, str) and "kubeContext" not in data:
            return {**data, "kubeContext": f"kind-{name}"}
        return data

    @model_validator(mode="after")
    def _kind_cluster(self) -> Self:
        if not _KIND_NAME.fullmatch(self.cluster_name):
            raise InvalidSettingError(
                "must be 1-40 lowercase letters, digits, '.' or '-' (kind's rule for cluster "
                f"names), got {self.cluster_name!r}",
                at="clusterName",
            )
        if self.kube_context != f"kind-{self.cluster_name}":
            raise InvalidSettingError(
                f"must be kind-{self.cluster_name} (kind names the context of cluster "
                f"{self.cluster_name!r} so), got {self.kube_context!r}: images are loaded into "
                "clusterName and objects sent to kubeContext, which must be the same cluster; set "
                "clusterName alone",
                at="kubeContext",
            )
        if self.server.gpu:
            raise InvalidSettingError(
                "only applies to target eks: kind's nodes are Docker containers without NVIDIA "
                "GPUs for this project to schedule on; serve on CPUs here (server.gpu: 0)",
                at="server.gpu",
            )
        for key, service in (("service", self.service), ("gateway.service", self.gateway.service)):
            if service.load_balancer:
                raise InvalidSettingError(
                    "must not be LoadBalancer on kind: it never gets an address unless "
                    "cloud-provider-kind runs, and pulumi up would wait for it until it times out; "
                    "use NodePort (mapped to 127.0.0.1 by tools/kind/cluster.yaml) or ClusterIP "
                    "behind the gateway",
                    at=f"{key}.type",
                )
        return self


Settings = MinikubeSettings | KindSettings | EksSettings
TARGETS: dict[str, type[StackSettings]] = {
    "minikube": MinikubeSettings,
    "kind": KindSettings,
    "eks": EksSettings,
}
