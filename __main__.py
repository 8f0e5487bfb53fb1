"""tfserving: a TensorFlow model behind TensorFlow Serving on Kubernetes, autoscaled.

settings -> target platform -> model server -> stack outputs.
"""

import pulumi

from components import settings as stack_settings
from components.model_server import ModelServer, ModelServerArgs
from components.platform import platform_for

settings = stack_settings.load()
platform = platform_for(settings)

server = ModelServer(
    "tfserving",
    ModelServerArgs(
        namespace=settings.namespace,
        model=settings.model,
        server=settings.server,
        service=settings.service,
        autoscaling=settings.autoscaling,
        image=platform.model_image,
        service_annotations=platform.service_annotations,
        depends_on=platform.depends_on,
    ),
    opts=pulumi.ResourceOptions(provider=platform.provider),
)

pulumi.export("target", settings.target.value)
pulumi.export("modelName", settings.model.name)
pulumi.export("namespace", server.namespace)
pulumi.export("serviceName", server.service_name)
pulumi.export("deploymentName", server.deployment_name)
pulumi.export("hpaName", server.hpa_name)
pulumi.export("grpcAddress", server.grpc_address)
for key, value in platform.endpoints(server).items():
    pulumi.export(key, value)
