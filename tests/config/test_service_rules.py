"""How a tier is reached: Service types, load balancer scheme and sources, TLS, gRPC exposure."""

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from config.errors import describe
from config.service import ModelServiceSettings, Scheme, ServiceSettings, ServiceType, TlsSettings

ARN = "arn:aws:acm:eu-west-1:123456789012:certificate/0123abcd-0123-4567-89ab-0123456789ab"
CHECKIP = "your address: curl -s https://checkip.amazonaws.com, then <ip>/32"
PUBLIC = {"type": "LoadBalancer", "scheme": "internet-facing"}
WORLD = {**PUBLIC, "allowedSourceRanges": ["0.0.0.0/0"]}


def refusals(model: type[BaseModel], data: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return [describe(error) for error in caught.value.errors()]


def test_an_acm_certificate_knows_its_region():
    tls = TlsSettings.model_validate({"certificateArn": ARN})
    assert tls.region == "eu-west-1"
    gov = ARN.replace("arn:aws:", "arn:aws-us-gov:").replace("eu-west-1", "us-gov-west-1")
    assert TlsSettings.model_validate({"certificateArn": gov}).region == "us-gov-west-1"
    bad = ARN.replace(":acm:", ":iam:")
    assert refusals(TlsSettings, {"certificateArn": bad}) == [
        "tfserving:certificateArn must be an ACM certificate ARN like arn:aws:acm:us-east-1:"
        f"123456789012:certificate/<id>, got {bad!r}"
    ]


def test_node_ports_from_30000_to_32767():
    for port in (30000, 32767):
        assert ServiceSettings.model_validate({"nodePort": port}).node_port == port
    for port in (29999, 32768):
        assert refusals(ServiceSettings, {"nodePort": port}) == [
            f"tfserving:nodePort must be in the NodePort range 30000-32767, got {port}"
        ]


def test_defaults_are_a_node_port_service_and_an_internal_scheme():
    service = ServiceSettings.model_validate({})
    assert (service.type, service.scheme) == (ServiceType.NODE_PORT, Scheme.INTERNAL)
    assert not (service.load_balancer or service.internet_facing or service.open_to_internet)


@pytest.mark.parametrize(
    ("data", "key", "type_"),
    [
        ({"type": "ClusterIP", "nodePort": 30001}, "nodePort", "ClusterIP"),
        ({"type": "LoadBalancer", "nodePort": 30001}, "nodePort", "LoadBalancer"),
    ],
)
def test_a_node_port_only_on_node_port_services(data, key, type_):
    assert refusals(ServiceSettings, data) == [
        f"tfserving:{key} only applies to type NodePort, not {type_}"
    ]


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"allowedSourceRanges": ["203.0.113.0/24"]}, "allowedSourceRanges"),
        ({"scheme": "internal"}, "scheme"),
        ({"tls": {"certificateArn": ARN}}, "tls"),
    ],
)
def test_load_balancer_keys_only_on_load_balancers(data, key):
    for type_ in ("NodePort", "ClusterIP"):
        assert refusals(ServiceSettings, {"type": type_, **data}) == [
            f"tfserving:{key} only applies to type LoadBalancer, not {type_}"
        ]


def test_an_internet_facing_load_balancer_says_who_may_reach_it():
    assert refusals(ServiceSettings, PUBLIC) == [
        "tfserving:allowedSourceRanges is required for an internet-facing load balancer: list who "
        f"may reach it ({CHECKIP}; 0.0.0.0/0 is everyone)"
    ]
    assert refusals(ServiceSettings, {**PUBLIC, "allowedSourceRanges": []}) == [
        f"tfserving:allowedSourceRanges must list at least one CIDR block ({CHECKIP})"
    ]
    internal = ServiceSettings.model_validate({"type": "LoadBalancer"})
    assert internal.load_balancer and not internal.internet_facing
    assert internal.allowed_source_ranges is None


@pytest.mark.parametrize(
    ("ranges", "open_"),
    [
        (["0.0.0.0/0"], True),
        (["::/0"], True),
        (["203.0.113.0/24", "0.0.0.0/0"], True),
        (["203.0.113.0/24"], False),
        (["0.0.0.0/1", "128.0.0.0/1"], False),  # everyone too, but not written as such
    ],
)
def test_open_to_the_internet_means_a_range_covering_every_address(ranges, open_):
    service = ServiceSettings.model_validate({**PUBLIC, "allowedSourceRanges": ranges})
    assert service.internet_facing
    assert service.open_to_internet is open_


def test_a_world_range_on_an_internal_load_balancer_is_not_internet_facing():
    internal = ServiceSettings.model_validate(
        {"type": "LoadBalancer", "allowedSourceRanges": ["0.0.0.0/0"]}
    )
    assert not internal.internet_facing and not internal.open_to_internet


def test_grpc_goes_on_the_service_unless_the_whole_internet_could_reach_it():
    assert ModelServiceSettings.model_validate({}).grpc_on_service
    assert not ModelServiceSettings.model_validate({"exposeGrpc": False}).grpc_on_service
    limited = {**PUBLIC, "allowedSourceRanges": ["203.0.113.0/24"]}
    assert ModelServiceSettings.model_validate(limited).grpc_on_service
    world = ModelServiceSettings.model_validate(WORLD)
    assert (world.expose_grpc, world.expose_grpc_to_internet) == (True, False)
    assert not world.grpc_on_service
    acknowledged = ModelServiceSettings.model_validate({**WORLD, "exposeGrpcToInternet": True})
    assert acknowledged.grpc_on_service


@pytest.mark.parametrize(
    "data",
    [
        {},
        {**PUBLIC, "allowedSourceRanges": ["203.0.113.0/24"]},
        {**WORLD, "exposeGrpc": False},
    ],
)
def test_the_grpc_acknowledgement_only_where_it_means_something(data):
    assert refusals(ModelServiceSettings, {**data, "exposeGrpcToInternet": True}) == [
        "tfserving:exposeGrpcToInternet only applies when exposeGrpc is true on an internet-facing "
        "load balancer whose allowedSourceRanges cover the whole internet (0.0.0.0/0 or ::/0)"
    ]
