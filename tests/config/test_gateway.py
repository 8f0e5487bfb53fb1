"""Bad tfserving:gateway settings exit 2 at render, naming the key, as the gateway would."""

from typing import Any

import pytest

from tests.config.support import GATEWAY, render_expecting_error
from tests.conftest import dev_config, merged

GATEWAY_BAD_CONFIGS: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "gateway-unknown-key",
        {GATEWAY: {"enabled": True, "topk": 3}},
        ["tfserving:gateway.topk is not a known setting"],
    ),
    (
        "gateway-enabled-not-bool",
        {GATEWAY: {"enabled": "yes"}},
        ["tfserving:gateway.enabled", "boolean"],
    ),
    (
        "gateway-unknown-preprocessing",
        {GATEWAY: {"enabled": True, "preprocessing": "imagenet"}},
        ["tfserving:gateway.preprocessing must be one of xception, caffe, unit, none"],
    ),
    (
        "gateway-image-size",
        {GATEWAY: {"enabled": True, "imageSize": 4}},
        ["tfserving:gateway.imageSize must be between 8 and 4096 pixels, got 4"],
    ),
    (
        "gateway-top-k-above-labels",
        {GATEWAY: {"enabled": True, "labels": ["a", "b"], "topK": 3}},
        ["tfserving:gateway.topK must be <= the number of labels (2), got 3"],
    ),
    (
        "gateway-duplicate-labels",
        {GATEWAY: {"enabled": True, "labels": ["a", "a"], "topK": 1}},
        ["tfserving:gateway.labels must be unique, 'a' appears more than once"],
    ),
    (
        "gateway-labels-and-file",
        {
            GATEWAY: {
                "enabled": True,
                "labels": ["a", "b"],
                "topK": 1,
                "labelsFile": "models/shapes/labels.txt",
            }
        },
        ["tfserving:gateway.labelsFile cannot be combined with labels"],
    ),
    (
        "gateway-labels-file-missing",
        {GATEWAY: {"enabled": True, "labelsFile": "nope.txt"}},
        ["tfserving:gateway.labelsFile must be a file with one label per line"],
    ),
    (
        "gateway-latest-image",
        {GATEWAY: {"enabled": True, "image": "me/gateway:latest"}},
        ["tfserving:gateway.image must be pinned to a version, not ':latest'"],
    ),
    (
        "gateway-bad-allowlist",
        {GATEWAY: {"enabled": True, "allowedInternal": ["not a host!"]}},
        ["tfserving:gateway.allowedInternal allowlist entry 'not a host!' is neither a CIDR/IP"],
    ),
    (
        "gateway-download-cap",
        {GATEWAY: {"enabled": True, "maxDownloadBytes": 10}},
        ["tfserving:gateway.maxDownloadBytes must be between 1024"],
    ),
    (
        "gateway-node-port",
        {GATEWAY: {"enabled": True, "service": {"type": "NodePort", "nodePort": 2}}},
        ["tfserving:gateway.service.nodePort must be in the NodePort range"],
    ),
    (
        "gateway-autoscaling",
        {GATEWAY: {"enabled": True, "autoscaling": {"minReplicas": 3, "maxReplicas": 2}}},
        ["tfserving:gateway.autoscaling.maxReplicas must be >= minReplicas (3), got 2"],
    ),
    (
        "gateway-allowlist-ip-out-of-range",
        {GATEWAY: {"enabled": True, "allowedInternal": ["10.0.0.300"]}},
        ["tfserving:gateway.allowedInternal allowlist entry '10.0.0.300' is neither a CIDR/IP"],
    ),
    (
        "gateway-download-timeout-zero",
        {GATEWAY: {"enabled": True, "downloadTimeoutSeconds": 0}},
        ["tfserving:gateway.downloadTimeoutSeconds must be more than 0 and at most 300 seconds"],
    ),
    (
        "gateway-threads-above-the-gateways-cap",
        {
            GATEWAY: {
                "enabled": True,
                "resources": {
                    "requests": {"cpu": "1", "memory": "128Mi"},
                    "limits": {"cpu": "65", "memory": "512Mi"},
                },
            }
        },
        [
            "tfserving:gateway.resources.limits.cpu (65) gives one decode thread per core",
            "GATEWAY_WORKER_THREADS must be between 0 and 64, got 65",
        ],
    ),
    (
        "gateway-in-flight",
        {GATEWAY: {"enabled": True, "maxInFlight": 0}},
        ["tfserving:gateway.maxInFlight must be between 1 and 10000, got 0"],
    ),
]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [(c, e) for _, c, e in GATEWAY_BAD_CONFIGS],
    ids=[i for i, _, _ in GATEWAY_BAD_CONFIGS],
)
def test_bad_gateway_config_exits_2_naming_the_key(tmp_path, capsys, changes, expected):
    stderr = render_expecting_error(tmp_path, merged(dev_config(), changes), capsys)
    for text in expected:
        assert text in stderr
