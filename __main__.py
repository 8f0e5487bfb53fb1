"""tfserving: a TensorFlow model behind TensorFlow Serving on Kubernetes, autoscaled.

settings -> target -> images -> model server (+ optional gateway) -> stack outputs.
"""

import pulumi

import outputs as out
from components import gateway as gateway_tier
from components import model_server as model_tier
from components.container_image import ImageBuild
from components.gateway import Gateway, GatewayArgs
from components.kube import LoadBalancer
from components.model_image import image_models, model_build
from components.model_server import ModelServer, ModelServerArgs
from config.model import ModelSource
from config.paths import PROJECT_ROOT
from config.service import ServiceSettings
from config.stack import load as load_settings
from targets import Endpoint, Exposure, platform_for

settings = load_settings()
platform = platform_for(settings)
on_cluster = pulumi.ResourceOptions(provider=platform.provider)


def load_balancer(service: ServiceSettings, ports: list[str]) -> LoadBalancer | None:
    """The target's cloud load balancer for a LoadBalancer Service (TLS on these ports)."""
    if not service.load_balancer or platform.load_balancer is None:
        return None
    return platform.load_balancer(service, ports if service.tls else [])


# Images: the models baked into TF Serving's image (source `image`) and the gateway's own.
model_image = (
    platform.build_image("tfserving-model", model_build(settings.models, settings.server))
    if image_models(settings.models)
    else None
)
gateway_image: pulumi.Input[str] | None = settings.gateway.image
gateway_version = settings.gateway.image_tag
if settings.gateway.enabled and gateway_image is None:
    gateway_dir = PROJECT_ROOT / "gateway"
    built = platform.build_image(
        "tfserving-gateway",
        ImageBuild(context=gateway_dir, dockerfile_path=gateway_dir / "Dockerfile"),
    )
    gateway_image, gateway_version = built.ref, built.tag

# Cloud access the models need (S3 on eks), granted before the pods that use it start.
model_access = platform.grant_model_access(settings.models) if platform.grant_model_access else []
server = ModelServer(
    "tfserving",
    ModelServerArgs(
        namespace=settings.namespace,
        models=settings.models,
        server=settings.server,
        service=settings.service,
        autoscaling=settings.autoscaling,
        image=model_image.ref if model_image else None,
        load_balancer=load_balancer(
            settings.service, ["http", "grpc"] if settings.service.grpc_on_service else ["http"]
        ),
        grpc_clients=[gateway_tier.pod_selector("tfserving")] if settings.gateway.enabled else [],
        service_account=any(m.source is ModelSource.S3 for m in settings.models),
        region=platform.region,
        request_seconds=settings.gateway.model_deadline_seconds,
        depends_on=[*platform.depends_on, *model_access],
    ),
    opts=on_cluster,
)
rest = "https" if settings.service.tls else "http"
urls = {
    out.PREDICT_URL: Endpoint("http", out.REST_PORT, out.predict_path(settings.model.name), rest),
    out.REST_URL: Endpoint("http", out.REST_PORT, out.model_path(settings.model.name), rest),
}
if settings.service.grpc_on_service:
    urls[out.GRPC_EXTERNAL_ADDRESS] = Endpoint("grpc", out.GRPC_PORT, scheme="")
endpoints = platform.expose(
    Exposure(
        service=server.service,
        namespace=server.namespace,
        service_type=settings.service.type,
        urls=urls,
        port_forward_output=out.PORT_FORWARD_COMMAND,
        hostname_output=out.LOAD_BALANCER_HOSTNAME,
    )
)

if settings.gateway.enabled and gateway_image is not None:
    gateway = Gateway(
        "tfserving",
        GatewayArgs(
            namespace=server.namespace,
            settings=settings.gateway,
            model_name=settings.gateway_model.name,
            tf_serving_target=server.grpc_address,
            image=gateway_image,
            version=gateway_version,
            tf_serving_pods=model_tier.pod_selector("tfserving"),
            load_balancer=load_balancer(settings.gateway.service, ["http"]),
            api_keys=settings.gateway_api_keys,
            depends_on=platform.depends_on,
        ),
        opts=on_cluster,
    )
    endpoints |= platform.expose(
        Exposure(
            service=gateway.service,
            namespace=server.namespace,
            service_type=settings.gateway.service.type,
            urls={
                out.GATEWAY_URL: Endpoint(
                    "http",
                    out.gateway_service_port(settings.gateway.service.tls is not None),
                    scheme="https" if settings.gateway.service.tls else "http",
                )
            },
            port_forward_output=out.GATEWAY_PORT_FORWARD_COMMAND,
        )
    )
    pulumi.export(out.GATEWAY_SERVICE_NAME, gateway.service_name)
    pulumi.export(out.GATEWAY_HPA_NAME, gateway.hpa_name)

pulumi.export(out.TARGET, settings.target)
pulumi.export(out.MODEL_NAME, settings.model.name)
pulumi.export(out.NAMESPACE, server.namespace)
pulumi.export(out.SERVICE_NAME, server.service_name)
pulumi.export(out.DEPLOYMENT_NAME, server.deployment_name)
pulumi.export(out.HPA_NAME, server.hpa_name)
pulumi.export(out.GRPC_ADDRESS, server.grpc_address)
if model_image:
    pulumi.export(out.REPOSITORY_URL, model_image.repository)
    pulumi.export(out.IMAGE_REF, model_image.ref)
for key, value in {**platform.outputs, **endpoints}.items():
    pulumi.export(key, value)
