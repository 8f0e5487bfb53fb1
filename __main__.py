"""tfserving: a TensorFlow model behind TensorFlow Serving on Kubernetes, autoscaled.

settings -> target platform -> model server (+ optional gateway) -> stack outputs.
"""

import pulumi

from components import settings as stack_settings
from components.gateway import Gateway, GatewayArgs
from components.model_server import GRPC_PORT, REST_PORT, ModelServer, ModelServerArgs
from components.platform import Endpoint, Exposure, ImageBuild, model_build, platform_for
from components.settings import PROJECT_ROOT, ModelSource

settings = stack_settings.load()
platform = platform_for(settings)
on_cluster = pulumi.ResourceOptions(provider=platform.provider)

GATEWAY_DIR = PROJECT_ROOT / "gateway"

model_image = (
    platform.build_image("tfserving-model", model_build(settings.model, settings.server))
    if settings.model.source is ModelSource.IMAGE
    else None
)
server = ModelServer(
    "tfserving",
    ModelServerArgs(
        namespace=settings.namespace,
        model=settings.model,
        server=settings.server,
        service=settings.service,
        autoscaling=settings.autoscaling,
        image=model_image.ref if model_image else None,
        service_annotations=platform.service_annotations,
        depends_on=platform.depends_on,
    ),
    opts=on_cluster,
)
model_path = f"/v1/models/{settings.model.name}"
endpoints = platform.expose(
    Exposure(
        service=server.service,
        namespace=server.namespace,
        service_type=settings.service.type,
        urls={
            "predictUrl": Endpoint("http", REST_PORT, f"{model_path}:predict"),
            "restUrl": Endpoint("http", REST_PORT, model_path),
            "grpcExternalAddress": Endpoint("grpc", GRPC_PORT, scheme=""),
        },
        port_forward_output="portForwardCommand",
        hostname_output="loadBalancerHostname",
    )
)

if settings.gateway.enabled:
    gateway_image: pulumi.Input[str]
    if settings.gateway.image:
        gateway_image, gateway_version = settings.gateway.image, settings.gateway.image_tag
    else:
        built = platform.build_image(
            "tfserving-gateway",
            ImageBuild(context=GATEWAY_DIR, dockerfile_path=GATEWAY_DIR / "Dockerfile"),
        )
        gateway_image, gateway_version = built.ref, built.tag
    gateway = Gateway(
        "tfserving",
        GatewayArgs(
            namespace=server.namespace,
            settings=settings.gateway,
            model_name=settings.model.name,
            tf_serving_target=server.grpc_address,
            image=gateway_image,
            version=gateway_version,
            service_annotations=platform.service_annotations,
            depends_on=platform.depends_on,
        ),
        opts=on_cluster,
    )
    endpoints |= platform.expose(
        Exposure(
            service=gateway.service,
            namespace=server.namespace,
            service_type=settings.gateway.service.type,
            urls={"gatewayUrl": Endpoint("http", 80)},
            port_forward_output="gatewayPortForwardCommand",
        )
    )
    pulumi.export("gatewayServiceName", gateway.service_name)
    pulumi.export("gatewayHpaName", gateway.hpa_name)

pulumi.export("target", settings.target.value)
pulumi.export("modelName", settings.model.name)
pulumi.export("namespace", server.namespace)
pulumi.export("serviceName", server.service_name)
pulumi.export("deploymentName", server.deployment_name)
pulumi.export("hpaName", server.hpa_name)
pulumi.export("grpcAddress", server.grpc_address)
if model_image:
    pulumi.export("repositoryUrl", model_image.repository)
    pulumi.export("imageRef", model_image.ref)
for key, value in {**platform.outputs, **endpoints}.items():
    pulumi.export(key, value)
