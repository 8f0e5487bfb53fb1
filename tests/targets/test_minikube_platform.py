"""Target minikube as the program uses it: its provider, images named for the local daemon, and
the commands that print a Service's addresses (the node port asked of the cluster, never guessed).
"""

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from components.container_image import ContainerImage, ImageBuild
from config.service import ServiceType
from targets import Endpoint, Exposure, Platform
from tests.targets.support import on_platform, service

URLS = {
    "predictUrl": Endpoint("http", 8501, "/v1/models/m:predict"),
    "grpcExternalAddress": Endpoint("grpc", 8500, scheme=""),
}


def on_minikube(
    use: Callable[[Platform], Mapping[str, Any]], config: dict[str, Any] | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    return on_platform(use, config or {})


def name_of(records: list[dict[str, Any]], name: str) -> str:
    (record,) = [r for r in records if r["name"] == name and r["custom"]]
    return str(record["state"]["metadata"]["name"])


def test_objects_go_to_the_stacks_kube_context():
    context = {"tfserving:kubeContext": "lab"}
    records, found = on_minikube(lambda p: {"provider": p.provider.urn}, context)
    (provider,) = [r for r in records if r["type"] == "pulumi:providers:kubernetes"]
    assert (provider["name"], provider["inputs"]) == ("minikube", {"context": "lab"})
    assert found["provider"] == provider["urn"]


def test_the_platform_has_no_cloud_parts():
    _, found = on_minikube(lambda p: {"platform": p.expose is not None})
    assert found == {"platform": True}

    def parts(platform: Platform) -> dict[str, Any]:
        return {
            "load_balancer": platform.load_balancer is None,
            "grant": platform.grant_model_access is None,
            "region": platform.region,
            "depends_on": list(platform.depends_on),
            "outputs": dict(platform.outputs),
        }

    _, found = on_minikube(parts)
    assert found == {
        "load_balancer": True,
        "grant": True,
        "region": None,
        "depends_on": [],
        "outputs": {},
    }


def test_images_are_loaded_into_the_local_daemon_under_a_plain_name(tmp_path: Path):
    build = ImageBuild(context=tmp_path, dockerfile_inline="FROM busybox:1.36\n")
    made: list[ContainerImage] = []

    def use(platform: Platform) -> dict[str, Any]:
        made.append(platform.build_image("--My_Model Image--", build))
        return {"ref": made[0].ref, "repository": made[0].repository}

    records, found = on_minikube(use)
    tag = made[0].tag
    assert found == {"ref": f"my-model-image:{tag}", "repository": "my-model-image"}
    (image,) = [r for r in records if r["type"] == "docker-build:index:Image"]
    assert image["name"] == "--My_Model Image--"
    assert image["inputs"]["tags"] == [f"my-model-image:{tag}"]
    assert image["inputs"]["push"] is False
    assert "registries" not in image["inputs"]


def test_a_node_port_service_gets_commands_that_print_its_addresses():
    def use(platform: Platform) -> dict[str, Any]:
        exposure = Exposure(service(platform), "models", ServiceType.NODE_PORT, URLS, "forward")
        return platform.expose(exposure)

    records, found = on_minikube(use, {"tfserving:kubeContext": "lab"})
    svc = name_of(records, "svc")
    kubectl = "kubectl --context lab -n models"

    def node_port(port: str) -> str:
        jsonpath = f'{{.spec.ports[?(@.name=="{port}")].nodePort}}'
        return f"$({kubectl} get svc {svc} -o jsonpath='{jsonpath}')"

    assert found == {
        "forward": f"{kubectl} port-forward svc/{svc} 8500:8500 8501:8501",
        "predictUrlCommand": (
            f'echo "http://$(minikube -p lab ip):{node_port("http")}/v1/models/m:predict"'
        ),
        "grpcExternalAddressCommand": f'echo "$(minikube -p lab ip):{node_port("grpc")}"',
    }


def test_a_cluster_ip_service_is_reached_by_port_forward_only():
    urls = {"gatewayUrl": Endpoint("http", 80)}

    def use(platform: Platform) -> dict[str, Any]:
        exposure = Exposure(
            service(platform, "ClusterIP"), "ns", ServiceType.CLUSTER_IP, urls, "fwd"
        )
        return platform.expose(exposure)

    records, found = on_minikube(use)
    # ports below 1024 need root locally: 80 is forwarded from 8080
    svc = name_of(records, "svc")
    assert found == {"fwd": f"kubectl --context minikube -n ns port-forward svc/{svc} 8080:80"}
