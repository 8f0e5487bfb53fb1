"""A container image built by Pulumi (pulumi-docker-build), for any of our images.

Used for the model image (TF Serving with the SavedModel baked in) and the gateway's image. The
image is tagged with a content hash of its build inputs, so a new model gives a new
tag (and a rolling update) while an unchanged one gives the same tag (and no diff). It is either:

- pushed to a registry (ECR on eks): the Deployment then runs `ref`, the tag pinned to the
  digest that was pushed, so a node can never run a different image under the same tag; or
- loaded into the local Docker daemon (minikube, after `eval $(minikube docker-env)`): the
  Deployment runs the plain tag, which Kubernetes pulls IfNotPresent (the default for any tag but
  `latest`), so the kubelet finds it in the node's daemon and never looks for it in a registry.

Previews do not build (`build_on_preview=False`): a PR preview in CI then needs no Docker daemon
or buildx, and a cold build of a TF Serving image (hundreds of MB) does not slow every preview.
The preview still shows the image as changed whenever the tag (the content hash) changes.
"""

import hashlib
import posixpath
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_docker_build as docker_build

from config.paths import PROJECT_ROOT

PLATFORM = docker_build.Platform.LINUX_AMD64
TAG_LENGTH = 16  # hex characters of the content hash: plenty against collisions
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class RegistryLogin:
    """Where to push and the credentials to do it with (e.g. from an ECR authorisation token)."""

    address: pulumi.Input[str]  # registry host, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com
    username: pulumi.Input[str]
    password: pulumi.Input[str]


@dataclass(frozen=True)
class ImageBuild:
    """What to build: a context directory and its Dockerfile (exactly one of text or file)."""

    context: Path
    dockerfile_inline: str | None = None
    dockerfile_path: Path | None = None
    # More contexts the Dockerfile reads with `COPY --from=<key>` (e.g. more model folders).
    named_contexts: Mapping[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.dockerfile_inline is None) == (self.dockerfile_path is None):
            raise ValueError("give exactly one of dockerfile_inline and dockerfile_path")
        for path in (self.context, *self.named_contexts.values()):
            if not path.is_dir():
                raise ValueError(f"build context {path} is not a directory")

    @property
    def dockerfile_text(self) -> str:
        if self.dockerfile_inline is not None:
            return self.dockerfile_inline
        assert self.dockerfile_path is not None
        return self.dockerfile_path.read_text()


@dataclass(frozen=True)
class ContainerImageArgs:
    # "<registry>/<repository>" when pushing, a plain local name otherwise.
    repository: pulumi.Input[str]
    build: ImageBuild
    # None: load into the local Docker daemon instead of pushing.
    registry: RegistryLogin | None = None
    build_on_preview: bool = False


def project_path(path: Path) -> str:
    """A path inside the project relative to it (Pulumi runs programs and providers there).

    An absolute path would differ between checkouts (laptop, CI), and a changed build input makes
    docker-build rebuild and push again under the same tag, which the immutable repository rejects.
    """
    resolved = path.resolve()
    if resolved.is_relative_to(PROJECT_ROOT):
        return resolved.relative_to(PROJECT_ROOT).as_posix() or "."
    return str(resolved)


def _dockerignore(context: Path) -> list[tuple[bool, re.Pattern[str]]]:
    """The context's .dockerignore as (exclude?, regex) in order; Docker's rules: `#` comments,
    `!` re-includes, `*` and `?` within a path segment, `**` across segments, paths relative
    to the context root, a matching directory excluding everything below it."""
    file = context / ".dockerignore"
    if not file.is_file():
        return []
    rules = []
    for raw in file.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclude = not line.startswith("!")
        pattern = line.removeprefix("!").strip().strip("/")
        pattern = posixpath.normpath(pattern) if pattern else pattern
        regex = ""
        index = 0
        while index < len(pattern):
            if pattern.startswith("**", index):
                regex += ".*"
                index += 2
                if pattern.startswith("/", index):  # "**/" also matches nothing
                    regex += "/?"
                    index += 1
                continue
            char = pattern[index]
            regex += "[^/]*" if char == "*" else "[^/]" if char == "?" else re.escape(char)
            index += 1
        rules.append((exclude, re.compile(f"^{regex}(/.*)?$")))
    return rules


