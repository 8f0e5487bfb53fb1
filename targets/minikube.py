"""Target minikube: a laptop cluster, Services on NodePorts, images in minikube's Docker daemon."""

import pulumi_kubernetes as k8s

from config.settings import MinikubeSettings
from targets.base import Platform
from targets.laptop import local_image, node_port_exposure


def minikube(settings: MinikubeSettings) -> Platform:
    """The current minikube context; NodePort Services reached at `minikube ip`.

    Images are built into the Docker daemon the shell points at: `make up` runs
    `eval $(minikube -p <profile> docker-env)` first, so they land on the minikube node and no
    registry is needed.
    """
    provider = k8s.Provider("minikube", context=settings.kube_context)
    profile = settings.kube_context
    expose = node_port_exposure(profile, f"$(minikube -p {profile} ip)")
    return Platform(provider=provider, build_image=local_image, expose=expose)
