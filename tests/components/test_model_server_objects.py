"""The ModelServer component built alone, object by object: namespace, config, model files,
Deployment, Services, NetworkPolicies, HPA (and budget); one build per kind of exposure."""

from components import kube, model_sources
from components import tfserving_config as tfs
from config.model import ModelSettings
from config.workload import AutoscalingSettings, ServerSettings
from tests.components.mocked import plain
from tests.components.model_server_builds import (
    BALANCER,
    CONFIG_MOUNTS,
    GATEWAY,
    KIND,
    PORTS,
    SELECTOR,
    build,
    check_common,
    container,
    labels,
    name,
    objects,
    probes,
)


def test_a_node_port_server_for_one_configmap_model():
    model = ModelSettings.model_validate({"name": "half_plus_two", "path": "models/half_plus_two"})
    done = build([model], {"nodePort": 30001}, load_balancer=BALANCER)
    check_common(done, "2.20.0")
    found = objects(done)
    assert sorted(found) == sorted(
        [
            (KIND["ns"], "tfserving-namespace"),
            (KIND["cm"], "tfserving-env"),
            (KIND["cm"], "tfserving-monitoring"),
            (KIND["cm"], "tfserving-model"),
            (KIND["deploy"], "tfserving-server"),
            (KIND["netpol"], "tfserving-default-deny"),
            (KIND["netpol"], "tfserving-server"),
            (KIND["svc"], "tfserving-server"),
            (KIND["svc"], "tfserving-grpc"),
            (KIND["hpa"], "tfserving-server"),
        ]
    )
    assert done.one(KIND["cm"], "tfserving-env")["inputs"]["data"] == {
        "MODEL_NAME": "half_plus_two",
        "MODEL_BASE_PATH": "/models",
    }
    assert done.one(KIND["cm"], "tfserving-monitoring")["inputs"]["data"] == {
        "monitoring.config": tfs.monitoring_config()
    }
    deployment = done.one(KIND["deploy"], "tfserving-server")
    env, monitoring, files = (
        name(done, "cm", n) for n in ("tfserving-env", "tfserving-monitoring", "tfserving-model")
    )
    assert set(deployment["dependencies"]) >= {
        done.urn(n) for n in ("tfserving-env", "tfserving-monitoring", "tfserving-model")
    }
    assert deployment["inputs"]["spec"] == {
        "selector": {"matchLabels": SELECTOR},
        "strategy": plain(kube.rolling_update()),
        "revisionHistoryLimit": 5,
        "template": {
            "metadata": {
                "labels": labels("2.20.0"),
                "annotations": {
                    "prometheus.io/scrape": "true",
                    "prometheus.io/port": "8501",
                    "prometheus.io/path": "/monitoring/prometheus/metrics",
                },
            },
            "spec": {
                "automountServiceAccountToken": False,
                "securityContext": plain(kube.pod_security_context()),
                "terminationGracePeriodSeconds": 25,
                "volumes": [
                    {"name": "config", "configMap": {"name": monitoring}},
                    {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                    {
                        "name": "model",
                        "configMap": {
                            "name": files,
                            "defaultMode": 0o444,
                            "items": [
                                {"key": f.configmap_key, "path": f.relative_path}
                                for f in model.folder.files
                            ],
                        },
                    },
                ],
                "containers": [
                    {
                        "name": "tfserving",
                        "image": "tensorflow/serving:2.20.0",
                        "args": tfs.server_args([model], ServerSettings()),
                        "envFrom": [{"configMapRef": {"name": env}}],
                        "ports": PORTS,
                        "resources": {
                            "requests": {"cpu": "250m", "memory": "256Mi"},
                            "limits": {"cpu": "1", "memory": "1Gi"},
                        },
                        **probes("half_plus_two"),
                        # not behind a load balancer: no deregistration to wait for
                        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "15"]}}},
                        "securityContext": plain(kube.container_security_context()),
                        "volumeMounts": [
                            *CONFIG_MOUNTS,
                            {
                                "name": "model",
                                "mountPath": "/models/half_plus_two",
                                "readOnly": True,
                            },
                        ],
                    }
                ],
            },
        },
    }
    service = done.one(KIND["svc"], "tfserving-server")["inputs"]
    assert "annotations" not in service["metadata"]
    assert service["spec"] == {
        "type": "NodePort",
        "selector": SELECTOR,
        "ports": [
            {"name": "http", "port": 8501, "targetPort": "http", "nodePort": 30001},
            {"name": "grpc", "port": 8500, "targetPort": "grpc"},
        ],
    }
    policy = done.one(KIND["netpol"], "tfserving-server")["inputs"]["spec"]
    assert policy == {
        "podSelector": {"matchLabels": SELECTOR},
        "policyTypes": ["Ingress"],
        "ingress": [
            {"ports": [{"protocol": "TCP", "port": "http"}]},
            {"ports": [{"protocol": "TCP", "port": "grpc"}]},
        ],
    }
    assert done.one(KIND["hpa"], "tfserving-server")["inputs"]["spec"]["minReplicas"] == 1


