"""Settings of a workload tier (model server, gateway): resources, Service, autoscaling, image."""

import itertools
import math
from decimal import Decimal
from typing import Annotated, Any, Self

from pydantic import Field, PlainSerializer, PlainValidator, field_validator, model_validator

from config.base import PinnedImage, Strict, image_tag
from config.errors import InvalidSettingError
from config.quantity import Quantity, quantity

# Sane bounds: a typo such as `2M` cores (two million TF Serving threads) stops at preview.
MAX_CPU_CORES = Decimal(256)
MIN_CPU_CORES = Decimal("0.001")  # the API server's precision for CPU
MIN_MEMORY_BYTES = Decimal(16 * 2**20)
MAX_MEMORY_BYTES = Decimal(4 * 2**40)


def _cpu(value: object) -> Quantity:
    amount = quantity(value)
    if not MIN_CPU_CORES <= amount.amount <= MAX_CPU_CORES:
        raise ValueError(
            f"must be between 1m and {MAX_CPU_CORES} cores (e.g. 500m, 1, 2), got {value!r}"
        )
    return amount


def _memory(value: object) -> Quantity:
    amount = quantity(value)
    if not MIN_MEMORY_BYTES <= amount.amount <= MAX_MEMORY_BYTES:
        raise ValueError(f"must be between 16Mi and 4Ti of memory (e.g. 256Mi, 1Gi), got {value!r}")
    return amount


# Written back as the text the stack gave, which is what the manifests carry.
Cpu = Annotated[Quantity, PlainValidator(_cpu), PlainSerializer(str)]
Memory = Annotated[Quantity, PlainValidator(_memory), PlainSerializer(str)]


class ResourceAmounts(Strict):
    cpu: Cpu
    memory: Memory


def _amounts(cpu: str, memory: str) -> ResourceAmounts:
    return ResourceAmounts.model_validate({"cpu": cpu, "memory": memory})


class Resources(Strict):
    requests: ResourceAmounts = _amounts("250m", "256Mi")
    limits: ResourceAmounts = _amounts("1", "1Gi")

    @model_validator(mode="after")
    def _requests_within_limits(self) -> Self:
        for kind in ("cpu", "memory"):
            request, limit = getattr(self.requests, kind), getattr(self.limits, kind)
            if request.amount > limit.amount:
                raise InvalidSettingError(
                    f"({request}) must not exceed limits.{kind} ({limit})", at=f"requests.{kind}"
                )
        return self

    @property
    def cpu_threads(self) -> int:
        """Threads a process should run: the CPU limit in whole cores, at least one.

        Thread pools size themselves from the node's cores, not the pod's limit; sized from the
        limit they neither throttle on a big node nor starve a small pod.
        """
        return max(1, math.ceil(self.limits.cpu.amount))


def resources(requests: tuple[str, str], limits: tuple[str, str]) -> Resources:
    """Resources from (cpu, memory) pairs, for defaults written in code."""
    return Resources(requests=_amounts(*requests), limits=_amounts(*limits))


class BatchingSettings(Strict):
    """TF Serving's server-side batching (`--enable_batching` with a BatchingParameters file).

    Requests that arrive together run as one batch: far more throughput on a GPU and on many
    CPU cores, for a wait of up to batchTimeoutMicros per request.
    """

    enabled: bool = True
    # Most requests in one batch; the largest of allowedBatchSizes when those are given.
    max_batch_size: Annotated[int, Field(alias="maxBatchSize")] = 32
    # How long a partial batch waits for more requests before it runs (microseconds).
    batch_timeout_micros: Annotated[int, Field(alias="batchTimeoutMicros")] = 1000
    # Batches that may wait for a thread; beyond, requests are refused (UNAVAILABLE) at once.
    max_enqueued_batches: Annotated[int, Field(alias="maxEnqueuedBatches")] = 100
    # Threads running batches; default one per core of the CPU limit.
    num_batch_threads: Annotated[int | None, Field(alias="numBatchThreads")] = None
    # Pad batches up to one of these sizes (fewer distinct shapes: fewer graph variants on GPU).
    allowed_batch_sizes: Annotated[list[int] | None, Field(alias="allowedBatchSizes")] = None

    @model_validator(mode="after")
    def _sizes(self) -> Self:
        for key, value, low, high in (
            ("maxBatchSize", self.max_batch_size, 1, 65536),
            ("batchTimeoutMicros", self.batch_timeout_micros, 0, 10_000_000),
            ("maxEnqueuedBatches", self.max_enqueued_batches, 1, 1_000_000),
            ("numBatchThreads", self.num_batch_threads, 1, 256),
        ):
            if value is not None and not low <= value <= high:
                raise InvalidSettingError(f"must be between {low} and {high}, got {value}", key)
        sizes = self.allowed_batch_sizes
        if sizes is not None:
            if not sizes or any(b <= a for a, b in itertools.pairwise(sizes)):
                raise InvalidSettingError(
                    f"must be increasing sizes, got {sizes}", at="allowedBatchSizes"
                )
            if sizes[0] < 1 or sizes[-1] != self.max_batch_size:
                raise InvalidSettingError(
                    f"must end with maxBatchSize ({self.max_batch_size}) and start at 1 or "
                    f"more, got {sizes}",
                    at="allowedBatchSizes",
                )
        return self


