"""Who may use the gateway and who may watch it: API keys from a Pulumi secret, /metrics on its
own port, the canary split; each checked against the gateway's own reader of the same setting."""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.gateway import API_KEYS_SECRET_NAME
from gateway import contract
from gateway.settings import load_settings
from tests.config.support import canary_stack, render_expecting_error
from tests.conftest import PROJECT_ROOT, one, write_stack
from tools.render import __main__ as render
from tools.render import render_stack
from tools.render.engine import REDACTED

KEYS = ["k" * 32, "rotated-key-0123456789abcdefghijkl", "Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4eHg="]
SECRET = "tfserving:gatewayApiKeys"
EKS_GPU = PROJECT_ROOT / "Pulumi.eks-gpu.yaml"


def _config(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())["config"]


def _gateway_stack(**changes: Any) -> dict[str, Any]:
    return {**_config(PROJECT_ROOT / "Pulumi.gateway.yaml"), **changes}


@pytest.fixture
def as_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    # How the engine tells a program which config keys it decrypted.
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps([SECRET]))


def _gateway(rendered: Any, kind: str) -> dict[str, Any]:
    return one(rendered, kind, "tfserving-gateway")


def test_keys_reach_the_gateway_as_a_mounted_key_file(tmp_path, as_secret):
    stack = write_stack(tmp_path, _gateway_stack(**{SECRET: json.dumps(KEYS)}))
    rendered = render_stack(stack, reveal_secrets=True)
    (secret,) = [o for o in rendered.kubernetes_objects if o["kind"] == "Secret"]
    assert secret["metadata"]["name"] == API_KEYS_SECRET_NAME
    assert secret["type"] == "Opaque"
    # The gateway's own reader gets back exactly the keys the stack holds, in order.
    assert contract.read_api_keys(secret["stringData"][contract.API_KEYS_SECRET_KEY]) == tuple(KEYS)
    deployment = _gateway(rendered, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if "secret" in v]
    assert volume["secret"] == {"secretName": API_KEYS_SECRET_NAME, "defaultMode": 0o440}
    (container,) = pod["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    # A directory mount: a subPath would never see a rotation.
    assert mount == {"name": volume["name"], "mountPath": "/etc/gateway/api-keys", "readOnly": True}
    env = one(rendered, "ConfigMap", "tfserving-gateway-env")["data"]
    assert env["GATEWAY_API_KEYS_FILE"] == "/etc/gateway/api-keys/keys"
    assert env["GATEWAY_API_KEYS_FILE"] == f"{mount['mountPath']}/{contract.API_KEYS_SECRET_KEY}"
    assert load_settings(env).api_keys_file == env["GATEWAY_API_KEYS_FILE"]


def test_written_files_never_hold_a_key(tmp_path, capsys, as_secret):
    stack = write_stack(tmp_path, _gateway_stack(**{SECRET: json.dumps(KEYS)}))
    out = tmp_path / "out"
    assert render.main(["--stack-file", str(stack), "--out", str(out)]) == 0
    capsys.readouterr()
    written = "".join(p.read_text() for p in sorted(out.iterdir()))
    assert written.count("tfserving-gateway-api-keys") >= 2  # the Secret and its volume
    for key in KEYS:
        assert key not in written
    documents = list(yaml.safe_load_all((out / "kubernetes.yaml").read_text()))
    (secret,) = [d for d in documents if d["kind"] == "Secret"]
    assert secret["stringData"] == {"keys": REDACTED}
    # Applied as is, the redacted file fails the gateway's start-up: it never runs open.
    with pytest.raises(contract.ContractError):
        contract.read_api_keys(secret["stringData"]["keys"])


def test_an_undecrypted_stack_file_renders_a_gateway_that_will_not_start(tmp_path):
    ciphertext = {"secure": "v1:0fa2hTW2Zp9xNVYJ:8DQ0HgAeBoCRKTwe4vO1Dvq2BWJ4"}
    stack = write_stack(tmp_path, _gateway_stack(**{SECRET: ciphertext}))
    rendered = render_stack(stack, reveal_secrets=True)
    (secret,) = [o for o in rendered.kubernetes_objects if o["kind"] == "Secret"]
    with pytest.raises(contract.ContractError, match="holds no API key"):
        contract.read_api_keys(secret["stringData"]["keys"])


def _stderr_of(tmp_path: Path, config: dict[str, Any], capsys: Any) -> str:
    return render_expecting_error(tmp_path, config, capsys)


def test_plain_text_keys_in_the_stack_file_are_refused(tmp_path, capsys):
    stderr = _stderr_of(tmp_path, _gateway_stack(**{SECRET: json.dumps(KEYS)}), capsys)
    assert (
        "tfserving:gatewayApiKeys must be stored encrypted, it is plain text in the stack: "
        "pulumi config rm tfserving:gatewayApiKeys, then pulumi config set --secret "
        "tfserving:gatewayApiKeys '[\"<key>\"]'" in stderr
    )
    assert all(key not in stderr for key in KEYS)


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (["short"], "API key 1 must have 32 to 512 characters, it has 5"),
        ([KEYS[0], "k" * 31 + "\n"], "API key 2 may only hold letters, digits"),
        ([KEYS[0], "k" * 31 + "!"], "API key 2 may only hold letters, digits"),
        ([KEYS[0], KEYS[0]], "API key 2 repeats API key 1"),
        ([], "holds no API key: at least one is needed"),
    ],
    ids=["too-short", "trailing-newline", "bad-character", "repeated", "empty"],
)
def test_bad_keys_are_named_by_position_never_by_text(tmp_path, capsys, as_secret, keys, expected):
    stderr = _stderr_of(tmp_path, _gateway_stack(**{SECRET: json.dumps(keys)}), capsys)
    assert f"tfserving:gatewayApiKeys {expected}" in stderr
    assert "openssl rand -base64 32" in stderr
    assert all(key.strip() not in stderr for key in keys)


