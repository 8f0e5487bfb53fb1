"""The model image (model source `image`): TF Serving's pinned image with the SavedModel baked in.

A build definition, not a component: the image itself is a `ContainerImage` the target builds
(into minikube's Docker daemon, or pushed to ECR), so its resources keep the identities they have
always had.
"""

from components.container_image import ImageBuild
from components.model_server import MODELS_ROOT
from config.model import ModelSettings
from config.workload import ServerSettings


def model_dockerfile(model: ModelSettings, server: ServerSettings) -> str:
    """The server image with each SavedModel version at /models/<name>/<version>.

    Only the numbered version directories are copied. Mode 0755 (one mode covers the copied files
    and directories): world-readable and traversable, since the server runs as uid 1000, not as
    the root that owns the files.
    """
    lines = [f"FROM {server.image}"]
    for version in model.folder.versions:
        lines.append(f"COPY --chmod=0755 {version} {MODELS_ROOT}/{model.name}/{version}")
    return "\n".join(lines) + "\n"


def model_build(model: ModelSettings, server: ServerSettings) -> ImageBuild:
    return ImageBuild(
        context=model.folder.directory, dockerfile_inline=model_dockerfile(model, server)
    )
