"""Reading a stack's `tfserving:*` config into its settings (`config.settings`), once.

Everything is validated before any resource is registered; every problem is reported at once,
each naming its key and what to write instead.
"""

import difflib
import json
import typing
from collections.abc import Collection, Mapping
from typing import Annotated, Any

import pulumi
import yaml
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from config.aws import key_problem, region_problem
from config.errors import NAMESPACE, SettingsError, describe
from config.gateway import API_KEYS_EXAMPLE
from config.paths import PROJECT_ROOT
from config.settings import TARGETS, EksSettings, Settings

# Namespaces of other packages a stack file legitimately holds.
FOREIGN_NAMESPACES = frozenset({"aws", "kubernetes", "pulumi", "eks", "awsx", "docker-build"})
_ADAPTER: TypeAdapter[Settings] = TypeAdapter(Annotated[Settings, Field(discriminator="target")])


def _stack_key(model: type[BaseModel], attribute: str) -> str:
    return model.model_fields[attribute].alias or attribute


def _is_structured(annotation: Any) -> bool:
    """Objects and lists (Pulumi hands those over as JSON text), through Optional/Annotated."""
    if isinstance(annotation, type):
        return issubclass(annotation, BaseModel | list | dict)
    origin = typing.get_origin(annotation)
    if origin in (list, dict):
        return True
    return any(_is_structured(arg) for arg in typing.get_args(annotation))


# Top-level key -> whether its value is an object (Pulumi hands those over as JSON text).
KEYS: dict[str, bool] = {
    _stack_key(model, attribute): _is_structured(info.annotation)
    for model in TARGETS.values()
    for attribute, info in model.model_fields.items()
}
# Key -> the targets that have it.
TARGETS_OF: dict[str, list[str]] = {
    key: [t for t, m in TARGETS.items() if key in {_stack_key(m, a) for a in m.model_fields}]
    for key in KEYS
}


def _closest(word: str, options: list[str]) -> str:
    match = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"; did you mean {match[0]}?" if match else ""


def _top_level_problems(raw: Mapping[str, str]) -> list[str]:
    """Keys outside the tfserving namespace that look like typos of it, or of its keys."""
    problems = []
    for full_key in sorted(raw):
        namespace, _, key = full_key.partition(":")
        if namespace == NAMESPACE:
            if key not in KEYS:
                problems.append(
                    f"{full_key} is not a known setting{_closest(key, sorted(KEYS))} "
                    f"(known: {', '.join(sorted(KEYS))})"
                )
        elif namespace not in FOREIGN_NAMESPACES and difflib.get_close_matches(
            namespace, [NAMESPACE], n=1, cutoff=0.7
        ):
            problems.append(
                f"{full_key} is in namespace {namespace!r}, which is not this project's; "
                f"did you mean {NAMESPACE}:{key}?"
            )
    return problems


def _misspelt_target(raw: Mapping[str, str]) -> str | None:
    """The value of a `tfsrving:target`-like key: the rest is checked against the target meant,
    not the default one, so the namespace typo is reported without misleading follow-on errors."""
    for full_key in sorted(raw):
        namespace, _, key = full_key.partition(":")
        if (
            key == "target"
            and namespace not in (NAMESPACE, *FOREIGN_NAMESPACES)
            and difflib.get_close_matches(namespace, [NAMESPACE], n=1, cutoff=0.7)
        ):
            return raw[full_key]
    return None


# Keys that hold credentials: refused unless Pulumi keeps them encrypted (`--secret`).
SECRET_KEYS = (f"{NAMESPACE}:gatewayApiKeys",)


