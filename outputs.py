"""The stack-output contract: output names, URL shapes and ports, shared by the program (which
exports them) and the tools that read them back (smoke test, load test, autoscaling demo).

A URL output comes either as the URL itself (`predictUrl`, on eks) or as a shell command that
prints it (`predictUrlCommand`, on minikube, where the node address is only known to
`minikube ip`): `command(PREDICT_URL)` names the second form.
"""

from gateway import contract as gateway_contract

# TF Serving's ports (the tensorflow/serving image's entrypoint fixes them).
GRPC_PORT = 8500
REST_PORT = 8501
# The gateway: its container listens on the contract's port, its Service on plain HTTP.
GATEWAY_CONTAINER_PORT = gateway_contract.LISTEN_PORT.default
GATEWAY_SERVICE_PORT = 80
GATEWAY_TLS_PORT = 443  # the gateway's Service port when its load balancer terminates TLS
GATEWAY_PREDICT_PATH = gateway_contract.PREDICT_PATH

COMMAND_SUFFIX = "Command"

# What the stack is and what it made.
TARGET = "target"
MODEL_NAME = "modelName"
NAMESPACE = "namespace"
SERVICE_NAME = "serviceName"
DEPLOYMENT_NAME = "deploymentName"
HPA_NAME = "hpaName"
GRPC_ADDRESS = "grpcAddress"  # in-cluster: dns:///<headless>.<ns>.svc.cluster.local:8500
REPOSITORY_URL = "repositoryUrl"
IMAGE_REF = "imageRef"
GATEWAY_SERVICE_NAME = "gatewayServiceName"
GATEWAY_HPA_NAME = "gatewayHpaName"
CLUSTER_NAME = "clusterName"
KUBECONFIG = "kubeconfig"
KUBECONFIG_COMMAND = "kubeconfigCommand"
# How to reach it: URL outputs (or their ...Command form) and port-forward commands.
PREDICT_URL = "predictUrl"
REST_URL = "restUrl"
GRPC_EXTERNAL_ADDRESS = "grpcExternalAddress"
LOAD_BALANCER_HOSTNAME = "loadBalancerHostname"
PORT_FORWARD_COMMAND = "portForwardCommand"
GATEWAY_URL = "gatewayUrl"
GATEWAY_PORT_FORWARD_COMMAND = "gatewayPortForwardCommand"


def command(output: str) -> str:
    """The output holding a shell command that prints `output`'s value."""
    return output + COMMAND_SUFFIX


def model_path(model_name: str) -> str:
    """TF Serving's REST model status path (GET: 200 with the versions' states, 404 unknown)."""
    return f"/v1/models/{model_name}"


def predict_path(model_name: str) -> str:
    """TF Serving's REST predict path (POST {"instances": [...]})."""
    return model_path(model_name) + ":predict"


def gateway_service_port(tls: bool) -> int:
    return GATEWAY_TLS_PORT if tls else GATEWAY_SERVICE_PORT


def local_port(port: int) -> int:
    """The local end of a port-forward: ports below 1024 need root to bind, so 80 -> 8080."""
    return port if port >= 1024 else port + 8000
