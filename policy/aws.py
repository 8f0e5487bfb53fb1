"""Rules for AWS resources: ECR repositories and EKS nodes without public addresses."""

try:
    from policy import resources as res
except ImportError:  # run by Pulumi from policy/: see __main__.py
    import resources as res  # type: ignore[import-not-found, no-redef]


def check_ecr_repository(resource_type: str, props: res.Props, name: str) -> list[str]:
    """ECR repositories scan images on push and have immutable tags."""
    if resource_type != res.ECR_REPOSITORY:
        return []
    who = res.named(resource_type, name)
    out = []
    if res.prop(props, "imageScanningConfiguration", "scanOnPush") is not True:
        out.append(f"ecr-repository: {who}: imageScanningConfiguration.scanOnPush is not true")
    mutability = props.get("imageTagMutability")
    if mutability != "IMMUTABLE":
        out.append(
            f"ecr-repository: {who}: imageTagMutability is {mutability or 'MUTABLE (default)'}, "
            "must be IMMUTABLE (a pushed tag must never point at other bits)"
        )
    return out


def check_eks_private_nodes(resource_type: str, props: res.Props, name: str) -> list[str]:
    """EKS worker nodes get no public IP address.

    - `eks:index:Cluster`: `nodeAssociatePublicIpAddress` must be explicitly false (pulumi-eks
      defaults it to true), and nodes need private subnets to go to.
    - `eks:index:ManagedNodeGroup`: `subnetIds` must be given; left out, pulumi-eks falls back to
      the cluster's subnet list, which holds the public subnets too, and EKS gives managed nodes
      in public subnets public IPs.
    - `aws:ec2/launchTemplate:LaunchTemplate`: no network interface asks for a public IP.
    """
    who = res.named(resource_type, name)
    if resource_type == res.EKS_CLUSTER:
        out = []
        if props.get("nodeAssociatePublicIpAddress") is not False:
            out.append(f"eks-private-nodes: {who}: nodeAssociatePublicIpAddress must be false")
        if props.get("publicSubnetIds") and not props.get("privateSubnetIds"):
            out.append(
                f"eks-private-nodes: {who}: publicSubnetIds without privateSubnetIds puts the "
                "nodes in public subnets"
            )
        return out
    if resource_type == res.EKS_MANAGED_NODE_GROUP:
        if not res.seq(props.get("subnetIds")):
            return [
                f"eks-private-nodes: {who}: no subnetIds; set them to the VPC's private subnets "
                "(the default includes the cluster's public subnets)"
            ]
        return []
    if resource_type == res.LAUNCH_TEMPLATE:
        return [
            f"eks-private-nodes: {who}: networkInterfaces[{i}].associatePublicIpAddress is true"
            for i, nic in enumerate(res.seq(props.get("networkInterfaces")))
            if str(res.prop(nic, "associatePublicIpAddress")).lower() == "true"
        ]
    return []
