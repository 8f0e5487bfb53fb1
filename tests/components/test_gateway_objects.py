"""The Gateway component built alone, object by object: its environment through the gateway's
contract, a hardened Deployment that drains, its Service, egress to DNS, TF Serving, downloads.
"""

from typing import Any

import pulumi

from components import kube
from components.gateway import Gateway, GatewayArgs, egress_rules, gateway_drain
from config.gateway import ApiKeys, GatewaySettings
from tests.components.mocked import SECRET_SIG, SIG_KEY, Registered, plain, register

ARN = "arn:aws:acm:us-east-1:123456789012:certificate/0123abcd-0123-4567-89ab-0123456789ab"
SELECTOR = {
    "app.kubernetes.io/name": "gateway",
    "app.kubernetes.io/instance": "tfserving",
    "app.kubernetes.io/part-of": "tfserving",
}
TARGET = "dns:///tfserving-grpc-1.models.svc.cluster.local:8500"
TFS_PODS = {"app": "tfs"}
BALANCER = kube.LoadBalancer({"lb": "1"}, None, ("10.0.0.0/16",), 20)
PRIVATE = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16",
           "127.0.0.0/8", "0.0.0.0/8"]  # fmt: skip
DNS = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}
TF_SERVING = {
    "to": [{"podSelector": {"matchLabels": TFS_PODS}}],
    "ports": [{"protocol": "TCP", "port": "grpc"}],
}
METRICS_FROM_MONITORING = {
    "ports": [{"protocol": "TCP", "port": "metrics"}],
    "from": [
        {
            "namespaceSelector": {
                "matchExpressions": [
                    {
                        "key": "kubernetes.io/metadata.name",
                        "operator": "In",
                        "values": ["monitoring"],
                    }
                ]
            }
        }
    ],
}
INTERNET = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": PRIVATE}}]}
INTERNAL_WEB = {
    "to": [{"ipBlock": {"cidr": cidr}} for cidr in PRIVATE],
    "ports": [{"protocol": "TCP", "port": 80}, {"protocol": "TCP", "port": 443}],
}


def settings(**data: Any) -> GatewaySettings:
    return GatewaySettings.model_validate({"enabled": True, **data})


def args(
    gateway: GatewaySettings, balancer: kube.LoadBalancer | None = None, **more: Any
) -> GatewayArgs:
    return GatewayArgs(
        namespace="models",
        settings=gateway,
        model_name="m",
        tf_serving_target=TARGET,
        image="reg/gw:1",
        version="1.2",
        tf_serving_pods=TFS_PODS,
        load_balancer=balancer,
        **more,
    )


def build(gateway: GatewaySettings, balancer: kube.LoadBalancer | None = None) -> Registered:
    def program() -> dict[str, Any]:
        nodes = pulumi.CustomResource("test:index:Nodes", "nodes")
        made = Gateway("tfserving", args(gateway, balancer, depends_on=[nodes]))
        return {
            "service": made.service_name,
            "deployment": made.deployment_name,
            "hpa": made.hpa_name,
            "service_urn": made.service.urn,
        }

    return register(program)


def labels() -> dict[str, str]:
    return {
        **SELECTOR,
        "app.kubernetes.io/component": "gateway",
        "app.kubernetes.io/version": "1.2",
        "app.kubernetes.io/managed-by": "pulumi",
    }


def probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def test_a_gateway_behind_a_tls_load_balancer_with_internal_downloads():
    gateway = settings(
        allowedInternal=["10.1.0.0/16", "images.internal"],
        service={"type": "LoadBalancer", "tls": {"certificateArn": ARN}},
        autoscaling={"minReplicas": 2, "maxReplicas": 6},
        downloadTimeoutSeconds=7.5,
        modelDeadlineSeconds=4,
    )
    done = build(gateway, BALANCER)
    component = done.one("tfserving:index:Gateway", "tfserving")
    kinds = sorted(
        (r["type"], r["name"]) for r in done.records if r["type"].startswith("kubernetes:")
    )
    assert kinds == sorted(
        (f"kubernetes:{kind}", "tfserving-gateway" + suffix)
        for kind, suffix in [
            ("core/v1:ConfigMap", "-env"),
            ("apps/v1:Deployment", ""),
            ("core/v1:Service", ""),
            ("networking.k8s.io/v1:NetworkPolicy", ""),
            ("autoscaling/v2:HorizontalPodAutoscaler", ""),
            ("policy/v1:PodDisruptionBudget", ""),
        ]
    )
    for record in done.records:
        if record["type"].startswith("kubernetes:"):
            assert record["parent"] == component["urn"], record["name"]
            assert done.urn("nodes") in record["dependencies"], record["name"]
            assert record["inputs"]["metadata"]["namespace"] == "models"
            assert record["inputs"]["metadata"]["labels"] == labels()
    env = done.one("kubernetes:core/v1:ConfigMap", "tfserving-gateway-env")
    assert env["inputs"]["data"] == {
        "GATEWAY_ALLOWED_INTERNAL": "10.1.0.0/16,images.internal",
        "GATEWAY_DOWNLOAD_TIMEOUT_SECONDS": "7.5",
        "GATEWAY_IMAGE_SIZE": "299",
        "GATEWAY_INPUT_NAME": "input_8",
        "GATEWAY_MAX_DOWNLOAD_BYTES": "10485760",
        "GATEWAY_MAX_IN_FLIGHT": "16",
        "GATEWAY_MODEL_DEADLINE_SECONDS": "4",
        "GATEWAY_MODEL_NAME": "m",
        "GATEWAY_OUTPUT_NAME": "dense_7",
        "GATEWAY_PREPROCESSING": "xception",
        "GATEWAY_SIGNATURE_NAME": "serving_default",
        "GATEWAY_SOFTMAX": "true",
        "GATEWAY_TF_SERVING_TARGET": TARGET,
        "GATEWAY_TOP_K": "3",
        "GATEWAY_WORKER_THREADS": "1",
        "PORT": "9696",
    }
    deployment = done.one("kubernetes:apps/v1:Deployment", "tfserving-gateway")
    assert env["urn"] in deployment["dependencies"]
    assert deployment["inputs"]["spec"] == {
        "selector": {"matchLabels": SELECTOR},
        "strategy": plain(kube.rolling_update()),
        "revisionHistoryLimit": 5,
        "template": {
            "metadata": {
                "labels": labels(),
                "annotations": {
                    "prometheus.io/scrape": "true",
                    "prometheus.io/port": "9697",
                    "prometheus.io/path": "/metrics",
                },
            },
            "spec": {
                "automountServiceAccountToken": False,
                "securityContext": plain(kube.pod_security_context()),
                # 10 s for the endpoints + 20 s for the load balancer, then a download and a
                # model call at most (7.5 + 4 s, rounded up) and 10 s to exit
                "terminationGracePeriodSeconds": 52,
                "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                "containers": [
                    {
                        "name": "gateway",
                        "image": "reg/gw:1",
                        "envFrom": [{"configMapRef": {"name": env["state"]["metadata"]["name"]}}],
                        "ports": [
                            {"name": "http", "containerPort": 9696},
                            {"name": "metrics", "containerPort": 9697},
                        ],
                        "resources": {
                            "requests": {"cpu": "250m", "memory": "128Mi"},
                            "limits": {"cpu": "1", "memory": "512Mi"},
                        },
                        "startupProbe": probe("/healthz", 2, 30),
                        "readinessProbe": probe("/readyz", 5, 2),
                        "livenessProbe": probe("/healthz", 10, 3),
                        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "30"]}}},
                        "securityContext": plain(kube.container_security_context()),
                        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                    }
                ],
            },
        },
    }
    service = done.one("kubernetes:core/v1:Service", "tfserving-gateway")["inputs"]
    assert service["metadata"]["annotations"] == {"lb": "1"}
    assert service["spec"] == {
        "type": "LoadBalancer",
        "selector": SELECTOR,
        "ports": [{"name": "http", "port": 443, "targetPort": "http"}],
        "loadBalancerSourceRanges": ["10.0.0.0/16"],
    }
    policy = done.one("kubernetes:networking.k8s.io/v1:NetworkPolicy", "tfserving-gateway")[
        "inputs"
    ]
    assert policy["spec"] == {
        "podSelector": {"matchLabels": SELECTOR},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"ports": [{"protocol": "TCP", "port": "http"}]}, METRICS_FROM_MONITORING],
        "egress": [
            DNS,
            TF_SERVING,
            INTERNET,
            {"to": [{"ipBlock": {"cidr": "10.1.0.0/16"}}]},
            INTERNAL_WEB,
        ],
    }
    hpa = done.one("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "tfserving-gateway")[
        "inputs"
    ]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 6)
    assert (
        hpa["scaleTargetRef"]["name"]
        == done.outputs["deployment"]
        == deployment["state"]["metadata"]["name"]
    )
    assert done.one("kubernetes:policy/v1:PodDisruptionBudget")["inputs"]["spec"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": SELECTOR},
    }
    assert (
        done.outputs["service"]
        == done.one("kubernetes:core/v1:Service")["state"]["metadata"]["name"]
    )
    assert (
        done.outputs["hpa"]
        == done.one("kubernetes:autoscaling/v2:HorizontalPodAutoscaler")["state"]["metadata"][
            "name"
        ]
    )
    assert done.outputs["service_urn"] == done.one("kubernetes:core/v1:Service")["urn"]
    assert done.registered_outputs("tfserving:index:Gateway", "tfserving") == {
        "serviceName": done.outputs["service"],
        "deploymentName": done.outputs["deployment"],
        "hpaName": done.outputs["hpa"],
    }


