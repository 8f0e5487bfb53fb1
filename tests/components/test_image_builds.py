"""Image builds (components/container_image.py) to the letter: what the context holds after
.dockerignore, the content tag's exact recipe, the build's inputs pushed or loaded locally."""

import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components.container_image import (
    ContainerImage,
    ContainerImageArgs,
    ImageBuild,
    RegistryLogin,
    _dockerignore,
    _first_tag,
    _ignored,
    content_tag,
    context_files,
    project_path,
)
from config.paths import PROJECT_ROOT
from tests.components.mocked import SECRET_SIG, SIG_KEY, register


def write(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_dockerignore_rules_as_docker_reads_them(tmp_path: Path):
    assert _dockerignore(tmp_path) == []
    write(
        tmp_path / ".dockerignore",
        "# a comment\n\n  *.pyc  \n!keep.pyc\n/build/\n**/cache\nlogs/**\na?c\n"
        "./docs/../notes\n!\nXcode/\n",
    )
    rules = [(exclude, regex.pattern) for exclude, regex in _dockerignore(tmp_path)]
    assert rules == [
        (True, r"^[^/]*\.pyc(/.*)?$"),
        (False, r"^keep\.pyc(/.*)?$"),
        (True, r"^build(/.*)?$"),
        (True, r"^.*/?cache(/.*)?$"),
        (True, r"^logs/.*(/.*)?$"),
        (True, r"^a[^/]c(/.*)?$"),
        (True, r"^notes(/.*)?$"),
        (False, r"^(/.*)?$"),
        (True, r"^Xcode(/.*)?$"),
    ]


def test_the_last_matching_rule_decides(tmp_path: Path):
    write(tmp_path / ".dockerignore", "*.pyc\n!keep.pyc\n**/cache\n")
    rules = _dockerignore(tmp_path)
    assert _ignored("a.pyc", rules) is True
    assert _ignored("keep.pyc", rules) is False
    assert _ignored("sub/a.pyc", rules) is False  # `*` stays within one path segment
    assert _ignored("cache/x", rules) is True
    assert _ignored("a/b/cache/x", rules) is True
    assert _ignored("app.py", rules) is False
    assert _ignored("anything", []) is False


def test_context_files_are_what_the_build_sees_in_a_stable_order(tmp_path: Path):
    write(tmp_path / ".dockerignore", "*.log\ntmp\n")
    for name in ("b.py", "a/z.py", "a/b/c.txt", "x.log", "tmp/t.py"):
        write(tmp_path / name)
    (tmp_path / "empty").mkdir()
    os.symlink("b.py", tmp_path / "link.py")
    assert [p.relative_to(tmp_path).as_posix() for p in context_files(tmp_path)] == [
        ".dockerignore",
        "a/b/c.txt",
        "a/z.py",
        "b.py",
        "link.py",
    ]


def _expected_tag(dockerfile: str, roots: list[tuple[str, Path]]) -> str:
    """The recipe: the Dockerfile and the platform, then per file its context key and path, its
    mode and its bytes, each part ended by a NUL; the first 16 hex characters."""
    digest = hashlib.sha256(dockerfile.encode() + b"\0" + b"linux/amd64\0")
    for key, root in roots:
        for file in context_files(root):
            digest.update(f"{key}:{file.relative_to(root).as_posix()}".encode() + b"\0")
            digest.update(stat.filemode(file.lstat().st_mode).encode() + b"\0")
            digest.update((file.read_bytes() if file.is_file() else b"") + b"\0")
    return digest.hexdigest()[:16]


def test_the_content_tag_recipe(tmp_path: Path):
    main, extra, other = tmp_path / "main", tmp_path / "extra", tmp_path / "other"
    write(main / "1" / "saved_model.pb", "model bytes")
    write(extra / "2" / "saved_model.pb", "more")
    write(other / "3" / "saved_model.pb", "other")
    os.symlink("missing", main / "dangling")
    big = main / "big.bin"
    big.write_bytes(os.urandom(3 * 1024 * 1024 + 5))  # read in chunks
    tag = content_tag("FROM x:1\n", main, {"z-models": other, "extra": extra})
    assert tag == _expected_tag("FROM x:1\n", [("", main), ("extra", extra), ("z-models", other)])
    assert len(tag) == 16
    assert content_tag("FROM x:1\n", main) == _expected_tag("FROM x:1\n", [("", main)])


def test_paths_relative_to_the_project_and_absolute_outside(tmp_path: Path):
    assert project_path(PROJECT_ROOT / "models" / "shapes") == "models/shapes"
    assert project_path(PROJECT_ROOT / "models" / ".." / "gateway") == "gateway"
    assert project_path(PROJECT_ROOT) == "."
    assert project_path(tmp_path) == str(tmp_path.resolve())


def test_a_build_needs_one_dockerfile_and_contexts_that_exist(tmp_path: Path):
    message = "^give exactly one of dockerfile_inline and dockerfile_path$"
    with pytest.raises(ValueError, match=message):
        ImageBuild(context=tmp_path)
    with pytest.raises(ValueError, match=message):
        ImageBuild(context=tmp_path, dockerfile_inline="FROM x:1", dockerfile_path=tmp_path / "D")
    with pytest.raises(ValueError) as caught:
        ImageBuild(context=tmp_path / "nope", dockerfile_inline="FROM x:1")
    assert str(caught.value) == f"build context {tmp_path / 'nope'} is not a directory"
    with pytest.raises(ValueError) as caught:
        ImageBuild(
            context=tmp_path, dockerfile_inline="FROM x:1", named_contexts={"m": tmp_path / "gone"}
        )
    assert str(caught.value) == f"build context {tmp_path / 'gone'} is not a directory"
    dockerfile = write(tmp_path / "Dockerfile", "FROM y:2\n")
    assert ImageBuild(context=tmp_path, dockerfile_path=dockerfile).dockerfile_text == "FROM y:2\n"
    assert (
        ImageBuild(context=tmp_path, dockerfile_inline="FROM z:3\n").dockerfile_text == "FROM z:3\n"
    )


def test_a_build_has_at_least_one_tag():
    assert _first_tag(["a:1", "b:2"]) == "a:1"
    no_tags: list[list[str] | None] = [[], None]
    for tags in no_tags:
        with pytest.raises(ValueError, match=r"^the image has no tag$"):
            _first_tag(tags)


def _image(args: Callable[[], ContainerImageArgs]) -> Any:
    made: list[ContainerImage] = []

    def build() -> dict[str, Any]:
        made.append(ContainerImage("model", args()))
        return {"ref": made[0].ref, "repository": made[0].repository}

    done = register(build)
    return done, made[0]


MODELS = PROJECT_ROOT / "models"


def test_a_local_build_is_loaded_into_the_docker_daemon():
    build = ImageBuild(
        context=MODELS / "half_plus_two", dockerfile_inline="FROM x:1\nCOPY 1 /m/1\n"
    )
    done, image = _image(lambda: ContainerImageArgs(repository="tfserving-model", build=build))
    assert image.tag == content_tag(build.dockerfile_text, build.context)
    record = done.one("docker-build:index:Image", "model")
    assert record["parent"] == done.one("tfserving:index:ContainerImage", "model")["urn"]
    assert record["inputs"] == {
        "context": {"location": "models/half_plus_two"},
        "dockerfile": {"inline": "FROM x:1\nCOPY 1 /m/1\n"},
        "platforms": ["linux/amd64"],
        "tags": [f"tfserving-model:{image.tag}"],
        "push": False,
        "exports": [record["inputs"]["exports"][0]],
        "buildOnPreview": False,
        "network": "default",
    }
    assert list(record["inputs"]["exports"][0]) == ["docker"]
    assert done.outputs == {"ref": f"tfserving-model:{image.tag}", "repository": "tfserving-model"}
    assert done.registered_outputs("tfserving:index:ContainerImage", "model") == {
        "tag": image.tag,
        "ref": f"tfserving-model:{image.tag}",
    }


def test_a_pushed_build_logs_in_keeps_the_password_secret_and_runs_the_digest():
    dockerfile = PROJECT_ROOT / "gateway" / "Dockerfile"
    build = ImageBuild(
        context=MODELS / "half_plus_two",
        dockerfile_path=dockerfile,
        named_contexts={"model-1": MODELS / "shapes"},
    )
    login = RegistryLogin(address="registry.example:5000", username="AWS", password="token")

    def args() -> ContainerImageArgs:
        repository = pulumi.Output.from_input("registry.example:5000/model")
        return ContainerImageArgs(
            repository=repository, build=build, registry=login, build_on_preview=True
        )

    done, image = _image(args)
    tag = content_tag(dockerfile.read_text(), build.context, build.named_contexts)
    assert image.tag == tag
    inputs = done.one("docker-build:index:Image", "model")["inputs"]
    assert inputs == {
        "context": {
            "location": "models/half_plus_two",
            "named": {"model-1": {"location": "models/shapes"}},
        },
        "dockerfile": {"location": "gateway/Dockerfile"},
        "platforms": ["linux/amd64"],
        "tags": [f"registry.example:5000/model:{tag}"],
        "push": True,
        "registries": {
            SIG_KEY: SECRET_SIG,
            "value": [{"address": "registry.example:5000", "username": "AWS", "password": "token"}],
        },
        "buildOnPreview": True,
        "network": "default",
    }
    # the mock registry answers with the pushed digest: what the pods run
    assert done.outputs["ref"].startswith(f"registry.example:5000/model:{tag}@sha256:")
    assert done.outputs["repository"] == "registry.example:5000/model"
    assert done.registered_outputs("tfserving:index:ContainerImage", "model") == {
        "tag": tag,
        "ref": done.outputs["ref"],
    }
