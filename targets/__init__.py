"""Where the system runs: one module per target, each returning the same `Platform` shape."""

from typing import assert_never

from config.settings import EksSettings, KindSettings, MinikubeSettings, Settings
from targets.base import Endpoint, Exposure, Platform
from targets.eks import eks
from targets.kind import kind
from targets.minikube import minikube


def platform_for(settings: Settings) -> Platform:
    """The platform of the stack's target (`tfserving:target`)."""
    match settings:
        case EksSettings():
            return eks(settings)
        case MinikubeSettings():
            return minikube(settings)
        case KindSettings():
            return kind(settings)
        case _:
            assert_never(settings)


__all__ = ["Endpoint", "Exposure", "Platform", "platform_for"]