def test_a_gpu_server_behind_a_world_open_load_balancer_with_s3_and_labelled_models():
    labelled = ModelSettings.model_validate(
        {
            "name": "a",
            "path": "models/half_plus_two",
            "labels": {"stable": 1},
            "versionPolicy": {"specific": [1]},
        }
    )
    copied = ModelSettings.model_validate(
        {"name": "b", "source": "s3", "uri": "s3://bucket/p/b", "sizeLimit": "1Gi"}
    )
    amounts = {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}
    server = {"gpu": 1, "batching": {"maxBatchSize": 8}, "resources": amounts}
    world = {
        "type": "LoadBalancer",
        "scheme": "internet-facing",
        "allowedSourceRanges": ["0.0.0.0/0"],
        "exposeGrpcToInternet": True,
    }
    done = build(
        [labelled, copied],
        world,
        server,
        image="registry/model:1",
        load_balancer=BALANCER,
        grpc_clients=[GATEWAY],
        service_account=True,
        region="eu-west-1",
        request_seconds=7.5,
        autoscaling=AutoscalingSettings.model_validate({"minReplicas": 2, "maxReplicas": 5}),
    )
    check_common(done, "2.20.0-gpu")
    settings = ServerSettings.model_validate(server)
    assert settings.batching is not None
    assert done.one(KIND["cm"], "tfserving-monitoring")["inputs"]["data"] == {
        "monitoring.config": tfs.monitoring_config(),
        "batching.config": tfs.batching_parameters(settings.batching, settings),
    }
    config = done.one(KIND["cm"], "tfserving-model-config")["inputs"]
    assert config["metadata"]["name"] == "tfserving-model-config"
    assert config["data"] == {"models.config": tfs.model_config([labelled, copied])}
    account = done.one(KIND["sa"], "tfserving-server")["inputs"]
    assert account["metadata"]["name"] == "tfserving-model-server"
    assert account["automountServiceAccountToken"] is False
    template = done.one(KIND["deploy"], "tfserving-server")["inputs"]["spec"]["template"]
    assert template["metadata"]["annotations"]["tfserving.dev/s3-model-1"] == (
        '{"uri": "s3://bucket/p/b", "versionPolicy": {}}'
    )
    pod = template["spec"]
    assert pod["serviceAccountName"] == "tfserving-model-server"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    # 10 s for the endpoints, 20 s for the load balancer, 8 s for the longest request; then 10 s
    assert pod["terminationGracePeriodSeconds"] == 48
    assert [c["name"] for c in pod["initContainers"]] == ["sync-1"]
    assert pod["initContainers"][0]["command"][2] == model_sources.sync_script(copied)
    assert pod["volumes"][-1] == {
        "name": "model-config",
        "configMap": {"name": "tfserving-model-config"},
    }
    server_container = container(done)
    assert server_container["image"] == "registry/model:1"
    assert server_container["args"] == tfs.server_args([labelled, copied], settings)
    assert server_container["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", "38"]}}}
    assert server_container["resources"] == {
        "requests": {"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": "1"},
        "limits": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"},
    }
    assert server_container["volumeMounts"] == [
        *CONFIG_MOUNTS,
        {"name": "model", "mountPath": "/models/a", "readOnly": True},
        {"name": "model-1", "mountPath": "/models/b", "readOnly": True},
        {"name": "model-config", "mountPath": "/etc/tfserving-models", "readOnly": True},
    ]
    assert {**probes("a"), "ports": PORTS} == {
        k: server_container[k] for k in (*probes("a"), "ports")
    }
    service = done.one(KIND["svc"], "tfserving-server")["inputs"]
    assert service["metadata"]["annotations"] == {
        "lb": "yes",
        "tfserving.dev/allow-world-grpc": "true",
    }
    assert service["spec"] == {
        "type": "LoadBalancer",
        "selector": SELECTOR,
        "ports": [
            {"name": "http", "port": 8501, "targetPort": "http"},
            {"name": "grpc", "port": 8500, "targetPort": "grpc"},
        ],
        "loadBalancerClass": "eks.amazonaws.com/nlb",
        "loadBalancerSourceRanges": ["0.0.0.0/0"],
    }
    assert done.one(KIND["netpol"], "tfserving-server")["inputs"]["spec"]["ingress"] == [
        {"ports": [{"protocol": "TCP", "port": "http"}]},
        {"ports": [{"protocol": "TCP", "port": "grpc"}]},
    ]
    assert done.one(KIND["pdb"], "tfserving-server")["inputs"]["spec"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": SELECTOR},
    }


