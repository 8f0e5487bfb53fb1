"""`tfserving:model`: the folder is read once, versions and labels fit, each source's keys."""

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from config.errors import describe
from config.model import (
    CONFIGMAP_MODEL_BUDGET,
    ModelFile,
    ModelFolder,
    ModelSettings,
    ModelSource,
    VersionPolicy,
)
from config.paths import PROJECT_ROOT

TWO_VERSIONS = str(PROJECT_ROOT / "tests" / "fixtures" / "models" / "half_plus_two")
GCS = {"name": "m", "source": "gcs", "uri": "gs://bucket/models/m"}
S3 = {"name": "m", "source": "s3", "uri": "s3://bucket/models/m", "sizeLimit": "2Gi"}


def refusals(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        ModelSettings.model_validate(data)
    return [describe(error) for error in caught.value.errors()]


def write(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Versions 2 and 10 (10 bytes each, nested files), and what is not a version."""
    for version in ("2", "10"):
        write(tmp_path / version / "saved_model.pb", 4)
        write(tmp_path / version / "variables" / "variables.index", 6)
    write(tmp_path / "3" / "variables" / "variables.index", 1)  # no saved_model.pb
    write(tmp_path / "latest" / "saved_model.pb", 1)  # not a number
    write(tmp_path / "4", 1)  # a file, not a directory
    write(tmp_path / "README.md", 1)
    return tmp_path


def test_a_folder_is_inspected_into_its_numbered_versions_and_their_files(folder):
    inspected = ModelFolder.inspect(folder)
    assert inspected.directory == folder
    assert inspected.versions == (2, 10)
    assert [(f.relative_path, f.source, f.size) for f in inspected.files] == [
        ("2/saved_model.pb", folder / "2" / "saved_model.pb", 4),
        ("2/variables/variables.index", folder / "2" / "variables" / "variables.index", 6),
        ("10/saved_model.pb", folder / "10" / "saved_model.pb", 4),
        ("10/variables/variables.index", folder / "10" / "variables" / "variables.index", 6),
    ]
    assert inspected.total_bytes == 20


def test_a_files_configmap_key_has_no_slashes():
    file = ModelFile("1/variables/variables.index", Path("x"), 1)
    assert file.configmap_key == "1__variables__variables.index"


def test_a_local_model_serves_the_newest_version_by_default(folder):
    model = ModelSettings.model_validate({"name": "m", "path": str(folder)})
    assert model.folder.versions == (2, 10)
    assert model.served_versions == (10,)
    assert model.size_bytes == 10
    assert not model.uses_config_file
    every = ModelSettings.model_validate(
        {"name": "m", "path": str(folder), "versionPolicy": {"all": True}}
    )
    assert (every.served_versions, every.size_bytes, every.uses_config_file) == ((2, 10), 20, True)


def test_a_relative_path_is_read_from_the_project_not_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = ModelSettings.model_validate({"path": "models/half_plus_two"})
    assert model.folder.directory == PROJECT_ROOT / "models" / "half_plus_two"
    assert model.folder.versions == (1,)


@pytest.mark.parametrize(
    ("policy", "loaded"),
    [
        ({"latest": 2}, (2, 3)),
        ({"latest": 5}, (1, 2, 3)),
        ({"latest": 1}, (3,)),
        ({"all": True}, (1, 2, 3)),
        ({"specific": [3, 1, 7]}, (1, 3)),
    ],
)
def test_a_version_policy_picks_from_the_available_versions(policy, loaded):
    assert VersionPolicy.model_validate(policy).loaded((1, 2, 3)) == loaded


@pytest.mark.parametrize(
    ("policy", "problem"),
    [
        ({}, "must be exactly one of {latest: N}, {all: true} or {specific: [versions]}, got none"),
        (
            {"latest": 1, "all": True},
            "must be exactly one of {latest: N}, {all: true} or {specific: [versions]}, got "
            "latest, all",
        ),
        ({"latest": 0}, ".latest must be between 1 and 100, got 0"),
        ({"latest": 101}, ".latest must be between 1 and 100, got 101"),
        ({"all": False}, ".all must be true when given (or use latest/specific)"),
        ({"specific": []}, ".specific must list version numbers >= 1, got []"),
        ({"specific": [1, 0]}, ".specific must list version numbers >= 1, got [1, 0]"),
        ({"specific": [2, 2]}, ".specific must not repeat a version"),
    ],
)
def test_a_version_policy_says_exactly_one_thing(policy, problem):
    separator = "" if problem.startswith(".") else " "
    assert refusals({"versionPolicy": policy}) == [f"tfserving:versionPolicy{separator}{problem}"]


def test_latest_takes_one_to_a_hundred_versions():
    for latest in (1, 100):
        assert VersionPolicy(latest=latest).latest == latest
    assert VersionPolicy(specific=[1]).specific == [1]


@pytest.mark.parametrize("name", ["m", "a" * 128, "9lives", "my_model.v2-final"])
def test_model_names_tf_serving_accepts(name):
    assert ModelSettings.model_validate({**GCS, "name": name, "uri": f"gs://b/{name}"}).name == name


@pytest.mark.parametrize("name", ["a" * 129, "_m", "-m", "a/b", "a b", ""])
def test_model_names_tf_serving_refuses(name):
    assert refusals({**GCS, "name": name, "uri": f"gs://b/{name}"})[0] == (
        "tfserving:name must start with a letter or digit and hold only letters, digits, '_', "
        "'.' and '-', at most 128 (it is part of TF Serving's URL and file path), "
        f"got {name!r}"
    )


def test_labels_name_versions_from_one_up():
    model = ModelSettings.model_validate(
        {
            "path": TWO_VERSIONS,
            "versionPolicy": {"all": True},
            "labels": {"stable": 1, "Canary-2": 2},
        }
    )
    assert model.labels == {"stable": 1, "Canary-2": 2}
    assert model.uses_config_file
    assert (
        ModelSettings.model_validate({"path": TWO_VERSIONS, "labels": {}}).uses_config_file is False
    )
    assert refusals({**GCS, "labels": {"1stable": 1}}) == [
        "tfserving:labels names must be letters, digits, '_' or '-' starting with a letter, got "
        "'1stable'"
    ]
    assert refusals({**GCS, "labels": {"stable": 0}}) == [
        "tfserving:labels must point at versions >= 1, got stable: 0"
    ]


def test_a_label_must_point_at_a_loaded_version():
    labelled = {"path": TWO_VERSIONS, "labels": {"stable": 1}}
    assert refusals(labelled) == [
        "tfserving:labels stable points at version 1, which TF Serving does not load (loaded: 2); "
        "change versionPolicy"
    ]
    assert refusals({**labelled, "versionPolicy": {"specific": [7]}}) == [
        "tfserving:labels stable points at version 1, which TF Serving does not load (loaded: "
        "none); change versionPolicy"
    ]
    # Only the bucket knows what a remote latest policy loads: nothing to check before deploying.
    assert ModelSettings.model_validate({**GCS, "labels": {"stable": 4}}).served_versions is None
    remote = ModelSettings.model_validate(
        {**GCS, "versionPolicy": {"specific": [4, 3]}, "labels": {"stable": 4}}
    )
    assert remote.served_versions == (3, 4)
    assert refusals({**GCS, "versionPolicy": {"specific": [3]}, "labels": {"stable": 4}}) == [
        "tfserving:labels stable points at version 4, which TF Serving does not load (loaded: 3); "
        "change versionPolicy"
    ]


def test_remote_uris_lose_a_trailing_slash():
    gcs = ModelSettings.model_validate({**GCS, "uri": "gs://bucket/models/m/"})
    assert gcs.uri == "gs://bucket/models/m"
    assert (gcs.source, gcs.size_bytes, gcs.uses_config_file) == (ModelSource.GCS, 0, False)
    s3 = ModelSettings.model_validate({**S3, "uri": "s3://my.bucket-1/a/b/m/"})
    assert s3.uri == "s3://my.bucket-1/a/b/m"
    assert s3.bucket_and_prefix == ("my.bucket-1", "a/b/m")
    assert s3.size_bytes == 2 * 2**30
    # path may be written as null for a remote model
    assert ModelSettings.model_validate({**GCS, "path": None}).path is None


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"uri": "http://bucket/m"}, "uri must be a gs:// or s3:// URI, got 'http://bucket/m'"),
        ({"uri": None}, "uri is required when source is gcs (gs://bucket/path/<name>)"),
        ({"uri": "s3://bucket/m"}, "uri must be a gs:// URI for source gcs, got 's3://bucket/m'"),
        ({"uri": "gs://bucket/n"}, "uri must end with the model name '/m', got 'gs://bucket/n'"),
        ({"path": "models/m"}, "path only applies to sources configmap and image, not gcs"),
        ({"sizeLimit": "1Gi"}, "sizeLimit only applies to source s3, not gcs"),
    ],
)
def test_gcs_settings(changes, problem):
    assert refusals({**GCS, **changes}) == [f"tfserving:{problem}"]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        (
            {"uri": "s3://B/models/m"},
            "uri must be s3://<bucket>/<prefix>/<name> with a valid bucket name, got "
            "'s3://B/models/m'",
        ),
        (
            {"uri": "s3://bucket"},
            "uri must be s3://<bucket>/<prefix>/<name> with a valid bucket name, got 's3://bucket'",
        ),
        ({"uri": None}, "uri is required when source is s3 (s3://bucket/path/<name>)"),
        ({"uri": "gs://bucket/m"}, "uri must be a s3:// URI for source s3, got 'gs://bucket/m'"),
        (
            {"sizeLimit": None},
            "sizeLimit is required for source s3: the size of the volume the model is copied into "
            "(all versions it loads), e.g. 2Gi",
        ),
        ({"sizeLimit": "1048575"}, "sizeLimit must be between 1Mi and 1Ti, got '1048575'"),
        ({"sizeLimit": "1025Gi"}, "sizeLimit must be between 1Mi and 1Ti, got '1025Gi'"),
    ],
)
def test_s3_settings(changes, problem):
    data = {k: v for k, v in {**S3, **changes}.items() if v is not None}
    assert refusals(data) == [f"tfserving:{problem}"]


def test_the_s3_volume_is_one_mebibyte_to_one_tebibyte():
    for limit, amount in (("1Mi", 2**20), ("1Ti", 2**40)):
        model = ModelSettings.model_validate({**S3, "sizeLimit": limit})
        assert (str(model.size_limit), model.size_bytes) == (limit, amount)
        assert model.model_dump(by_alias=True)["sizeLimit"] == limit
    assert ModelSettings.model_validate(GCS).model_dump(by_alias=True)["sizeLimit"] is None


def test_local_sources_need_a_folder_holding_a_version(tmp_path):
    assert refusals({"source": "image", "uri": "gs://b/m"}) == [
        "tfserving:uri only applies to sources gcs and s3, not image"
    ]
    assert refusals({"path": None}) == ["tfserving:path is required when source is configmap"]
    assert refusals({"source": "image", "path": ""}) == [
        "tfserving:path is required when source is image"
    ]
    missing = tmp_path / "missing"
    assert refusals({"path": str(missing)}) == [
        f"tfserving:path must be a directory holding the model, {missing} is not"
    ]
    assert refusals({"path": str(tmp_path)}) == [
        f"tfserving:path must hold a numbered version directory with a saved_model.pb "
        f"(e.g. {tmp_path}/1/saved_model.pb); none found in {tmp_path}"
    ]
    with pytest.raises(ValueError) as caught:
        _ = ModelSettings.model_validate(GCS).folder
    assert str(caught.value) == "model source gcs has no local folder"


def test_a_configmap_model_fits_in_one_configmap(tmp_path):
    write(tmp_path / "1" / "saved_model.pb", CONFIGMAP_MODEL_BUDGET)
    fits = ModelSettings.model_validate({"path": str(tmp_path)})
    assert fits.folder.total_bytes == CONFIGMAP_MODEL_BUDGET == 1024 * 1024 - 16 * 1024
    write(tmp_path / "1" / "fingerprint.pb", 1)
    assert refusals({"path": str(tmp_path)}) == [
        f"tfserving:path holds {CONFIGMAP_MODEL_BUDGET + 1} bytes of model files, too big for a "
        "ConfigMap (1 MiB limit); use source: image to bake the model into an image"
    ]
    assert ModelSettings.model_validate({"source": "image", "path": str(tmp_path)}).folder