DEFAULT_SERVER_IMAGE = "tensorflow/serving:2.20.0"
GPU_SUFFIX = "-gpu"  # TF Serving's GPU images: the same tag plus -gpu (CUDA, cuDNN, TensorRT)


class ServerSettings(Strict):
    """TF Serving: its image, resources and GPUs per pod."""

    # Without an explicit image, the default (or its -gpu variant when gpu > 0).
    image: PinnedImage = DEFAULT_SERVER_IMAGE
    resources: Resources = Resources()
    # NVIDIA GPUs per model-server pod (nvidia.com/gpu in its limits); 0 serves on CPUs.
    gpu: int = 0
    batching: BatchingSettings | None = None

    @field_validator("gpu")
    @classmethod
    def _gpus(cls, value: int) -> int:
        if not 0 <= value <= 8:
            raise ValueError(f"must be between 0 and 8 GPUs per pod, got {value}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _gpu_image(cls, data: Any) -> Any:
        # The -gpu variant of the default image when GPUs are asked for and no image is given.
        if isinstance(data, dict) and "image" not in data and _positive(data.get("gpu")):
            return {**data, "image": DEFAULT_SERVER_IMAGE + GPU_SUFFIX}
        return data

    @model_validator(mode="after")
    def _image_fits_gpus(self) -> Self:
        if "@sha256:" in self.image:
            return self  # a digest says nothing about the build: trust the stack
        gpu_image = self.tag.endswith(GPU_SUFFIX)
        if self.gpu > 0 and not gpu_image:
            raise InvalidSettingError(
                f"must be a TF Serving GPU image when server.gpu is {self.gpu} (the tag ends in "
                f"-gpu, e.g. {DEFAULT_SERVER_IMAGE}{GPU_SUFFIX}), got {self.image!r}",
                at="image",
            )
        if self.gpu == 0 and gpu_image:
            raise InvalidSettingError(
                f"is a GPU image but server.gpu is 0: set server.gpu (GPUs per pod) or use "
                f"{self.image.removesuffix(GPU_SUFFIX)}",
                at="image",
            )
        return self

    @property
    def tag(self) -> str:
        return image_tag(self.image)


def _positive(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


class AutoscalingSettings(Strict):
    min_replicas: Annotated[int, Field(alias="minReplicas")] = 1
    max_replicas: Annotated[int, Field(alias="maxReplicas")] = 3
    target_cpu_utilization: Annotated[int, Field(alias="targetCpuUtilization")] = 60
    scale_down_stabilization_seconds: Annotated[
        int, Field(alias="scaleDownStabilizationSeconds")
    ] = 300

    @field_validator("min_replicas")
    @classmethod
    def _at_least_one(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"must be >= 1, got {value}")
        return value

    @field_validator("max_replicas")
    @classmethod
    def _ceiling(cls, value: int) -> int:
        if not 1 <= value <= 1000:
            raise ValueError(f"must be between 1 and 1000, got {value}")
        return value

    @field_validator("target_cpu_utilization")
    @classmethod
    def _percentage(cls, value: int) -> int:
        if not 1 <= value <= 100:
            raise ValueError(f"must be between 1 and 100 (percent of the CPU request), got {value}")
        return value

    @field_validator("scale_down_stabilization_seconds")
    @classmethod
    def _window(cls, value: int) -> int:
        if not 0 <= value <= 3600:
            raise ValueError(f"must be between 0 and 3600 seconds, got {value}")
        return value

    @model_validator(mode="after")
    def _max_not_below_min(self) -> Self:
        if self.max_replicas < self.min_replicas:
            raise InvalidSettingError(
                f"must be >= minReplicas ({self.min_replicas}), got {self.max_replicas}",
                at="maxReplicas",
            )
        return self


def autoscaling(min_replicas: int, max_replicas: int, target: int) -> AutoscalingSettings:
    """Autoscaling settings written in code (defaults), by their Python names."""
    return AutoscalingSettings.model_validate(
        {"minReplicas": min_replicas, "maxReplicas": max_replicas, "targetCpuUtilization": target}
    )