def test_a_node_port_gateway_on_plain_http_with_one_pod_at_least():
    done = build(settings(service={"type": "NodePort", "nodePort": 30002}), BALANCER)
    service = done.one("kubernetes:core/v1:Service", "tfserving-gateway")["inputs"]
    assert "annotations" not in service["metadata"]
    assert service["spec"] == {
        "type": "NodePort",
        "selector": SELECTOR,
        "ports": [{"name": "http", "port": 80, "targetPort": "http", "nodePort": 30002}],
    }
    pod = done.one("kubernetes:apps/v1:Deployment")["inputs"]["spec"]["template"]["spec"]
    # no load balancer to leave: 10 s, then a 10 s download, a 5 s model call and 10 s to exit
    assert pod["terminationGracePeriodSeconds"] == 35
    assert pod["containers"][0]["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", "10"]}}}
    assert done.of("kubernetes:policy/v1:PodDisruptionBudget") == []
    env = done.one("kubernetes:core/v1:ConfigMap")["inputs"]["data"]
    assert "GATEWAY_ALLOWED_INTERNAL" not in env and "GATEWAY_LABELS" not in env


def test_downloads_go_to_the_internet_and_to_allowed_internal_networks_only():
    def egress(allowed: list[str]) -> Any:
        return register(
            lambda: {"rules": plain(egress_rules(args(settings(allowedInternal=allowed))))}
        ).outputs["rules"]

    assert egress([]) == [DNS, TF_SERVING, INTERNET]
    assert egress(["10.1.2.0/24", "192.168.7.7"]) == [
        DNS,
        TF_SERVING,
        INTERNET,
        {"to": [{"ipBlock": {"cidr": "10.1.2.0/24"}}, {"ipBlock": {"cidr": "192.168.7.7/32"}}]},
    ]
    # a NetworkPolicy cannot name hosts: allowed names open the private ranges on web ports
    assert egress(["images.internal"]) == [DNS, TF_SERVING, INTERNET, INTERNAL_WEB]


def test_the_drain_covers_the_load_balancer_only_when_behind_one():
    behind = args(settings(service={"type": "LoadBalancer"}), BALANCER)
    assert (gateway_drain(behind).pause_seconds, gateway_drain(behind).grace_seconds) == (30, 55)
    node_port = args(settings(), BALANCER)
    assert (gateway_drain(node_port).pause_seconds, gateway_drain(node_port).grace_seconds) == (
        10,
        35,
    )


def test_api_keys_are_a_secret_of_the_gateway_in_its_namespace():
    keys = ("k" * 32, "m" * 40)

    def program() -> dict[str, Any]:
        nodes = pulumi.CustomResource("test:index:Nodes", "nodes")
        made = Gateway(
            "tfserving", args(settings(), None, api_keys=ApiKeys(keys), depends_on=[nodes])
        )
        return {"deployment": made.deployment_name}

    done = register(program)
    component = done.one("tfserving:index:Gateway", "tfserving")
    secret = done.one("kubernetes:core/v1:Secret", "tfserving-gateway-api-keys")
    assert secret["parent"] == component["urn"]
    assert done.urn("nodes") in secret["dependencies"]
    assert secret["inputs"]["metadata"] == {
        "name": "tfserving-gateway-api-keys",
        "namespace": "models",
        "labels": labels(),
    }
    assert secret["inputs"]["type"] == "Opaque"
    # Kept secret in Pulumi's state: the whole of stringData is a secret value.
    assert secret["inputs"]["stringData"] == {
        SIG_KEY: SECRET_SIG,
        "value": {"keys": "\n".join(keys) + "\n"},
    }
