"""What AWS accepts: instance types we can run nodes on, regions, the provider's `aws:*` keys."""

import json
import subprocess
import sys

import pytest

from config.aws import (
    AWS_KEYS,
    InstanceType,
    _camel,
    _is_arm,
    _provider_keys,
    instance_type,
    key_problem,
    region_problem,
)
from config.paths import PROJECT_ROOT


def test_camel_case_as_the_stack_file_writes_provider_keys():
    assert _camel("skip_credentials_validation") == "skipCredentialsValidation"
    assert _camel("s3_us_east1_regional_endpoint") == "s3UsEast1RegionalEndpoint"
    assert _camel("region") == "region"


def test_the_provider_keys_are_its_config_properties():
    keys = _provider_keys()
    assert keys == AWS_KEYS
    assert {"region", "profile", "accessKey", "skipCredentialsValidation", "defaultTags"} <= keys
    assert not any(key.startswith("_") for key in keys)
    assert len(keys) >= 30


def test_a_fresh_interpreter_knows_the_provider_keys():
    # pulumi_aws.config is a lazy module: its properties exist only once it has been touched.
    script = "import json; from config.aws import AWS_KEYS; print(json.dumps(sorted(AWS_KEYS)))"
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, check=True, text=True
    ).stdout
    fresh = json.loads(out)
    assert {"region", "profile", "accessKey", "skipCredentialsValidation"} <= set(fresh)
    assert fresh == sorted(_provider_keys()) == sorted(AWS_KEYS)


@pytest.mark.parametrize(
    ("family", "arm"),
    [
        ("a1", True),
        ("p6e-gb200", True),  # Grace
        ("m7g", True),
        ("c7gn", True),
        ("im4gn", True),
        ("m5", False),
        ("m5d", False),
        ("g5", False),  # the g of a GPU family is its name, not a Graviton letter
        ("g4dn", False),
        ("c7i-flex", False),
        ("u-3tb1", False),  # high memory, no family pattern
    ],
)
def test_arm_families(family, arm):
    assert _is_arm(family) is arm


def test_an_instance_type_knows_its_family_and_gpus():
    gpu = instance_type("g5.xlarge")
    assert gpu == InstanceType("g5.xlarge")
    assert (gpu.family, gpu.nvidia_gpus, str(gpu)) == ("g5", True, "g5.xlarge")
    cpu = instance_type("u-3tb1.56xlarge")
    assert (cpu.family, cpu.nvidia_gpus) == ("u-3tb1", False)
    assert instance_type(cpu) is cpu


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (5, "must be an EC2 instance type like m5.large, got 5"),
        ("m5.lrage", "is not an EC2 instance type, got 'm5.lrage'; did you mean m5.large?"),
        ("qq.large", "is not an EC2 instance type, got 'qq.large'"),
        (
            "m7g.large",
            "must be an x86_64 instance type: m7g.large is Arm (Graviton), and the "
            "tensorflow/serving image and the model image are linux/amd64 only",
        ),
        (
            "p2.xlarge",
            "p2.xlarge has an NVIDIA GPU too old for TF Serving's CUDA 12 builds: use g4dn, g5, "
            "g6 or newer",
        ),
        ("mac1.metal", "mac1.metal is a Mac instance, which cannot be an EKS node"),
        ("mac-m4.metal", "mac-m4.metal is a Mac instance, which cannot be an EKS node"),
        (
            "inf2.xlarge",
            "inf2.xlarge's accelerator is not one TF Serving can use (it needs NVIDIA GPUs): use "
            "a CPU type such as m5.large or an NVIDIA family such as g5",
        ),
    ],
)
def test_instance_types_we_cannot_run_nodes_on(value, message):
    with pytest.raises(ValueError) as caught:
        instance_type(value)
    assert str(caught.value) == message


def test_region_problems_with_a_suggestion_when_one_is_close():
    assert region_problem("eu-west-1") is None
    assert region_problem("us-eats-1") == (
        "aws:region is not an AWS region, got 'us-eats-1'; did you mean us-east-1?"
    )
    assert region_problem("us-gov") == "aws:region is not an AWS region, got 'us-gov'"
    assert region_problem("mars-1") == "aws:region is not an AWS region, got 'mars-1'"


def test_provider_key_problems_with_a_suggestion_when_one_is_close():
    assert key_problem("region") is None
    assert key_problem("skipCredentialsValidation") is None
    assert (
        key_problem("regin")
        == "aws:regin is not a setting of the AWS provider; did you mean aws:region?"
    )
    assert key_problem("zzzz") == "aws:zzzz is not a setting of the AWS provider"
