"""A workload tier's settings: resources, batching, GPUs and images, autoscaling; every edge."""

from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from config.errors import describe
from config.quantity import Quantity
from config.workload import (
    AutoscalingSettings,
    BatchingSettings,
    ResourceAmounts,
    Resources,
    ServerSettings,
    _amounts,
    _positive,
    autoscaling,
    resources,
)

DIGEST = "0123456789abcdef" * 4


def refusals(model: type[BaseModel], data: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return [describe(error) for error in caught.value.errors()]


@pytest.mark.parametrize("cpu", ["1m", "0.001", "256", "256000m"])
def test_cpu_edges_are_accepted(cpu):
    assert ResourceAmounts.model_validate({"cpu": cpu, "memory": "1Gi"}).cpu.text == cpu


@pytest.mark.parametrize("cpu", ["0.5m", "0", "257", "256001m"])
def test_cpu_beyond_the_edges_is_refused(cpu):
    assert refusals(ResourceAmounts, {"cpu": cpu, "memory": "1Gi"}) == [
        f"tfserving:cpu must be between 1m and 256 cores (e.g. 500m, 1, 2), got {cpu!r}"
    ]


@pytest.mark.parametrize("memory", ["16Mi", str(16 * 2**20), "4Ti", str(4 * 2**40)])
def test_memory_edges_are_accepted(memory):
    assert ResourceAmounts.model_validate({"cpu": 1, "memory": memory}).memory.text == memory


@pytest.mark.parametrize("memory", [str(16 * 2**20 - 1), "15Mi", str(4 * 2**40 + 1), "5Ti"])
def test_memory_beyond_the_edges_is_refused(memory):
    assert refusals(ResourceAmounts, {"cpu": 1, "memory": memory}) == [
        f"tfserving:memory must be between 16Mi and 4Ti of memory (e.g. 256Mi, 1Gi), got {memory!r}"
    ]


def test_amounts_keep_the_text_and_the_exact_amount():
    amounts = _amounts("250m", "256Mi")
    assert amounts.cpu == Quantity("250m", Decimal("0.25"))
    assert amounts.memory == Quantity("256Mi", Decimal(256 * 2**20))
    assert amounts.model_dump() == {"cpu": "250m", "memory": "256Mi"}


def test_resources_from_code_pairs():
    made = resources(requests=("100m", "64Mi"), limits=("2", "1Gi"))
    assert made.model_dump() == {
        "requests": {"cpu": "100m", "memory": "64Mi"},
        "limits": {"cpu": "2", "memory": "1Gi"},
    }


def test_requests_may_equal_limits_but_not_exceed_them():
    same = {"cpu": "1", "memory": "1Gi"}
    assert Resources.model_validate({"requests": same, "limits": same}).requests.cpu.text == "1"
    cpu = {"requests": {"cpu": "1500m", "memory": "1Gi"}, "limits": same}
    assert refusals(Resources, cpu) == [
        "tfserving:requests.cpu (1500m) must not exceed limits.cpu (1)"
    ]
    memory = {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": same}
    assert refusals(Resources, memory) == [
        "tfserving:requests.memory (2Gi) must not exceed limits.memory (1Gi)"
    ]


@pytest.mark.parametrize(
    ("limit", "threads"), [("100m", 1), ("1", 1), ("1001m", 2), ("2", 2), ("3500m", 4)]
)
def test_threads_are_the_cpu_limit_rounded_up(limit, threads):
    settings = Resources.model_validate(
        {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": limit, "memory": "1Gi"}}
    )
    assert settings.cpu_threads == threads


BATCHING_EDGES = [
    ("maxBatchSize", 1, 65536),
    ("batchTimeoutMicros", 0, 10_000_000),
    ("maxEnqueuedBatches", 1, 1_000_000),
    ("numBatchThreads", 1, 256),
]


@pytest.mark.parametrize(("key", "low", "high"), BATCHING_EDGES)
def test_batching_bounds_at_both_edges(key, low, high):
    for accepted in (low, high):
        BatchingSettings.model_validate({key: accepted})
    for refused in (low - 1, high + 1):
        assert refusals(BatchingSettings, {key: refused}) == [
            f"tfserving:{key} must be between {low} and {high}, got {refused}"
        ]


def test_batch_sizes_increase_from_one_or_more_up_to_the_largest_batch():
    accepted = BatchingSettings.model_validate(
        {"maxBatchSize": 32, "allowedBatchSizes": [1, 8, 32]}
    )
    assert accepted.allowed_batch_sizes == [1, 8, 32]
    assert BatchingSettings.model_validate({"maxBatchSize": 4, "allowedBatchSizes": [4]})
    for sizes in ([], [8, 8, 32], [16, 8, 32]):
        assert refusals(BatchingSettings, {"maxBatchSize": 32, "allowedBatchSizes": sizes}) == [
            f"tfserving:allowedBatchSizes must be increasing sizes, got {sizes}"
        ]
    for sizes in ([0, 32], [1, 16]):
        assert refusals(BatchingSettings, {"maxBatchSize": 32, "allowedBatchSizes": sizes}) == [
            "tfserving:allowedBatchSizes must end with maxBatchSize (32) and start at 1 or more, "
            f"got {sizes}"
        ]


def test_gpus_per_pod_from_zero_to_eight():
    assert ServerSettings.model_validate({"gpu": 8}).gpu == 8
    for gpus in (-1, 9):
        assert refusals(ServerSettings, {"gpu": gpus}) == [
            f"tfserving:gpu must be between 0 and 8 GPUs per pod, got {gpus}"
        ]


def test_the_default_image_follows_the_gpus():
    assert ServerSettings.model_validate({}).image == "tensorflow/serving:2.20.0"
    assert ServerSettings.model_validate({"gpu": 0}).image == "tensorflow/serving:2.20.0"
    gpu = ServerSettings.model_validate({"gpu": 2})
    assert (gpu.image, gpu.tag) == ("tensorflow/serving:2.20.0-gpu", "2.20.0-gpu")
    own = ServerSettings.model_validate({"gpu": 1, "image": "registry/serving:2.19.1-gpu"})
    assert own.image == "registry/serving:2.19.1-gpu"
    assert ServerSettings.model_validate({"image": "busybox:1.36"}).image == "busybox:1.36"


def test_a_digest_pinned_image_is_trusted_with_or_without_gpus():
    image = f"registry/serving@sha256:{DIGEST}"
    for gpus in (0, 2):
        settings = ServerSettings.model_validate({"gpu": gpus, "image": image})
        assert (settings.image, settings.tag) == (image, DIGEST[:12])


def test_the_image_must_fit_the_gpus():
    assert refusals(ServerSettings, {"gpu": 1, "image": "tensorflow/serving:2.20.0"}) == [
        "tfserving:image must be a TF Serving GPU image when server.gpu is 1 (the tag ends in "
        "-gpu, e.g. tensorflow/serving:2.20.0-gpu), got 'tensorflow/serving:2.20.0'"
    ]
    assert refusals(ServerSettings, {"image": "tensorflow/serving:2.19.1-gpu"}) == [
        "tfserving:image is a GPU image but server.gpu is 0: set server.gpu (GPUs per pod) or use "
        "tensorflow/serving:2.19.1"
    ]


@pytest.mark.parametrize(
    ("value", "positive"),
    [(1, True), (8, True), (0, False), (-1, False), (True, False), ("1", False), (None, False)],
)
def test_only_a_whole_number_above_zero_asks_for_gpus(value, positive):
    assert _positive(value) is positive


AUTOSCALING_EDGES = [
    ("minReplicas", 1, None, "must be >= 1, got {}"),
    ("maxReplicas", 1, 1000, "must be between 1 and 1000, got {}"),
    (
        "targetCpuUtilization",
        1,
        100,
        "must be between 1 and 100 (percent of the CPU request), got {}",
    ),
    ("scaleDownStabilizationSeconds", 0, 3600, "must be between 0 and 3600 seconds, got {}"),
]


@pytest.mark.parametrize(("key", "low", "high", "message"), AUTOSCALING_EDGES)
def test_autoscaling_bounds_at_both_edges(key, low, high, message):
    base = {"minReplicas": 1, "maxReplicas": 1000}
    for accepted in (low, high) if high is not None else (low,):
        AutoscalingSettings.model_validate({**base, key: accepted})
    for refused in (low - 1, high + 1) if high is not None else (low - 1,):
        assert refusals(AutoscalingSettings, {**base, key: refused}) == [
            f"tfserving:{key} {message.format(refused)}"
        ]


def test_max_replicas_may_equal_min_replicas_but_not_be_below():
    same = AutoscalingSettings.model_validate({"minReplicas": 3, "maxReplicas": 3})
    assert (same.min_replicas, same.max_replicas) == (3, 3)
    assert refusals(AutoscalingSettings, {"minReplicas": 3, "maxReplicas": 2}) == [
        "tfserving:maxReplicas must be >= minReplicas (3), got 2"
    ]


def test_autoscaling_from_code_by_python_names():
    made = autoscaling(2, 7, 55)
    assert (made.min_replicas, made.max_replicas, made.target_cpu_utilization) == (2, 7, 55)
    assert made.scale_down_stabilization_seconds == 300
