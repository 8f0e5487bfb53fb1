"""Rules for workloads: container resources, pinned images, non-root, readiness, HPAs."""

from collections.abc import Mapping

try:
    from policy import resources as res
except ImportError:  # run by Pulumi from policy/: see __main__.py
    import resources as res  # type: ignore[import-not-found, no-redef]


def check_container_resources(resource_type: str, props: res.Props, name: str) -> list[str]:
    """Every container (init containers too) requests and limits both CPU and memory."""
    spec = res.pod_spec(resource_type, props)
    if spec is None:
        return []
    out = []
    for c in res.containers(spec):
        missing = [
            f"{section}.{amount}"
            for section in ("requests", "limits")
            for amount in ("cpu", "memory")
            if res.prop(c.spec, "resources", section, amount) in (None, "")
        ]
        if missing:
            out.append(
                f"container-resources: {res.named(resource_type, name)} {c.kind} '{c.name}': "
                f"no {', '.join(missing)} (the HPA cannot compute utilisation without requests, "
                "and a pod without limits can starve its node)"
            )
    return out


def image_problem(image: str) -> str | None:
    """Why an image reference is not pinned, or None when it is (tag other than latest, digest)."""
    if "@" in image:
        digest = image.split("@", 1)[1]
        return None if res.DIGEST.match(digest) else f"malformed digest '{digest}'"
    last = image.rsplit("/", 1)[-1]  # a registry port (host:5000/x) is not a tag
    if ":" not in last:
        return "untagged (pulls whatever :latest is today)"
    tag = last.split(":", 1)[1]
    if tag == "latest":
        return "uses :latest"
    if not tag:
        return "empty tag"
    return None


def check_image_pinned(resource_type: str, props: res.Props, name: str) -> list[str]:
    """No `:latest`, no untagged image; a tag or a `@sha256:` digest is required."""
    spec = res.pod_spec(resource_type, props)
    if spec is None:
        return []
    out = []
    for c in res.containers(spec):
        image = c.spec.get("image")
        problem = "no image" if not image else image_problem(str(image))
        if problem:
            out.append(
                f"image-pinned: {res.named(resource_type, name)} {c.kind} '{c.name}': image "
                f"'{image}' {problem}; pin a version tag or a @sha256: digest"
            )
    return out


def check_run_as_non_root(resource_type: str, props: res.Props, name: str) -> list[str]:
    """Each container runs as non-root: runAsNonRoot true or a non-zero runAsUser (pod or own)."""
    spec = res.pod_spec(resource_type, props)
    if spec is None:
        return []
    pod_sc = spec.get("securityContext")
    out = []
    for c in res.containers(spec):
        own_sc = c.spec.get("securityContext")
        # The container's own securityContext wins over the pod's, field by field.
        user = res.prop(own_sc, "runAsUser")
        if user is None:
            user = res.prop(pod_sc, "runAsUser")
        non_root = res.prop(own_sc, "runAsNonRoot")
        if non_root is None:
            non_root = res.prop(pod_sc, "runAsNonRoot")
        if user is not None and int(user) == 0:
            problem = "runAsUser is 0 (root)"
        elif user is None and non_root is not True:
            problem = "neither runAsNonRoot: true nor a non-zero runAsUser is set"
        else:
            continue
        out.append(
            f"run-as-non-root: {res.named(resource_type, name)} {c.kind} '{c.name}': {problem}; "
            "images like tensorflow/serving run as root unless told otherwise"
        )
    return out


def check_readiness_probe(resource_type: str, props: res.Props, name: str) -> list[str]:
    """Deployments: every (non-init) container has a readiness probe."""
    if resource_type != res.DEPLOYMENT:
        return []
    spec = res.pod_spec(resource_type, props)
    if spec is None:
        return [f"readiness-probe: {res.named(resource_type, name)}: no pod template"]
    return [
        f"readiness-probe: {res.named(resource_type, name)} container '{c.name}': no "
        "readinessProbe (a Service would send traffic to pods still loading the model)"
        for c in res.containers(spec)
        if c.kind == "container" and not isinstance(c.spec.get("readinessProbe"), Mapping)
    ]


def _has_cpu_target(resource_type: str, spec: res.Props) -> bool:
    if resource_type.startswith("kubernetes:autoscaling/v1:"):
        return spec.get("targetCPUUtilizationPercentage") is not None
    for metric in res.seq(spec.get("metrics")):
        kind = res.prop(metric, "type")
        source = res.prop(metric, "resource" if kind == "Resource" else "containerResource")
        if kind in ("Resource", "ContainerResource") and res.prop(source, "name") == "cpu":
            target = res.prop(source, "target")
            if res.prop(target, "averageUtilization") is not None:
                return True
            if res.prop(target, "averageValue") is not None:
                return True
    return False


def check_hpa(resource_type: str, props: res.Props, name: str) -> list[str]:
    """HPA: minReplicas (default 1) <= maxReplicas, both >= 1, and a CPU target."""
    if resource_type not in res.HPA_TYPES:
        return []
    spec = res.prop(props, "spec")
    if not isinstance(spec, Mapping):
        return [f"hpa: {res.named(resource_type, name)}: no spec"]
    who = res.named(resource_type, name)
    out = []
    min_r = spec.get("minReplicas")
    max_r = spec.get("maxReplicas")
    low = 1 if min_r is None else int(min_r)
    if max_r is None:
        out.append(f"hpa: {who}: no maxReplicas")
    elif low < 1 or low > int(max_r):
        out.append(f"hpa: {who}: minReplicas ({low}) must be >= 1 and <= maxReplicas ({max_r})")
    if not _has_cpu_target(resource_type, spec):
        out.append(f"hpa: {who}: no CPU target (a Resource metric on cpu with a target)")
    return out
