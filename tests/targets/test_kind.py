"""Target kind: its context, metrics-server from the pinned chart before everything, node ports on
127.0.0.1 through the shipped cluster config, images loaded with `kind load docker-image`."""

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.settings import KindSettings
from config.stack import parse
from tests.conftest import PROJECT_ROOT, one, one_resource, resources_of, write_stack
from tools.kind import __main__ as kind_tool
from tools.render import Rendered, render_stack

KIND_STACK = PROJECT_ROOT / "Pulumi.kind.yaml"
CLUSTER_YAML = PROJECT_ROOT / "tools" / "kind" / "cluster.yaml"
CHART = "kubernetes:helm.sh/v4:Chart"
IMAGE = "docker-build:index:Image"


def kind_config() -> dict[str, Any]:
    return yaml.safe_load(KIND_STACK.read_text())["config"]


@pytest.fixture(scope="module")
def kind() -> Rendered:
    return render_stack(KIND_STACK)


def with_images(directory: Path, **changes: Any) -> Path:
    """The kind stack with the model baked into an image and the gateway built: two images."""
    config = copy.deepcopy(kind_config())
    config["tfserving:model"] = {"name": "shapes", "source": "image", "path": "models/shapes"}
    config["tfserving:service"] = {"type": "ClusterIP"}
    config["tfserving:gateway"] = {
        "enabled": True,
        "inputName": "image",
        "outputName": "probabilities",
        "imageSize": 64,
        "preprocessing": "unit",
        "labelsFile": "models/shapes/labels.txt",
        "softmax": False,
        "service": {"type": "NodePort", "nodePort": 30002},
    }
    config.update(changes)
    return write_stack(directory, config, stack="kind")


def test_the_provider_is_the_kind_clusters_context(kind):
    provider = one_resource(kind, "pulumi:providers:kubernetes")
    assert provider["name"] == "kind"
    assert provider["inputs"] == {"context": "kind-tfserving"}
    assert kind.outputs["target"] == "kind"


def test_the_context_follows_the_cluster_name(tmp_path):
    config = {**kind_config(), "tfserving:clusterName": "course"}
    rendered = render_stack(write_stack(tmp_path, config, stack="kind"))
    provider = one_resource(rendered, "pulumi:providers:kubernetes")
    assert provider["inputs"] == {"context": "kind-course"}
    assert "--context kind-course " in rendered.outputs["portForwardCommand"]


def test_settings_defaults() -> None:
    settings = parse({"tfserving:target": "kind"})
    assert isinstance(settings, KindSettings)
    assert (settings.cluster_name, settings.kube_context) == ("tfserving", "kind-tfserving")


def test_every_kubernetes_object_is_on_kind_and_waits_for_metrics_server(kind):
    provider = one_resource(kind, "pulumi:providers:kubernetes")
    chart = one_resource(kind, CHART, "kind-metrics-server")
    objects = [r for r in kind.resources if r["type"].startswith("kubernetes:") and r["custom"]]
    assert len(objects) == len(kind.kubernetes_objects) >= 8
    for obj in objects:
        assert obj["provider"].startswith(provider["urn"] + "::"), obj["name"]
        # The HPA needs metrics-server; destroy removes the workload before it.
        assert chart["urn"] in obj["dependencies"], obj["name"]


def test_no_cloud_resources(kind):
    types = {r["type"] for r in kind.resources}
    assert not {t for t in types if t.startswith(("aws:", "awsx:", "eks:", "docker-build:"))}


def test_node_ports_are_reached_on_localhost(kind):
    outputs = kind.outputs
    service = one(kind, "Service", "tfserving-server-")
    assert service["spec"]["type"] == "NodePort"
    name = service["metadata"]["name"]
    assert outputs["predictUrlCommand"] == (
        f'echo "http://127.0.0.1:$(kubectl --context kind-tfserving -n tfserving get svc {name} '
        "-o jsonpath='{.spec.ports[?(@.name==\"http\")].nodePort}')"
        '/v1/models/half_plus_two:predict"'
    )
    assert outputs["portForwardCommand"] == (
        f"kubectl --context kind-tfserving -n tfserving port-forward svc/{name} 8501:8501"
    )
    # gRPC would get an unmapped, random node port: it stays in the cluster on kind.
    assert "grpcExternalAddressCommand" not in outputs
    assert [p["name"] for p in service["spec"]["ports"]] == ["http"]


