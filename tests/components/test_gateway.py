"""The gateway tier as rendered from the `gateway` stack (and on eks), names and wiring real."""

import pytest

from tests.conftest import PROJECT_ROOT, objects_of, one, one_resource, resources_of
from tools.render import render_stack

GATEWAY_STACK = PROJECT_ROOT / "Pulumi.gateway.yaml"
SELECTOR = {
    "app.kubernetes.io/name": "gateway",
    "app.kubernetes.io/instance": "tfserving",
    "app.kubernetes.io/part-of": "tfserving",
}


@pytest.fixture(scope="module")
def rendered():
    return render_stack(GATEWAY_STACK)


def _gateway(rendered, kind):
    found = [
        o
        for o in objects_of(rendered, kind)
        if o["metadata"]["labels"]["app.kubernetes.io/name"] == "gateway"
    ]
    assert len(found) == 1, f"expected one gateway {kind}"
    return found[0]


def test_gateway_settings_reach_the_app_as_environment(rendered):
    env = _gateway(rendered, "ConfigMap")["data"]
    headless = one(rendered, "Service", "tfserving-grpc-")["metadata"]["name"]
    target = f"dns:///{headless}.tfserving.svc.cluster.local:8500"
    assert target == rendered.outputs["grpcAddress"]
    labels = (PROJECT_ROOT / "models/shapes/labels.txt").read_text().split()
    assert env == {
        "PORT": "9696",
        "GATEWAY_TF_SERVING_TARGET": target,
        "GATEWAY_MODEL_NAME": "shapes",
        "GATEWAY_SIGNATURE_NAME": "serving_default",
        "GATEWAY_INPUT_NAME": "image",
        "GATEWAY_OUTPUT_NAME": "probabilities",
        "GATEWAY_IMAGE_SIZE": "64",
        "GATEWAY_PREPROCESSING": "unit",
        "GATEWAY_LABELS": ",".join(labels),
        "GATEWAY_SOFTMAX": "false",
        "GATEWAY_TOP_K": "3",
        "GATEWAY_MAX_DOWNLOAD_BYTES": "10485760",
        "GATEWAY_DOWNLOAD_TIMEOUT_SECONDS": "10",
        "GATEWAY_MODEL_DEADLINE_SECONDS": "5",
        # Decode threads follow the CPU limit (1), not the node's cores.
        "GATEWAY_WORKER_THREADS": "1",
        "GATEWAY_MAX_IN_FLIGHT": "16",
    }


def test_gateway_deployment_uses_its_configmap_probes_and_is_hardened(rendered):
    deployment = _gateway(rendered, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env_name = _gateway(rendered, "ConfigMap")["metadata"]["name"]
    assert container["envFrom"] == [{"configMapRef": {"name": env_name}}]

    def probe(path: str, period: int, failures: int) -> dict:
        return {
            "httpGet": {"path": path, "port": "http"},
            "periodSeconds": period,
            "timeoutSeconds": 5,
            "failureThreshold": failures,
        }

    assert container["startupProbe"] == probe("/healthz", 2, 30)
    assert container["readinessProbe"] == probe("/readyz", 5, 2)
    assert container["livenessProbe"] == probe("/healthz", 10, 3)
    # /metrics has a port of its own, which no Service exposes (see test_gateway_access.py).
    assert container["ports"] == [
        {"name": "http", "containerPort": 9696},
        {"name": "metrics", "containerPort": 9697},
    ]
    assert container["resources"] == {
        "requests": {"cpu": "200m", "memory": "128Mi"},
        "limits": {"cpu": "1", "memory": "512Mi"},
    }
    assert container["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert deployment["spec"]["selector"] == {"matchLabels": SELECTOR}
    assert "replicas" not in deployment["spec"]
    # Built into minikube's daemon and run by its content tag.
    assert container["image"].startswith("tfserving-gateway:")
    tag = container["image"].split(":", 1)[1]
    assert deployment["metadata"]["labels"]["app.kubernetes.io/version"] == tag


def test_gateway_service_and_hpa_target_the_gateway(rendered):
    deployment = _gateway(rendered, "Deployment")
    service = _gateway(rendered, "Service")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["type"] == "NodePort"
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "nodePort": 30002}
    ]
    assert service["spec"]["selector"] == SELECTOR
    assert {k: pod_labels[k] for k in SELECTOR} == SELECTOR
    model_pods = one(rendered, "Deployment", "tfserving-server-")
    model_labels = model_pods["spec"]["template"]["metadata"]["labels"]
    assert model_labels["app.kubernetes.io/name"] != SELECTOR["app.kubernetes.io/name"], (
        "the gateway's selector picks no model-server pod"
    )
    hpa = _gateway(rendered, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 5)
    assert rendered.outputs["gatewayHpaName"] == hpa["metadata"]["name"]