def test_grpc_stays_off_a_world_open_load_balancer_and_only_the_gateway_reaches_it():
    world = {
        "type": "LoadBalancer",
        "scheme": "internet-facing",
        "allowedSourceRanges": ["0.0.0.0/0"],
    }
    model = ModelSettings.model_validate(
        {"name": "m", "source": "gcs", "uri": "gs://bucket/models/m"}
    )
    done = build([model], world, load_balancer=BALANCER, grpc_clients=[GATEWAY])
    service = done.one(KIND["svc"], "tfserving-server")["inputs"]
    assert service["metadata"]["annotations"] == {"lb": "yes"}
    assert [p["name"] for p in service["spec"]["ports"]] == ["http"]
    assert done.one(KIND["netpol"], "tfserving-server")["inputs"]["spec"]["ingress"] == [
        {"ports": [{"protocol": "TCP", "port": "http"}]},
        {
            "from": [{"podSelector": {"matchLabels": GATEWAY}}],
            "ports": [{"protocol": "TCP", "port": "grpc"}],
        },
    ]
    # a gcs model: TF Serving reads the bucket, the pod mounts nothing for it
    assert done.one(KIND["cm"], "tfserving-env")["inputs"]["data"] == {
        "MODEL_NAME": "m",
        "MODEL_BASE_PATH": "gs://bucket/models",
    }
    assert container(done)["volumeMounts"] == CONFIG_MOUNTS
    # behind a load balancer: the pause covers its deregistration too (10 + 20 + 5 s)
    assert container(done)["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", "35"]}}}


def test_a_cluster_ip_server_is_reached_by_its_gateway_only():
    model = ModelSettings.model_validate(
        {"name": "m", "source": "gcs", "uri": "gs://bucket/models/m"}
    )
    done = build([model], {"type": "ClusterIP"}, grpc_clients=[GATEWAY, {"app": "other"}])
    sources = [
        {"podSelector": {"matchLabels": GATEWAY}},
        {"podSelector": {"matchLabels": {"app": "other"}}},
    ]
    assert done.one(KIND["netpol"], "tfserving-server")["inputs"]["spec"]["ingress"] == [
        {"from": sources, "ports": [{"protocol": "TCP", "port": "http"}]},
        {"from": sources, "ports": [{"protocol": "TCP", "port": "grpc"}]},
    ]
    assert done.one(KIND["svc"], "tfserving-server")["inputs"]["spec"]["type"] == "ClusterIP"
    alone = build([model], {"type": "ClusterIP"})
    assert alone.one(KIND["netpol"], "tfserving-server")["inputs"]["spec"]["ingress"] == []
