"""The model image (model source `image`): TF Serving's pinned image with the SavedModels baked in.

A build definition, not a component: the image itself is a `ContainerImage` the target builds
(into minikube's Docker daemon, or pushed to ECR), so its resources keep the identities they have
always had. The first image model is the build context; more image models (tfserving:models)
are named contexts the Dockerfile copies from.
"""

from collections.abc import Sequence

from components.container_image import ImageBuild
from components.tfserving_config import MODELS_ROOT
from config.model import ModelSettings, ModelSource
from config.workload import ServerSettings


def image_models(models: Sequence[ModelSettings]) -> list[ModelSettings]:
    return [m for m in models if m.source is ModelSource.IMAGE]


def model_dockerfile(models: Sequence[ModelSettings], server: ServerSettings) -> str:
    """The server image with each SavedModel version at /models/<name>/<version>.

    Only the numbered version directories are copied. Mode 0755 (one mode covers the copied files
    and directories): world-readable and traversable, since the server runs as uid 1000, not as
    the root that owns the files.
    """
    lines = [f"FROM {server.image}"]
    for index, model in enumerate(image_models(models)):
        source = "" if index == 0 else f" --from=model-{index}"
        for version in model.folder.versions:
            lines.append(
                f"COPY --chmod=0755{source} {version} {MODELS_ROOT}/{model.name}/{version}"
            )
    return "\n".join(lines) + "\n"


def model_build(models: Sequence[ModelSettings], server: ServerSettings) -> ImageBuild:
    first, *others = image_models(models)
    return ImageBuild(
        context=first.folder.directory,
        dockerfile_inline=model_dockerfile(models, server),
        named_contexts={f"model-{i}": m.folder.directory for i, m in enumerate(others, start=1)},
    )