def _ignored(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    ignored = False
    for exclude, regex in rules:  # the last matching rule decides, as in Docker
        if regex.match(relative):
            ignored = exclude
    return ignored


def context_files(context: Path) -> list[Path]:
    """Every file of a build context that the build sees (its .dockerignore applied), in a
    stable order; the .dockerignore file itself is part of the context."""
    rules = _dockerignore(context)
    return sorted(
        p
        for p in context.rglob("*")
        if (p.is_file() or p.is_symlink())
        and not _ignored(p.relative_to(context).as_posix(), rules)
    )


def content_tag(
    dockerfile: str, context: Path, named_contexts: Mapping[str, Path] | None = None
) -> str:
    """A hash of what the build reads: the Dockerfile, the target platform and every file of
    the context with its name and mode.

    docker-build rebuilds (and pushes) whenever its own hash of the context changes, and that
    hash covers each file's bytes, relative name and mode (pulumi-docker-build 0.0.22,
    provider/internal/context.go, hashFile). This tag covers at least the same, so a rebuild
    never pushes different bytes under a tag that exists (ECR's tags here are immutable): a
    checkout made with another umask gets a tag of its own. Not covered, as docker-build does
    not: modification times and where the context lives.
    """
    digest = hashlib.sha256()
    for part in (dockerfile, PLATFORM.value):
        digest.update(part.encode())
        digest.update(b"\0")
    roots = [("", context), *sorted((named_contexts or {}).items())]
    files = [(key, root, file) for key, root in roots for file in context_files(root)]
    for key, root, file in files:
        digest.update(f"{key}:{file.relative_to(root).as_posix()}".encode())
        digest.update(b"\0")
        digest.update(stat.filemode(file.lstat().st_mode).encode())
        digest.update(b"\0")
        if file.is_file():  # a symlink to a file: its target's bytes, as docker-build reads
            with file.open("rb") as stream:
                while chunk := stream.read(_CHUNK):
                    digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()[:TAG_LENGTH]


class ContainerImage(pulumi.ComponentResource):
    """One image, built for linux/amd64, pushed to a registry or loaded into the local daemon."""

    tag: str
    # What a Pod should run: digest-pinned when pushed, the plain tag when loaded locally.
    ref: pulumi.Output[str]
    repository: pulumi.Output[str]
    image: docker_build.Image

    def __init__(
        self, name: str, args: ContainerImageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("tfserving:index:ContainerImage", name, None, opts)
        build = args.build
        self.tag = content_tag(build.dockerfile_text, build.context, build.named_contexts)
        tagged = pulumi.Output.concat(args.repository, ":", self.tag)
        pushed = args.registry is not None
        self.image = docker_build.Image(
            name,
            context=docker_build.BuildContextArgs(
                location=project_path(build.context),
                named={
                    key: docker_build.ContextArgs(location=project_path(path))
                    for key, path in sorted(build.named_contexts.items())
                }
                or None,
            ),
            dockerfile=docker_build.DockerfileArgs(
                inline=build.dockerfile_inline,
                location=project_path(build.dockerfile_path) if build.dockerfile_path else None,
            ),
            platforms=[PLATFORM],
            tags=[tagged],
            push=pushed,
            registries=(
                [
                    docker_build.RegistryArgs(
                        address=args.registry.address,
                        username=args.registry.username,
                        password=pulumi.Output.secret(args.registry.password),
                    )
                ]
                if args.registry is not None
                else None
            ),
            # Without a registry the image must land in the daemon the cluster's node uses.
            exports=(
                None
                if pushed
                else [docker_build.ExportArgs(docker=docker_build.ExportDockerArgs())]
            ),
            build_on_preview=args.build_on_preview,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Taken from the resource's outputs (not the local variable) so users wait for the build.
        self.ref = self.image.ref if pushed else self.image.tags.apply(_first_tag)
        self.repository = pulumi.Output.from_input(args.repository)
        self.register_outputs({"tag": self.tag, "ref": self.ref})


def _first_tag(tags: Sequence[str] | None) -> str:
    if not tags:
        raise ValueError("the image has no tag")
    return tags[0]
