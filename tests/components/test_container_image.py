"""The generic image component and the model image built with it: tags, push, local load."""

import os
import shutil
from pathlib import Path

import pytest

from components.container_image import ImageBuild, content_tag, project_path
from components.model_image import model_dockerfile
from config.stack import parse
from tests.conftest import PROJECT_ROOT, one, one_resource

IMAGE = "docker-build:index:Image"
MODEL_DIR = PROJECT_ROOT / "models" / "half_plus_two"
MODEL = "tfserving:model"
DOCKERFILE = "FROM tensorflow/serving:2.19.1\nCOPY 1 /models/m/1\n"


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "half_plus_two"
    shutil.copytree(MODEL_DIR, copy)
    return copy


def _flip_a_byte(file: Path) -> None:
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0x01
    file.write_bytes(bytes(data))


def _container_image(rendered):
    (container,) = one(rendered, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def test_tag_depends_on_content_and_modes_not_on_location_or_timestamps(model_copy):
    original = content_tag(DOCKERFILE, MODEL_DIR)
    assert original == content_tag(DOCKERFILE, model_copy), "same bytes elsewhere, same tag"
    weights = model_copy / "1" / "variables" / "variables.data-00000-of-00001"
    os.utime(weights, (1, 1))
    assert content_tag(DOCKERFILE, model_copy) == original, "mtime is not content"
    # docker-build's own context hash covers modes: so must the tag, or a rebuild from a
    # checkout with another umask would push new bytes under an existing immutable tag.
    weights.chmod(0o600)
    with_mode = content_tag(DOCKERFILE, model_copy)
    assert with_mode != original
    _flip_a_byte(weights)
    assert content_tag(DOCKERFILE, model_copy) not in (original, with_mode)


def _checkout(source: Path, target: Path, umask: int) -> Path:
    """A copy of `source` whose files got their modes from `umask`, like a git checkout."""
    old = os.umask(umask)
    try:
        for path in sorted(source.rglob("*")):
            relative = target / path.relative_to(source)
            if path.is_dir():
                relative.mkdir(parents=True)
            else:
                relative.write_bytes(path.read_bytes())
    finally:
        os.umask(old)
    return target


def test_checkouts_with_different_umasks_get_different_tags(tmp_path):
    team = _checkout(MODEL_DIR, tmp_path / "a", 0o022)
    private = _checkout(MODEL_DIR, tmp_path / "b", 0o077)
    again = _checkout(MODEL_DIR, tmp_path / "c", 0o022)
    assert content_tag(DOCKERFILE, team) == content_tag(DOCKERFILE, again)
    assert content_tag(DOCKERFILE, team) != content_tag(DOCKERFILE, private)


def test_dockerignored_files_do_not_change_the_tag_others_do(tmp_path):
    context = tmp_path / "app"
    (context / "pkg").mkdir(parents=True)
    (context / "pkg" / "app.py").write_text("print(1)\n")
    (context / ".dockerignore").write_text("# byproducts\n**/__pycache__/\n*.log\n!keep.log\n")
    before = content_tag(DOCKERFILE, context)
    (context / "pkg" / "__pycache__").mkdir()
    (context / "pkg" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"x")
    (context / "debug.log").write_text("noise")
    assert content_tag(DOCKERFILE, context) == before, "what the build ignores"
    (context / "keep.log").write_text("kept")
    kept = content_tag(DOCKERFILE, context)
    assert kept != before, "re-included by !keep.log: docker-build sees it"
    (context / "pkg" / "debug.log").write_text("below the root: not matched by *.log")
    assert content_tag(DOCKERFILE, context) != kept


def test_tag_changes_with_the_dockerfile_a_new_file_or_a_rename(model_copy):
    original = content_tag(DOCKERFILE, model_copy)
    assert content_tag(DOCKERFILE.replace("2.19.1", "2.20.0"), model_copy) != original
    (model_copy / "2").mkdir()
    (model_copy / "2" / "saved_model.pb").write_bytes(b"x")
    with_version = content_tag(DOCKERFILE, model_copy)
    assert with_version != original
    (model_copy / "2" / "saved_model.pb").rename(model_copy / "2" / "renamed.pb")
    assert content_tag(DOCKERFILE, model_copy) not in (original, with_version)


def test_paths_inside_the_project_are_relative_others_absolute(tmp_path):
    assert project_path(MODEL_DIR) == "models/half_plus_two"
    assert project_path(PROJECT_ROOT) == "."
    assert project_path(tmp_path) == str(tmp_path.resolve())


def test_args_need_exactly_one_dockerfile(tmp_path):
    with pytest.raises(ValueError, match="exactly one"):
        ImageBuild(context=tmp_path)
    with pytest.raises(ValueError, match="exactly one"):
        ImageBuild(
            context=tmp_path,
            dockerfile_inline="FROM x:1\n",
            dockerfile_path=tmp_path / "Dockerfile",
        )
    with pytest.raises(ValueError, match="not a directory"):
        ImageBuild(context=tmp_path / "nope", dockerfile_inline="FROM x:1")


def test_dockerfile_on_disk_is_read_for_the_tag(tmp_path):
    (tmp_path / "app.py").write_text("print(1)\n")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python:3.11-slim\nCOPY app.py /app.py\n")
    args = ImageBuild(context=tmp_path, dockerfile_path=dockerfile)
    assert args.dockerfile_text == dockerfile.read_text()
    before = content_tag(args.dockerfile_text, tmp_path)
    dockerfile.write_text("FROM python:3.12-slim\nCOPY app.py /app.py\n")
    assert content_tag(args.dockerfile_text, tmp_path) != before


def test_model_dockerfile_copies_each_version_readable_by_all():
    settings = parse({MODEL: '{"source": "image"}'})
    text = model_dockerfile(settings.models, settings.server)
    lines = text.splitlines()
    assert lines[0] == f"FROM {settings.server.image}"
    assert lines[1:] == ["COPY --chmod=0755 1 /models/half_plus_two/1"]


def test_eks_pushes_the_model_image_and_runs_it_digest_pinned(render_eks):
    rendered = render_eks()
    image = one_resource(rendered, IMAGE)["inputs"]
    settings = parse({MODEL: '{"source": "image"}'})
    dockerfile = model_dockerfile(settings.models, settings.server)
    assert image["dockerfile"] == {"inline": dockerfile}
    # Relative to the project: the same input from every checkout, so no needless rebuild.
    assert image["context"] == {"location": "models/half_plus_two"}
    assert image["platforms"] == ["linux/amd64"]
    assert image["push"] is True
    assert image["buildOnPreview"] is False
    expected_tag = content_tag(dockerfile, MODEL_DIR)
    assert image["tags"] == [f"{rendered.outputs['repositoryUrl']}:{expected_tag}"]
    ref = rendered.outputs["imageRef"]
    assert ref.startswith(image["tags"][0] + "@sha256:")
    assert _container_image(rendered)["image"] == ref


def test_a_changed_model_gets_a_new_tag_and_rolls_the_deployment(render_eks, model_copy):
    before = render_eks()
    same = render_eks({MODEL: {"path": str(model_copy)}})
    assert (
        one_resource(same, IMAGE)["inputs"]["tags"]
        == (one_resource(before, IMAGE)["inputs"]["tags"])
    )
    assert _container_image(same)["image"] == _container_image(before)["image"]
    _flip_a_byte(model_copy / "1" / "saved_model.pb")
    changed = render_eks({MODEL: {"path": str(model_copy)}})
    assert (
        one_resource(changed, IMAGE)["inputs"]["tags"]
        != (one_resource(before, IMAGE)["inputs"]["tags"])
    )
    assert _container_image(changed)["image"] != _container_image(before)["image"]


def test_minikube_loads_the_image_locally_and_runs_the_plain_tag(render_dev):
    rendered = render_dev({MODEL: {"source": "image"}})
    image = one_resource(rendered, IMAGE)["inputs"]
    assert not image.get("push")
    (export,) = image["exports"]
    assert set(export) == {"docker"}, "into the local daemon (minikube docker-env)"
    assert "registries" not in image
    (tag,) = image["tags"]
    assert tag.startswith("tfserving-model:")
    container = _container_image(rendered)
    assert container["image"] == tag, "a local image has no digest to pin"
    # IfNotPresent (the default for a versioned tag): the kubelet uses the node's own copy.
    assert container.get("imagePullPolicy", "IfNotPresent") == "IfNotPresent"
    assert rendered.outputs["imageRef"] == tag
    assert not [r for r in rendered.resources if r["type"].startswith("aws:")]


def test_gateway_byproducts_are_dockerignored_so_the_tag_is_stable(tmp_path):
    # The gateway's .dockerignore leaves out what tests and linters leave behind: neither the
    # build (docker-build's hash) nor the tag sees it.
    (tmp_path / ".dockerignore").write_bytes(
        (PROJECT_ROOT / "gateway" / ".dockerignore").read_bytes()
    )
    (tmp_path / "proto").mkdir()
    (tmp_path / "app.py").write_text("print('hi')\n")
    before = content_tag("FROM scratch\n", tmp_path)
    for cache in ("__pycache__", "proto/__pycache__", ".mypy_cache", ".pytest_cache"):
        (tmp_path / cache).mkdir()
        (tmp_path / cache / "entry").write_bytes(b"\x00\x01")
    assert content_tag("FROM scratch\n", tmp_path) == before
    (tmp_path / "app.py").write_text("print('bye')\n")
    assert content_tag("FROM scratch\n", tmp_path) != before
