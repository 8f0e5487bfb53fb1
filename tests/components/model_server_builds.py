"""The ModelServer component built alone, for the tests of its objects: the build, the
labels, probes and checks every exposure shares."""

from typing import Any

import pulumi

from components import kube
from components import tfserving_config as tfs
from components.model_server import ModelServer, ModelServerArgs
from config.model import ModelSettings
from config.service import ModelServiceSettings
from config.workload import AutoscalingSettings, ServerSettings
from tests.components.mocked import Registered, register

SELECTOR = {
    "app.kubernetes.io/name": "model-server",
    "app.kubernetes.io/instance": "tfserving",
    "app.kubernetes.io/part-of": "tfserving",
}
GATEWAY = {"app": "gw"}
BALANCER = kube.LoadBalancer({"lb": "yes"}, "eks.amazonaws.com/nlb", ("10.0.0.0/16",), 20)
PROBE_PATH = "/v1/models/{}"
KIND = {
    "ns": "kubernetes:core/v1:Namespace",
    "cm": "kubernetes:core/v1:ConfigMap",
    "sa": "kubernetes:core/v1:ServiceAccount",
    "deploy": "kubernetes:apps/v1:Deployment",
    "svc": "kubernetes:core/v1:Service",
    "netpol": "kubernetes:networking.k8s.io/v1:NetworkPolicy",
    "hpa": "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
    "pdb": "kubernetes:policy/v1:PodDisruptionBudget",
}


def labels(version: str) -> dict[str, str]:
    return {
        **SELECTOR,
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/version": version,
        "app.kubernetes.io/managed-by": "pulumi",
    }


def build(
    models: list[ModelSettings],
    service: dict[str, Any],
    server: dict[str, Any] | None = None,
    **args: Any,
) -> Registered:
    def program() -> dict[str, Any]:
        nodes = pulumi.CustomResource("test:index:Nodes", "nodes")
        made = ModelServer(
            "tfserving",
            ModelServerArgs(
                namespace="models",
                models=models,
                server=ServerSettings.model_validate(server or {}),
                service=ModelServiceSettings.model_validate(service),
                autoscaling=args.pop("autoscaling", AutoscalingSettings()),
                depends_on=[nodes],
                **args,
            ),
        )
        return {
            "namespace": made.namespace,
            "service": made.service_name,
            "grpc": made.grpc_service_name,
            "deployment": made.deployment_name,
            "hpa": made.hpa_name,
            "address": made.grpc_address,
            "service_urn": made.service.urn,
        }

    return register(program)


def objects(done: Registered) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["type"], r["name"]): r for r in done.records if r["type"].startswith("kubernetes:")}


def name(done: Registered, kind: str, logical: str) -> str:
    return str(objects(done)[(KIND[kind], logical)]["state"]["metadata"]["name"])


def check_common(done: Registered, version: str) -> None:
    """What every model server has, whatever its models and exposure."""
    component = done.one("tfserving:index:ModelServer", "tfserving")
    nodes = done.urn("nodes")
    for record in objects(done).values():
        assert record["parent"] == component["urn"], record["name"]
        assert nodes in record["dependencies"], record["name"]
        if record["type"] != KIND["ns"]:
            assert record["inputs"]["metadata"]["namespace"] == "models", record["name"]
            assert record["inputs"]["metadata"]["labels"] == labels(version), record["name"]
    namespace = done.one(KIND["ns"], "tfserving-namespace")["inputs"]["metadata"]
    assert namespace == {
        "name": "models",
        "labels": {
            **labels(version),
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/warn": "restricted",
            "pod-security.kubernetes.io/audit": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
        },
    }
    grpc = done.one(KIND["svc"], "tfserving-grpc")["inputs"]
    assert grpc["spec"] == {
        "clusterIP": "None",
        "selector": SELECTOR,
        "ports": [{"name": "grpc", "port": 8500, "targetPort": "grpc"}],
    }
    deny = done.one(KIND["netpol"], "tfserving-default-deny")["inputs"]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    hpa = done.one(KIND["hpa"], "tfserving-server")["inputs"]["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": done.outputs["deployment"],
    }
    assert done.outputs["namespace"] == "models"
    assert done.outputs["service"] == name(done, "svc", "tfserving-server")
    assert done.outputs["grpc"] == name(done, "svc", "tfserving-grpc")
    assert done.outputs["deployment"] == name(done, "deploy", "tfserving-server")
    assert done.outputs["hpa"] == name(done, "hpa", "tfserving-server")
    assert done.outputs["address"] == f"dns:///{done.outputs['grpc']}.models.svc.cluster.local:8500"
    assert done.outputs["service_urn"] == done.one(KIND["svc"], "tfserving-server")["urn"]
    monitoring = done.one(KIND["cm"], "tfserving-monitoring")["inputs"]["data"]
    assert monitoring["monitoring.config"] == tfs.monitoring_config()
    assert done.registered_outputs("tfserving:index:ModelServer", "tfserving") == {
        "namespace": "models",
        "serviceName": done.outputs["service"],
        "grpcServiceName": done.outputs["grpc"],
        "deploymentName": done.outputs["deployment"],
        "hpaName": done.outputs["hpa"],
        "grpcAddress": done.outputs["address"],
    }


def container(done: Registered) -> dict[str, Any]:
    (only,) = done.one(KIND["deploy"], "tfserving-server")["inputs"]["spec"]["template"]["spec"][
        "containers"
    ]
    return only


def probes(model: str) -> dict[str, Any]:
    path = PROBE_PATH.format(model)
    return {
        "startupProbe": {
            "httpGet": {"path": path, "port": "http"},
            "periodSeconds": 5,
            "timeoutSeconds": 5,
            "failureThreshold": 60,
        },
        "readinessProbe": {
            "httpGet": {"path": path, "port": "http"},
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "tcpSocket": {"port": "grpc"},
            "periodSeconds": 20,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
    }


PORTS = [{"name": "grpc", "containerPort": 8500}, {"name": "http", "containerPort": 8501}]
CONFIG_MOUNTS = [
    {"name": "config", "mountPath": "/etc/tfserving", "readOnly": True},
    {"name": "tmp", "mountPath": "/tmp"},
]
