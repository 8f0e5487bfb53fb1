"""Target minikube: a laptop cluster, Services on NodePorts, images in minikube's Docker daemon."""

import re

import pulumi
import pulumi_kubernetes as k8s

import outputs
from components import kube
from components.container_image import ContainerImage, ContainerImageArgs, ImageBuild
from config.service import ServiceType
from config.settings import MinikubeSettings
from targets.base import Exposure, Platform, url


def minikube(settings: MinikubeSettings) -> Platform:
    """The current minikube context; NodePort Services reached at `minikube ip`.

    Images are built into the Docker daemon the shell points at: `make up` runs
    `eval $(minikube -p <profile> docker-env)` first, so they land on the minikube node and no
    registry is needed.
    """
    provider = k8s.Provider("minikube", context=settings.kube_context)
    profile = settings.kube_context

    def build_image(name: str, build: ImageBuild) -> ContainerImage:
        return ContainerImage(
            name,
            ContainerImageArgs(
                repository=re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"), build=build
            ),
        )

    def expose(exposure: Exposure) -> dict[str, pulumi.Input[str]]:
        name = kube.name_of(exposure.service)
        kubectl = pulumi.Output.format("kubectl --context {0} -n {1}", profile, exposure.namespace)
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
                # The node port may be assigned by Kubernetes: ask the cluster, don't guess.
                node_port = pulumi.Output.format(
                    "$({0} get svc {1} -o jsonpath='{{.spec.ports[?(@.name==\"{2}\")].nodePort}}')",
                    kubectl,
                    name,
                    endpoint.port_name,
                )
                address = url(endpoint, f"$(minikube -p {profile} ip)", node_port)
                found[outputs.command(output)] = pulumi.Output.format('echo "{0}"', address)
        return found

    return Platform(provider=provider, build_image=build_image, expose=expose)
