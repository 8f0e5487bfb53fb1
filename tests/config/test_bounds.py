"""Every bounded setting at both edges: the bound itself is accepted, one step past it is not."""

import json
from typing import Any

import pytest

from config.errors import SettingsError
from config.stack import parse

Edge = tuple[str, list[str | int], Any, Any, str]


def _set(path: list[str | int], value: Any) -> dict[str, Any]:
    """{"tfserving:a": '{"b": value}'} for path ["a", "b"] (the gateway enabled for its keys)."""
    top, *rest = path
    node: Any = value
    for key in reversed(rest):
        node = {key: node}
    if top == "gateway":
        node = {"enabled": True, **node}
    return {f"tfserving:{top}": json.dumps(node) if rest else str(value)}


def _eks(changes: dict[str, str]) -> dict[str, str]:
    return {"tfserving:target": "eks", **changes}


# (id, key path, accepted edge value, refused value one step past it, text of the refusal)
EDGES: list[Edge] = [
    ("nodePort-low", ["service", "nodePort"], 30000, 29999, "NodePort range 30000-32767"),
    ("nodePort-high", ["service", "nodePort"], 32767, 32768, "NodePort range 30000-32767"),
    ("minReplicas-low", ["autoscaling", "minReplicas"], 1, 0, "must be >= 1"),
    ("maxReplicas-high", ["autoscaling", "maxReplicas"], 1000, 1001, "between 1 and 1000"),
    ("cpuTarget-low", ["autoscaling", "targetCpuUtilization"], 1, 0, "between 1 and 100"),
    ("cpuTarget-high", ["autoscaling", "targetCpuUtilization"], 100, 101, "between 1 and 100"),
    ("window-low", ["autoscaling", "scaleDownStabilizationSeconds"], 0, -1, "0 and 3600"),
    ("window-high", ["autoscaling", "scaleDownStabilizationSeconds"], 3600, 3601, "0 and 3600"),
    ("gw-imageSize-low", ["gateway", "imageSize"], 8, 7, "between 8 and 4096 pixels"),
    ("gw-imageSize-high", ["gateway", "imageSize"], 4096, 4097, "between 8 and 4096 pixels"),
    ("gw-topK-low", ["gateway", "topK"], 1, 0, "between 1 and 10000"),
    ("gw-download-low", ["gateway", "maxDownloadBytes"], 1024, 1023, "between 1024 and"),
    ("gw-download-high", ["gateway", "maxDownloadBytes"], 104857600, 104857601, "and 104857600"),
    ("gw-timeout-high", ["gateway", "downloadTimeoutSeconds"], 300, 300.001, "at most 300"),
    ("gw-timeout-low", ["gateway", "downloadTimeoutSeconds"], 0.001, 0, "more than 0"),
    ("gw-deadline-high", ["gateway", "modelDeadlineSeconds"], 300, 301, "at most 300"),
    ("gw-deadline-low", ["gateway", "modelDeadlineSeconds"], 0.001, 0, "more than 0"),
    ("gw-inflight-low", ["gateway", "maxInFlight"], 1, 0, "between 1 and 10000"),
    ("gw-inflight-high", ["gateway", "maxInFlight"], 10000, 10001, "between 1 and 10000"),
]
EKS_EDGES: list[Edge] = [
    ("zones-low", ["cluster", "availabilityZones"], 2, 1, "between 2 and 6"),
    ("zones-high", ["cluster", "availabilityZones"], 6, 7, "between 2 and 6"),
    ("keep-low", ["registry", "keepImages"], 1, 0, "between 1"),
    ("keep-high", ["registry", "keepImages"], 10000, 10001, "and 10000"),
]


def _problems(config: dict[str, str]) -> list[str]:
    try:
        parse(config)
    except SettingsError as error:
        return error.problems
    return []


@pytest.mark.parametrize(
    ("path", "edge", "past", "text"), [e[1:] for e in EDGES], ids=[e[0] for e in EDGES]
)
def test_core_and_gateway_edges(path, edge, past, text):
    assert _problems(_set(path, edge)) == []
    (problem,) = _problems(_set(path, past))
    assert problem.startswith("tfserving:" + ".".join(map(str, path)) + " ")
    assert text in problem


@pytest.mark.parametrize(
    ("path", "edge", "past", "text"), [e[1:] for e in EKS_EDGES], ids=[e[0] for e in EKS_EDGES]
)
def test_eks_edges(path, edge, past, text):
    assert _problems(_eks(_set(path, edge))) == []
    (problem,) = _problems(_eks(_set(path, past)))
    assert problem.startswith("tfserving:" + ".".join(map(str, path)) + " ")
    assert text in problem


def _resources(requests: tuple[str, str], limits: tuple[str, str]) -> dict[str, str]:
    body = {
        "resources": {
            "requests": {"cpu": requests[0], "memory": requests[1]},
            "limits": {"cpu": limits[0], "memory": limits[1]},
        }
    }
    return {"tfserving:server": json.dumps(body)}


@pytest.mark.parametrize(
    ("limits", "accepted"),
    [
        (("256", "4Ti"), True),
        (("256001m", "1Gi"), False),
        (("2M", "1Gi"), False),
        (("1", "4097Gi"), False),
        (("1", "16Mi"), True),
    ],
)
def test_resource_ceilings(limits, accepted):
    problems = _problems(_resources(("1m", "16Mi"), limits))
    assert (problems == []) is accepted, problems


@pytest.mark.parametrize(
    ("requests", "problem"),
    [
        (
            ("0.5m", "16Mi"),
            "tfserving:server.resources.requests.cpu must be between 1m and 256 cores "
            "(e.g. 500m, 1, 2), got '0.5m'",
        ),
        (
            ("1m", "15Mi"),
            "tfserving:server.resources.requests.memory must be between 16Mi and 4Ti of memory "
            "(e.g. 256Mi, 1Gi), got '15Mi'",
        ),
    ],
)
def test_resource_floors(requests, problem):
    assert _problems(_resources(requests, ("1", "1Gi"))) == [problem]


def test_requests_equal_to_limits_are_accepted_and_above_refused():
    assert _problems(_resources(("1", "1Gi"), ("1", "1Gi"))) == []
    assert _problems(_resources(("1001m", "1Gi"), ("1", "1Gi"))) == [
        "tfserving:server.resources.requests.cpu (1001m) must not exceed limits.cpu (1)"
    ]
