"""Every default, written out: a stack that sets nothing gets exactly this."""

from typing import Any

from config.settings import EksSettings, MinikubeSettings
from config.stack import parse

RESOURCES = {
    "requests": {"cpu": "250m", "memory": "256Mi"},
    "limits": {"cpu": "1", "memory": "1Gi"},
}
COMMON: dict[str, Any] = {
    "namespace": "tfserving",
    "model": {
        "name": "half_plus_two",
        "source": "configmap",
        "path": "models/half_plus_two",
        "uri": None,
        "versionPolicy": None,
        "labels": None,
        "sizeLimit": None,
    },
    "models": None,
    "server": {
        "image": "tensorflow/serving:2.20.0",
        "resources": RESOURCES,
        "gpu": 0,
        "batching": None,
    },
    "service": {
        "type": "NodePort",
        "nodePort": None,
        "scheme": "internal",
        "allowedSourceRanges": None,
        "tls": None,
        "exposeGrpc": True,
        "exposeGrpcToInternet": False,
    },
    "autoscaling": {
        "minReplicas": 1,
        "maxReplicas": 3,
        "targetCpuUtilization": 60,
        "scaleDownStabilizationSeconds": 300,
    },
    "gateway": {
        "enabled": False,
        "model": None,
        "image": None,
        "resources": {
            "requests": {"cpu": "250m", "memory": "128Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        },
        "service": {
            "type": "NodePort",
            "nodePort": None,
            "scheme": "internal",
            "allowedSourceRanges": None,
            "tls": None,
        },
        "autoscaling": {
            "minReplicas": 1,
            "maxReplicas": 5,
            "targetCpuUtilization": 60,
            "scaleDownStabilizationSeconds": 300,
        },
        "signatureName": "serving_default",
        "inputName": "input_8",
        "outputName": "dense_7",
        "imageSize": 299,
        "preprocessing": "xception",
        "labels": None,
        "labelsFile": None,
        "softmax": True,
        "topK": 3,
        "maxDownloadBytes": 10485760,
        "downloadTimeoutSeconds": 10,
        "modelDeadlineSeconds": 5,
        "allowedInternal": [],
        "maxInFlight": 16,
        "canary": None,
        "metricsNamespaces": ["monitoring"],
    },
    "gatewayApiKeys": None,
}
EKS = {
    "cluster": {
        "version": "1.35",
        "upgradePolicy": "STANDARD",
        "compute": "nodeGroups",
        "availabilityZones": 2,
        "natGateways": "single",
        "nodeGroups": [
            {
                "name": "cpu",
                "instanceTypes": ["m5.large"],
                "minSize": 1,
                "desiredSize": 2,
                "maxSize": 4,
                "capacityType": "ON_DEMAND",
                "gpu": False,
                "diskSize": None,
            }
        ],
        "gpuNodePool": None,
        "adminRoleArns": [],
        "viewerRoleArns": [],
        "publicAccessCidrs": ["0.0.0.0/0"],
        "logRetentionDays": 30,
        "addonVersions": {},
    },
    "registry": {"forceDelete": True, "keepImages": 10},
}


def test_minikube_defaults():
    settings = parse({})
    assert isinstance(settings, MinikubeSettings)
    dumped = settings.model_dump(by_alias=True, mode="json")
    assert dumped == {**COMMON, "target": "minikube", "kubeContext": "minikube"}


def test_eks_defaults():
    settings = parse({"tfserving:target": "eks"})
    assert isinstance(settings, EksSettings)
    assert settings.model_dump(by_alias=True, mode="json") == {**COMMON, "target": "eks", **EKS}


def test_derived_defaults():
    settings = parse({})
    assert settings.model.folder.versions == (1,)
    assert settings.server.resources.cpu_threads == 1
    assert settings.server.tag == "2.20.0"
    assert settings.gateway.label_list == (
        "dress",
        "hat",
        "longsleeve",
        "outwear",
        "pants",
        "shirt",
        "shoes",
        "shorts",
        "skirt",
        "t-shirt",
    )
    assert settings.gateway.resources.cpu_threads == 1