def test_keys_are_a_json_list(tmp_path, capsys, as_secret):
    stderr = _stderr_of(tmp_path, _gateway_stack(**{SECRET: KEYS[0]}), capsys)
    assert "tfserving:gatewayApiKeys must be a JSON list of API keys" in stderr
    assert KEYS[0] not in stderr


def test_keys_without_the_gateway_are_refused(tmp_path, capsys, as_secret):
    config = {**_config(PROJECT_ROOT / "Pulumi.dev.yaml"), SECRET: json.dumps(KEYS)}
    stderr = _stderr_of(tmp_path, config, capsys)
    assert "tfserving:gatewayApiKeys only applies while tfserving:gateway.enabled is true" in stderr


def _internet_facing(config: dict[str, Any]) -> dict[str, Any]:
    gateway = dict(config["tfserving:gateway"])
    gateway["service"] = {
        "type": "LoadBalancer",
        "scheme": "internet-facing",
        "allowedSourceRanges": ["203.0.113.0/24"],
    }
    return {**config, "tfserving:gateway": gateway}


def test_an_internet_facing_gateway_needs_keys(tmp_path, capsys):
    stderr = _stderr_of(tmp_path, _internet_facing(_config(EKS_GPU)), capsys)
    assert (
        "tfserving:gatewayApiKeys is required while the gateway's load balancer is "
        "internet-facing (gateway.service.scheme): anyone could use the model" in stderr
    )


def test_an_internet_facing_gateway_with_keys_renders(tmp_path, as_secret):
    config = {**_internet_facing(_config(EKS_GPU)), SECRET: json.dumps(KEYS)}
    rendered = render_stack(write_stack(tmp_path, config, stack="eks-gpu"))
    service = _gateway(rendered, "Service")
    assert service["spec"]["loadBalancerSourceRanges"] == ["203.0.113.0/24"]
    assert [
        o["metadata"]["name"] for o in rendered.kubernetes_objects if o["kind"] == "Secret"
    ] == [API_KEYS_SECRET_NAME]


# --- /metrics on its own port --------------------------------------------------------------


@pytest.fixture(scope="module")
def gateway_render() -> Any:
    return render_stack(PROJECT_ROOT / "Pulumi.gateway.yaml")


def test_metrics_are_scraped_on_their_own_port_which_no_service_exposes(gateway_render):
    deployment = _gateway(gateway_render, "Deployment")
    template = deployment["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    (container,) = template["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 9696, "metrics": contract.METRICS_PORT.default}
    assert annotations["prometheus.io/port"] == str(ports["metrics"])
    assert annotations["prometheus.io/path"] == contract.METRICS_PATH
    # The gateway itself listens for /metrics where the annotation points (no env override).
    env = one(gateway_render, "ConfigMap", "tfserving-gateway-env")["data"]
    assert load_settings(env).metrics_port == ports["metrics"] != load_settings(env).listen_port
    service = _gateway(gateway_render, "Service")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    assert all(p["port"] != ports["metrics"] for p in service["spec"]["ports"])


def test_only_the_named_namespaces_may_scrape(tmp_path):
    gateway = {**_config(PROJECT_ROOT / "Pulumi.gateway.yaml")["tfserving:gateway"]}
    gateway["metricsNamespaces"] = ["observability", "prometheus"]
    rendered = render_stack(write_stack(tmp_path, _gateway_stack(**{"tfserving:gateway": gateway})))
    policy = _gateway(rendered, "NetworkPolicy")
    (metrics,) = [r for r in policy["spec"]["ingress"] if r["ports"][0]["port"] == "metrics"]
    (peer,) = metrics["from"]
    assert peer == {
        "namespaceSelector": {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "In",
                    "values": ["observability", "prometheus"],
                }
            ]
        }
    }
    gateway["metricsNamespaces"] = []
    rendered = render_stack(write_stack(tmp_path, _gateway_stack(**{"tfserving:gateway": gateway})))
    policy = _gateway(rendered, "NetworkPolicy")
    assert [r["ports"][0]["port"] for r in policy["spec"]["ingress"]] == ["http"]


# --- canary --------------------------------------------------------------------------------


@pytest.mark.parametrize("percent", [0, 12.5, 100])
def test_the_canary_split_reaches_the_gateway(tmp_path, percent):
    config = canary_stack({"label": "canary", "percent": percent})
    env = one(render_stack(write_stack(tmp_path, config)), "ConfigMap", "tfserving-gateway-env")
    data = env["data"]
    assert (data["GATEWAY_CANARY_LABEL"], data["GATEWAY_STABLE_LABEL"]) == ("canary", "stable")
    assert data["GATEWAY_CANARY_PERCENT"] == str(percent)
    loaded = load_settings(data)
    assert (loaded.canary_label, loaded.canary_percent, loaded.stable_label) == (
        "canary",
        percent,
        "stable",
    )


def test_a_bad_canary_stops_the_render(tmp_path, capsys):
    # Every way a canary is refused is pinned in tests/config/test_gateway_access_rules.py.
    stderr = _stderr_of(tmp_path, canary_stack({"label": "beta", "percent": 10}), capsys)
    assert "tfserving:gateway.canary.label 'beta' is not a version label" in stderr
