"""The shared validators: image references and their tags, names, CIDR blocks, enumerations."""

from collections.abc import Callable
from typing import cast

import pytest

from config.base import choice, cidr, dns_label, image_tag, pinned_image
from config.service import ServiceType

DIGEST = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    "image",
    [
        "busybox:1.36",  # no registry, no path
        "tensorflow/serving:2.20.0",
        "localhost:5000/team/serving:2.20.0-gpu",  # a registry port is not a tag
        f"tensorflow/serving@sha256:{DIGEST}",
        f"tensorflow/serving:2.20.0@sha256:{DIGEST}",
    ],
)
def test_pinned_images_are_accepted_unchanged(image):
    assert pinned_image(image) == image


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("busybox", "must be pinned to a tag or digest, got untagged 'busybox'"),
        (
            "localhost:5000/serving",
            "must be pinned to a tag or digest, got untagged 'localhost:5000/serving'",
        ),
        (
            "tensorflow/serving:latest",
            "must be pinned to a version, not ':latest', got 'tensorflow/serving:latest'",
        ),
        (
            "localhost:5000/serving:latest",
            "must be pinned to a version, not ':latest', got 'localhost:5000/serving:latest'",
        ),
    ],
)
def test_unpinned_images_are_refused_with_the_reason(image, message):
    with pytest.raises(ValueError) as caught:
        pinned_image(image)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        ("busybox:1.36", "1.36"),
        ("tensorflow/serving:2.20.0-gpu", "2.20.0-gpu"),
        ("localhost:5000/serving:2.20.0", "2.20.0"),
        # a digest: its first 12 hex characters (a label value must stay short)
        (f"localhost:5000/serving@sha256:{DIGEST}", DIGEST[:12]),
        (f"serving:2.20.0@sha256:{DIGEST}", DIGEST[:12]),
    ],
)
def test_image_tag_is_the_tag_or_the_start_of_the_digest(image, tag):
    assert image_tag(image) == tag


def test_a_dns_label_is_at_most_63_lowercase_characters():
    longest = "a" + "-" * 61 + "b"
    assert dns_label(longest) == longest
    assert dns_label("tfserving-2") == "tfserving-2"
    for bad in ("a" * 64, "Tfserving", "-tfserving", "tfserving-", "tf_serving", ""):
        with pytest.raises(ValueError) as caught:
            dns_label(bad)
        assert str(caught.value) == (
            "must be a valid Kubernetes name (lowercase letters, digits and '-', starting and "
            f"ending with a letter or digit, at most 63 characters), got {bad!r}"
        )


def test_a_cidr_block_is_normalised_and_must_have_no_host_bits():
    assert cidr("203.0.113.0/24") == "203.0.113.0/24"
    assert cidr("2001:DB8::/32") == "2001:db8::/32"
    assert cidr("198.51.100.7") == "198.51.100.7/32"
    with pytest.raises(ValueError) as caught:
        cidr("10.0.0.1/8")
    assert str(caught.value) == (
        "must be a CIDR block like 203.0.113.0/24, got '10.0.0.1/8' (10.0.0.1/8 has host bits set)"
    )


def test_choice_takes_an_enum_value_or_member_and_names_every_option():
    check = cast(Callable[[object], object], choice(ServiceType).func)
    assert check("LoadBalancer") is ServiceType.LOAD_BALANCER
    assert check(ServiceType.CLUSTER_IP) is ServiceType.CLUSTER_IP
    for bad in ("nodeport", "", 3, None):
        with pytest.raises(ValueError) as caught:
            check(bad)
        assert str(caught.value) == f"must be one of NodePort, LoadBalancer, ClusterIP, got {bad!r}"