def test_model_server_is_internal_when_the_gateway_fronts_it(rendered):
    service = one(rendered, "Service", "tfserving-server-")
    assert service["spec"]["type"] == "ClusterIP"
    assert "predictUrlCommand" not in rendered.outputs
    assert "minikube" in rendered.outputs["gatewayUrlCommand"]
    # Port 80 would need root locally: forwarded from 8080.
    assert rendered.outputs["gatewayPortForwardCommand"].endswith(" 8080:80")


def test_gateway_image_is_built_from_its_own_folder(rendered):
    image = one_resource(rendered, "docker-build:index:Image", "tfserving-gateway")
    assert image["inputs"]["context"] == {"location": "gateway"}
    assert image["inputs"]["dockerfile"]["location"] == "gateway/Dockerfile"
    assert image["inputs"]["push"] is False


def test_gateway_off_by_default(render_dev):
    rendered = render_dev()
    assert [
        o
        for o in rendered.kubernetes_objects
        if o["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "gateway"
    ] == []
    assert resources_of(rendered, "tfserving:index:Gateway") == []


def test_on_eks_the_gateway_image_goes_to_its_own_ecr_repository(render_eks):
    rendered = render_eks(
        {
            "tfserving:gateway": {
                "enabled": True,
                "service": {"type": "LoadBalancer", "allowedSourceRanges": ["198.51.100.0/24"]},
            }
        }
    )
    repositories = [r["name"] for r in resources_of(rendered, "aws:ecr/repository:Repository")]
    assert sorted(repositories) == ["tfserving-gateway", "tfserving-model"]
    image = one_resource(rendered, "docker-build:index:Image", "tfserving-gateway")
    assert image["inputs"]["push"] is True
    service = _gateway(rendered, "Service")
    assert service["spec"]["loadBalancerSourceRanges"] == ["198.51.100.0/24"]
    # internal unless the stack says internet-facing: reachable from the VPC only.
    assert service["metadata"]["annotations"] == {
        "service.beta.kubernetes.io/aws-load-balancer-type": "nlb",
        "service.beta.kubernetes.io/aws-load-balancer-internal": "true",
    }
    (container,) = _gateway(rendered, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert "@sha256:" in container["image"], "pushed images run digest-pinned"
    assert rendered.outputs["gatewayUrl"].startswith("http://")
    node_groups = {r["urn"] for r in resources_of(rendered, "eks:index:ManagedNodeGroup")}
    provider = one_resource(rendered, "pulumi:providers:kubernetes")
    gateway_objects = [
        r
        for r in rendered.resources
        if r["type"].startswith("kubernetes:") and r["parent"].endswith("Gateway::tfserving")
    ]
    assert len(gateway_objects) == 5  # ConfigMap, Deployment, Service, HPA, NetworkPolicy
    for resource in gateway_objects:
        assert node_groups and node_groups <= set(resource["dependencies"]), resource["name"]
        assert resource["provider"].rsplit("::", 1)[0] == provider["urn"], resource["name"]


def test_every_gateway_object_is_a_child_on_the_targets_provider(rendered):
    component = one_resource(rendered, "tfserving:index:Gateway")
    provider = one_resource(rendered, "pulumi:providers:kubernetes")
    children = [r for r in rendered.resources if r["parent"] == component["urn"]]
    kinds = sorted(r["type"].rsplit(":", 1)[1] for r in children if r["custom"])
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "Service",
    ]
    for child in children:
        assert child["provider"].rsplit("::", 1)[0] == provider["urn"], child["name"]