def test_the_shipped_cluster_config_maps_every_node_port_to_localhost():
    config = yaml.safe_load(CLUSTER_YAML.read_text())
    assert (config["kind"], config["apiVersion"]) == ("Cluster", "kind.x-k8s.io/v1alpha4")
    assert config["name"] == kind_config()["tfserving:clusterName"]
    (node,) = config["nodes"]
    mappings = node["extraPortMappings"]
    # kind: NodePort with port mappings needs containerPort == the Service's nodePort.
    assert all(m["containerPort"] == m["hostPort"] for m in mappings)
    assert {m["listenAddress"] for m in mappings} == {"127.0.0.1"}
    mapped = {m["containerPort"] for m in mappings}
    # What the kind stack exposes, and the gateway's port of the gateway stack.
    assert kind_config()["tfserving:service"]["nodePort"] in mapped
    gateway = yaml.safe_load((PROJECT_ROOT / "Pulumi.gateway.yaml").read_text())["config"]
    assert gateway["tfserving:gateway"]["service"]["nodePort"] in mapped


def test_images_go_to_the_local_daemon_and_run_by_the_tag_kind_loads(tmp_path):
    rendered = render_stack(with_images(tmp_path))
    images = resources_of(rendered, IMAGE)
    assert len(images) == 2
    for image in images:
        assert not image["inputs"].get("push")
        assert [set(e) for e in image["inputs"]["exports"]] == [{"docker"}]
    tags = {t for i in images for t in i["inputs"]["tags"]}
    running = {
        c["image"]
        for d in rendered.kubernetes_objects
        if d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert running == tags, "the Deployments run exactly the tags `kind load` copies"
    for deployment in (o for o in rendered.kubernetes_objects if o["kind"] == "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            # IfNotPresent (the default for a versioned tag): the kubelet uses the loaded copy.
            assert container.get("imagePullPolicy", "IfNotPresent") == "IfNotPresent"


def test_make_learns_images_and_targets_from_the_render(tmp_path, capsys):
    stack = with_images(tmp_path)
    rendered = render_stack(stack)
    images = resources_of(rendered, IMAGE)
    assert kind_tool.main(["images", "--stack-file", str(stack)]) == 0
    printed = capsys.readouterr().out.split()
    assert sorted(printed) == sorted(t for i in images for t in i["inputs"]["tags"])
    assert kind_tool.main(["images", "--stack-file", str(stack), "--targets"]) == 0
    flags = capsys.readouterr().out.split()
    urns = [f.strip("'") for f in flags if f != "--target"]
    assert flags.count("--target") == len(urns) == 4  # each image and its component
    components = {r["urn"] for r in resources_of(rendered, "tfserving:index:ContainerImage")}
    assert set(urns) == {i["urn"] for i in images} | components
    assert all(u.startswith("urn:pulumi:kind::tfserving::") for u in urns)


def test_the_committed_kind_stack_builds_no_image(capsys):
    assert kind_tool.main(["images", "--stack", "kind"]) == 0
    assert kind_tool.main(["images", "--stack", "kind", "--targets"]) == 0
    assert capsys.readouterr().out.strip() == ""
    assert kind_tool.main(["cluster", "--stack", "kind"]) == 0
    assert capsys.readouterr().out == "tfserving\n"


def test_the_kind_tool_refuses_other_targets(capsys):
    assert kind_tool.main(["cluster", "--stack", "dev"]) == 2
    assert "Pulumi.dev.yaml is on target minikube, not kind" in capsys.readouterr().err
