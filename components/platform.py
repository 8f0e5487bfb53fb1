"""Where the model server runs: one function per target, each returning the same shape.

A target supplies the Kubernetes provider, what every object must wait for, how the Service is
exposed, and how users reach the endpoint. `__main__.py` picks one by `tfserving:target`.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.model_server import REST_PORT, ModelServer
from components.settings import ServiceType, Settings, Target


@dataclass(frozen=True)
class Platform:
    provider: k8s.Provider
    # Objects on the cluster wait for these, so destroy deletes them before the cluster goes.
    depends_on: Sequence[pulumi.Resource] = ()
    service_annotations: Mapping[str, str] = field(default_factory=dict)
    # A model image built for this stack (source `image`); None runs the stock server image.
    model_image: pulumi.Input[str] | None = None
    # Stack outputs that only this target can give (cluster name, how to reach the endpoint, ...).
    endpoints: Callable[[ModelServer], Mapping[str, pulumi.Input[str]]] = lambda _: {}


def minikube(settings: Settings) -> Platform:
    """A laptop cluster: the current minikube context, the Service on a NodePort."""
    provider = k8s.Provider("minikube", context=settings.kube_context)
    profile = settings.kube_context
    name = settings.model.name

    def endpoints(server: ModelServer) -> dict[str, pulumi.Input[str]]:
        kubectl = pulumi.Output.format("kubectl --context {0} -n {1}", profile, server.namespace)
        found: dict[str, pulumi.Input[str]] = {
            "portForwardCommand": pulumi.Output.format(
                "{0} port-forward svc/{1} {2}:{2}", kubectl, server.service_name, REST_PORT
            )
        }
        if settings.service.type is ServiceType.NODE_PORT:
            # The node port may be assigned by Kubernetes, so ask the cluster rather than guess.
            found["predictUrlCommand"] = pulumi.Output.format(
                'echo "http://$(minikube -p {0} ip):$({1} get svc {2} '
                "-o jsonpath='{{.spec.ports[?(@.name==\"http\")].nodePort}}')"
                '/v1/models/{3}:predict"',
                profile,
                kubectl,
                server.service_name,
                name,
            )
        return found

    return Platform(provider=provider, endpoints=endpoints)


def platform_for(settings: Settings) -> Platform:
    if settings.target is Target.MINIKUBE:
        return minikube(settings)
    raise NotImplementedError(f"target {settings.target.value} is not available yet")
