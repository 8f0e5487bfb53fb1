"""What the laptop targets (minikube, kind) share: local images and node-port commands."""

import re
from collections.abc import Callable

import pulumi

import outputs
from components import kube
from components.container_image import ContainerImage, ContainerImageArgs, ImageBuild
from config.service import ServiceType
from targets.base import Exposure, url


def local_repository(name: str) -> str:
    """A plain local image name: no registry, the tag is the content hash."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def local_image(name: str, build: ImageBuild) -> ContainerImage:
    """Built into the local Docker daemon (the target gets it onto its node)."""
    return ContainerImage(name, ContainerImageArgs(repository=local_repository(name), build=build))


def node_port_exposure(
    context: str, host: str
) -> Callable[[Exposure], dict[str, pulumi.Input[str]]]:
    """Commands that print each URL (the node port asked of the cluster, since Kubernetes may
    assign it, on `host`) and a port-forward that works with any Service type."""

    def expose(exposure: Exposure) -> dict[str, pulumi.Input[str]]:
        name = kube.name_of(exposure.service)
        kubectl = pulumi.Output.format("kubectl --context {0} -n {1}", context, exposure.namespace)
        ports = {e.port for e in exposure.urls.values()}
        found: dict[str, pulumi.Input[str]] = {
            exposure.port_forward_output: pulumi.Output.format(
                "{0} port-forward svc/{1} {2}",
                kubectl,
                name,
                " ".join(f"{outputs.local_port(p)}:{p}" for p in sorted(ports)),
            )
        }
        if exposure.service_type is ServiceType.NODE_PORT:
            for output, endpoint in exposure.urls.items():
                node_port = pulumi.Output.format(
                    "$({0} get svc {1} -o jsonpath='{{.spec.ports[?(@.name==\"{2}\")].nodePort}}')",
                    kubectl,
                    name,
                    endpoint.port_name,
                )
                address = url(endpoint, host, node_port)
                found[outputs.command(output)] = pulumi.Output.format('echo "{0}"', address)
        return found

    return expose