def parse(raw: Mapping[str, str], secret_keys: Collection[str] = ()) -> Settings:
    """Validate a stack's config as Pulumi hands it over: `{"tfserving:model": "<json>", ...}`;
    `secret_keys`: the keys Pulumi stores encrypted."""
    problems = _top_level_problems(raw) + _plain_text_secrets(raw, secret_keys)
    document: dict[str, Any] = {}
    for full_key, text in sorted(raw.items()):
        namespace, _, key = full_key.partition(":")
        if namespace != NAMESPACE or key not in KEYS:
            continue
        if not KEYS[key]:
            document[key] = text
            continue
        try:
            document[key] = json.loads(text)
        except json.JSONDecodeError:
            problems.append(f"{full_key} must be a mapping of settings, got {text!r}")
    target = document.setdefault("target", _misspelt_target(raw) or "minikube")
    if target not in TARGETS:
        raise SettingsError(
            [*problems, f"{NAMESPACE}:target must be one of {', '.join(TARGETS)}, got {target!r}"]
        )
    if target != "eks":
        problems += [
            f"{key} only applies to target eks, not {target}"
            for key in sorted(raw)
            if key.startswith("aws:")
        ]
    for key in sorted(document):
        if target not in TARGETS_OF[key]:
            problems.append(
                f"{NAMESPACE}:{key} only applies to target {' or '.join(TARGETS_OF[key])}, "
                f"not {target}"
            )
            del document[key]
    if "model" not in document and "models" not in document:
        document["model"] = {}
    try:
        settings = _ADAPTER.validate_python(document)
    except ValidationError as error:
        # The first location is the union's tag (the target): keys start after it.
        problems += [describe({**e, "loc": e["loc"][1:]}) for e in error.errors()]
    if not problems and isinstance(settings, EksSettings):
        problems += _aws_problems(raw, settings)
    if problems:
        raise SettingsError(problems)
    return settings


def _plain_text_secrets(raw: Mapping[str, str], secret_keys: Collection[str]) -> list[str]:
    """Credentials written in plain text into the stack file (`pulumi config set` without
    `--secret`). The stack file's ciphertext (`{secure: ...}`, as an offline render reads it)
    is encrypted by definition."""
    problems = []
    for key in SECRET_KEYS:
        if key in raw and key not in secret_keys and not _is_ciphertext(raw[key]):
            problems.append(
                f"{key} must be stored encrypted, it is plain text in the stack: "
                f"pulumi config rm {key}, then {API_KEYS_EXAMPLE}"
            )
    return problems


def _is_ciphertext(text: str) -> bool:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return False
    return isinstance(value, dict) and set(value) == {"secure"}


def _aws_problems(raw: Mapping[str, str], settings: "EksSettings") -> list[str]:
    """The AWS provider's keys of an eks stack, and what depends on its region."""
    problems = [
        problem
        for full_key in sorted(raw)
        if full_key.startswith("aws:")
        and (problem := key_problem(full_key.removeprefix("aws:"))) is not None
    ]
    region = raw.get("aws:region")
    if region is not None and (problem := region_problem(region)) is not None:
        return [*problems, problem]
    for key, service in (
        ("service", settings.service),
        ("gateway.service", settings.gateway.service),
    ):
        if region is not None and service.tls is not None and service.tls.region != region:
            problems.append(
                f"{NAMESPACE}:{key}.tls.certificateArn is in {service.tls.region}, but the stack "
                f"deploys to aws:region {region}: an ACM certificate can only be used in its own "
                "region"
            )
    return problems


def load() -> Settings:
    """Read the running stack's config (CLI or mock runtime) and validate the tfserving keys."""
    from pulumi.runtime import config as runtime_config  # noqa: PLC0415 - the engine's view

    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return parse({k: str(v) for k, v in merged.items()}, secret_keys(merged))


def secret_keys(config: Mapping[str, object]) -> set[str]:
    """The keys Pulumi keeps encrypted: as the engine reports them, and as the stack file holds
    them (`{secure: ...}`), which `pulumi up` always reads from the project's directory."""
    from pulumi.runtime import config as runtime_config  # noqa: PLC0415 - the engine's view

    found = set(runtime_config.get_config_secret_keys_env())
    found |= {key for key in config if runtime_config.is_config_secret(key)}
    stack_file = PROJECT_ROOT / f"Pulumi.{pulumi.get_stack()}.yaml"
    if stack_file.is_file():
        document = yaml.safe_load(stack_file.read_text()) or {}
        for key, value in (document.get("config") or {}).items():
            if isinstance(value, dict) and set(value) == {"secure"}:
                found.add(key if ":" in key else f"{NAMESPACE}:{key}")
    return found
