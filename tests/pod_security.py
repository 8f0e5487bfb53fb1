"""The Pod Security Standards' `restricted` profile, as the API server's admission checks it.

kubernetes.io/docs/concepts/security/pod-security-standards/ (restricted, v1.25+): each check
below is one row of that table, applied to a pod spec the way admission applies it (container
settings override the pod's).
"""

from typing import Any

ALLOWED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                   "persistentVolumeClaim", "projected", "secret"}  # fmt: skip
SECCOMP_OK = {"RuntimeDefault", "Localhost"}


def restricted_problems(pod: dict[str, Any]) -> list[str]:
    """What keeps `pod` (a PodSpec) out of a `restricted` namespace; empty when admitted."""
    found = []
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            found.append(f"{flag} is set")
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            found.append(f"volume {volume['name']} is {sorted(kinds)}")
    pod_context = pod.get("securityContext", {})
    containers = [*pod.get("initContainers", []), *pod["containers"]]
    for container in containers:
        name = container["name"]
        context = {**pod_context, **container.get("securityContext", {})}
        if context.get("privileged"):
            found.append(f"{name}: privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name}: allowPrivilegeEscalation is not false")
        if context.get("runAsNonRoot") is not True:
            found.append(f"{name}: runAsNonRoot is not true")
        if context.get("runAsUser") == 0:
            found.append(f"{name}: runAsUser is 0")
        seccomp = (context.get("seccompProfile") or {}).get("type")
        if seccomp not in SECCOMP_OK:
            found.append(f"{name}: seccompProfile.type is {seccomp!r}")
        capabilities = container.get("securityContext", {}).get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            found.append(f"{name}: capabilities do not drop ALL")
        if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            found.append(f"{name}: adds capabilities {capabilities['add']}")
        for port in container.get("ports", []):
            if "hostPort" in port:
                found.append(f"{name}: hostPort {port['hostPort']}")
    return found
