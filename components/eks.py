"""EKS (phase 6): the cluster, one managed node group, the core add-ons, and the
cluster services every workload relies on (metrics-server, Cluster Autoscaler,
AWS Load Balancer Controller, KEDA). Built from pulumi-aws and pulumi-kubernetes
resources, not the pulumi-eks component, so every piece shows in the plan.

Choices, and why:
- API endpoint: always private (nodes and pods talk to it inside the VPC); public too only
  with `eks.endpointAccess: public`, and then reachable only from `eks.publicAccessCidrs`
  (no open default: the config refuses 0.0.0.0/0). Every call is IAM-authenticated as well.
- Authentication mode `API` (access entries, no aws-auth ConfigMap). The cluster
  creator gets no implicit admin (`bootstrap_cluster_creator_admin_permissions`
  false). Cluster admin belongs to one IAM role the program makes (`<prefix>-eks-admin`),
  assumable by `eks.adminPrincipalArns` (or, unset, by any principal of the account whose
  own policy allows sts:AssumeRole on it): its access entry never moves when CI and a
  laptop take turns running `pulumi up`, and the kubeconfig (the Kubernetes provider's too)
  assumes it (`aws eks get-token --role-arn`), so it works whatever credentials, profile or
  assumed role the deployer's AWS CLI starts from. Managed node groups need no entry of
  ours: EKS creates the EC2_LINUX entry for the node role itself (creating it again fails).
- Pod Identity, not IRSA, for the controllers that call AWS: no OIDC provider, no
  trust policy embedding the cluster's issuer URL, a role per controller trusted by
  `pods.eks.amazonaws.com` and bound by an association (an EKS API object, visible
  in the plan). Cluster Autoscaler and the Load Balancer Controller support it.
- Versions: `eks.version` may only name a minor in EKS standard support on the price
  catalog's date (ladder/aws_facts.py EKS_CALENDAR), and the upgrade policy is STANDARD:
  no extended-support billing, and EKS's own upgrade at the end of standard support never
  meets a stack still configured for the old minor (bump before that date). Cluster
  Autoscaler, KEDA and External Secrets are pinned per minor (EKS_CLUSTER_SERVICES).
- Names: the cluster is `<project>-<stack>-<random>`; the random part is remade whenever an
  input that forces a new cluster changes, so a replacement never collides with the old
  cluster's name (and its control-plane log group, which carries the name, follows).
- Database and Redis credentials reach pods only through External Secrets Operator, which
  reads Secrets Manager with its own Pod Identity role (granted, per secret, by the
  workloads that need them): no password passes through a Kubernetes Secret Pulumi writes.
- Cluster Autoscaler, not Karpenter: it drives the managed node group's own Auto
  Scaling group (found by the tags EKS puts on it), so nodes stay EKS-managed
  (AMI updates, graceful drains) and there is no second provisioning system to run.
  Karpenter packs tighter and reacts faster; it is the next step once the mix of
  instance types matters more than simplicity.
- Secrets (Kubernetes Secret objects) are envelope-encrypted with a customer KMS
  key that rotates yearly; all five control-plane log types go to a log group with
  a retention (EKS would otherwise create one that never expires).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random

from ladder.aws_facts import ARM64, EKS_CLUSTER_SERVICES, ClusterServices, ec2_architecture

from .base import Tags, Tier, tagged

CONTROL_PLANE_LOGS = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
NODE_POLICIES = {
    "worker": "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "ecr": "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
    "cni": "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "ssm": "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",  # Session Manager, as on EC2: no SSH
}
POD_IDENTITY_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
    "Action": ["sts:AssumeRole", "sts:TagSession"]}]})
SYSTEM_NAMESPACE = "kube-system"
EXTERNAL_SECRETS_NAMESPACE = "external-secrets"
EXTERNAL_SECRETS_SERVICE_ACCOUNT = "external-secrets"
# What this program sets on the cluster that forces a new one (terraform-provider-aws
# internal/service/eks/cluster.go, ForceNew: bootstrap_self_managed_addons,
# access_config.bootstrap_cluster_creator_admin_permissions, encryption_config): the name's
# random part is keyed on them.
BOOTSTRAP_SELF_MANAGED_ADDONS = False
CREATOR_ADMIN = False
POLICIES = Path(__file__).resolve().parent / "policies"
ADDON_CONFIGURATION: dict[str, dict[str, str]] = {"vpc-cni": {"enableNetworkPolicy": "true"}}


@dataclass(frozen=True)
class Chart:
    """A Helm chart pinned to one version (bump deliberately, read the chart's changelog)."""

    name: str
    repo: str
    version: str


def charts(version: str) -> dict[str, Chart]:
    """The cluster services' charts for Kubernetes minor `version`: the ones whose support
    follows the minor come from ladder/aws_facts.py EKS_CLUSTER_SERVICES."""
    pins: ClusterServices = EKS_CLUSTER_SERVICES[version]
    return {
        "metrics-server": Chart("metrics-server", "https://kubernetes-sigs.github.io/metrics-server/", "3.12.2"),
        "cluster-autoscaler": Chart("cluster-autoscaler", "https://kubernetes.github.io/autoscaler",
                                    pins.autoscaler_chart),
        "aws-load-balancer-controller": Chart("aws-load-balancer-controller", "https://aws.github.io/eks-charts",
                                              "1.13.3"),
        "keda": Chart("keda", "https://kedacore.github.io/charts", pins.keda_chart),
        # external-secrets docs/introduction/getting-started.md: `helm repo add external-secrets <this>`.
        "external-secrets": Chart("external-secrets", "https://charts.external-secrets.io",
                                  pins.external_secrets_chart),
    }


def ami_type(instance_type: str) -> str:
    """Amazon Linux 2023 (AL2 has no AMIs for Kubernetes 1.33+); Graviton types (m6g, c7g, t4g ...) run arm64
    (ladder/aws_facts.py ec2_architecture, the same fact the Ubuntu hosts' AMIs follow)."""
    return "AL2023_ARM_64_STANDARD" if ec2_architecture(instance_type) == ARM64 else "AL2023_x86_64_STANDARD"


def _first_asg(resources: Any) -> str:
    """The Auto Scaling group EKS made for the managed node group."""
    return resources[0].autoscaling_groups[0].name


def kubeconfig(name: str, endpoint: str, ca_data: str, region: str, role_arn: str) -> str:
    """A kubeconfig that holds no credential: `aws eks get-token` mints a token per call, as
    the cluster's admin role (`--role-arn`), not as whatever identity the caller has."""
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": name, "preferences": {},
        "clusters": [{"name": name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "users": [{"name": name, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", name, "--region", region, "--role-arn", role_arn,
                     "--output", "json"],
            "interactiveMode": "Never"}}}],
    })


def cluster_autoscaler_policy(cluster_name: str) -> str:
    """Reads anywhere; resizes only the groups tagged as this cluster's (EKS tags its node groups' ASGs)."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "Discover", "Effect": "Allow", "Resource": "*", "Action": [
            "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeAutoScalingInstances",
            "autoscaling:DescribeLaunchConfigurations", "autoscaling:DescribeScalingActivities",
            "autoscaling:DescribeTags", "ec2:DescribeImages", "ec2:DescribeInstanceTypes",
            "ec2:DescribeLaunchTemplateVersions", "ec2:GetInstanceTypesFromInstanceRequirements",
            "eks:DescribeNodegroup"]},
        {"Sid": "ResizeOwnGroups", "Effect": "Allow", "Resource": "*",
         "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
         "Condition": {"StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"}}},
    ]})


def load_balancer_controller_policy() -> str:
    """The controller's published policy (kubernetes-sigs/aws-load-balancer-controller
    docs/install/iam_policy.json, v2.13); refresh it with the chart."""
    return json.dumps(json.loads((POLICIES / "aws-load-balancer-controller.json").read_text()), separators=(",", ":"))


@dataclass(frozen=True)
class EksClusterArgs:
    name_prefix: str
    """The cluster is named `<name_prefix>-<random>` (see the module docstring)."""
    version: str
    """Kubernetes minor version (`eks.version`)."""
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    """Private subnets: control-plane network interfaces and nodes."""
    node_instance_type: pulumi.Input[str]
    """What the node group runs: ladder.climb_eks.node_instance_type (a deployed group keeps its type)."""
    nodes_min: int
    nodes_max: int
    region: str
    tags: Tags
    public_access_cidrs: Sequence[str] | None
    """Who may reach the public API endpoint (IAM still authenticates every call); None: no
    public endpoint at all (`eks.endpointAccess: private`)."""
    admin_principal_arns: Sequence[str] = ()
    """Who may assume the cluster admin role; empty: the account (its IAM policies decide)."""
    log_retention_days: int = 90
    """Control-plane log retention."""
    node_disk_gb: int = 50
    """Root volume of each node (images and emptyDir volumes live there)."""
    node_labels: Mapping[str, str] = field(default_factory=lambda: {"scaleladder.io/pool": "general"})


class EksCluster(Tier):
    TOKEN = "scaleladder:eks:Cluster"

    def __init__(self, name: str, args: EksClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        self.args = args
        self._invoke = pulumi.InvokeOutputOptions(parent=self)
        self.cluster = self._control_plane(name)
        self.cluster_name: pulumi.Output[str] = self.cluster.name
        admin = self._admin_access(name)
        early = [self._addon(name, a) for a in ("vpc-cni", "kube-proxy")]  # nodes turn Ready only with a CNI
        self.node_group = self._nodes(name, early)
        late = [self._addon(name, a, depends_on=[self.node_group]) for a in ("coredns", "eks-pod-identity-agent")]

        self.security_group_id = self.cluster.vpc_config.cluster_security_group_id
        self.node_group_asg = self.node_group.resources.apply(_first_asg)
        self.kubeconfig = pulumi.Output.all(self.cluster.name, self.cluster.endpoint,
                                            self.cluster.certificate_authority.data, self.admin_role.arn).apply(
            lambda v: kubeconfig(v[0], v[1], v[2], args.region, v[3]))
        self.provider = k8s.Provider(f"{name}-k8s", kubeconfig=self.kubeconfig, opts=self.child(depends_on=[admin]))

        ready = [self.node_group, *late]
        self.releases = self._cluster_services(name, ready)
        self.register_outputs({
            "eksClusterName": self.cluster.name, "eksEndpoint": self.cluster.endpoint,
            "eksClusterSecurityGroupId": self.security_group_id, "eksNodeGroupAsg": self.node_group_asg,
        })

    # -- control plane ---------------------------------------------------------
    def _control_plane(self, name: str) -> aws.eks.Cluster:
        a = self.args
        key = aws.kms.Key(f"{name}-secrets", description=f"EKS {a.name_prefix}: envelope encryption of Kubernetes Secrets",
                          enable_key_rotation=True, deletion_window_in_days=30, tags=a.tags, opts=self.child())
        aws.kms.Alias(f"{name}-secrets", name=f"alias/{a.name_prefix}-eks-secrets", target_key_id=key.key_id,
                      opts=self.child())
        # Remade (so the cluster gets a new name) whenever a replace-forcing input changes.
        suffix = random.RandomString(f"{name}-name", length=6, special=False, upper=False, keepers={
            "encryptionKey": key.arn, "bootstrapSelfManagedAddons": str(BOOTSTRAP_SELF_MANAGED_ADDONS),
            "creatorAdmin": str(CREATOR_ADMIN)}, opts=self.child())
        cluster_name = pulumi.Output.concat(a.name_prefix, "-", suffix.result)
        role = aws.iam.Role(f"{name}-cluster", assume_role_policy=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "eks.amazonaws.com"},
                                                    "Action": ["sts:AssumeRole", "sts:TagSession"]}]}),
            tags=a.tags, opts=self.child())
        cluster_policy = aws.iam.RolePolicyAttachment(
            f"{name}-cluster-policy", role=role.name, policy_arn="arn:aws:iam::aws:policy/AmazonEKSClusterPolicy",
            opts=self.child())
        kms_access = aws.iam.RolePolicy(f"{name}-cluster-kms", role=role.id, policy=key.arn.apply(lambda arn: json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": arn, "Action": [
                "kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"]}]})), opts=self.child())
        # EKS writes to /aws/eks/<cluster>/cluster; made first so it has a retention.
        logs = aws.cloudwatch.LogGroup(f"{name}-control-plane",
                                       name=pulumi.Output.concat("/aws/eks/", cluster_name, "/cluster"),
                                       retention_in_days=a.log_retention_days, tags=a.tags, opts=self.child())
        return aws.eks.Cluster(
            name,
            name=cluster_name,
            version=a.version,
            role_arn=role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=list(a.subnet_ids), endpoint_private_access=True,
                endpoint_public_access=a.public_access_cidrs is not None,
                public_access_cidrs=list(a.public_access_cidrs) if a.public_access_cidrs is not None else None),
            access_config=aws.eks.ClusterAccessConfigArgs(authentication_mode="API",
                                                          bootstrap_cluster_creator_admin_permissions=CREATOR_ADMIN),
            # The core add-ons are managed add-ons below, not the self-managed copies EKS would install.
            bootstrap_self_managed_addons=BOOTSTRAP_SELF_MANAGED_ADDONS,
            enabled_cluster_log_types=CONTROL_PLANE_LOGS,
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                resources=["secrets"], provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=key.arn)),
            # Standard support only (AWS::EKS::Cluster UpgradePolicy.SupportType STANDARD): no extended
            # support billing; at the end of standard support EKS upgrades the control plane itself,
            # which is why eks.version only accepts minors still in standard support.
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(support_type="STANDARD"),
            tags=tagged(a.tags, Name=a.name_prefix),
            opts=self.child(depends_on=[cluster_policy, kms_access, logs]),
        )

    def _admin_access(self, name: str) -> aws.eks.AccessPolicyAssociation:
        """Cluster admin for one role of the program's (see the module docstring), never for
        whoever ran `pulumi up` last."""
        a = self.args
        if a.admin_principal_arns:
            trusted: pulumi.Input[Any] = {"AWS": sorted(a.admin_principal_arns)}
        else:
            account = aws.get_caller_identity_output(opts=self._invoke).account_id
            trusted = account.apply(lambda acct: {"AWS": f"arn:aws:iam::{acct}:root"})
        self.admin_role = aws.iam.Role(
            f"{name}-admin", name=f"{a.name_prefix}-eks-admin", description=f"cluster admin of EKS {a.name_prefix}",
            assume_role_policy=pulumi.Output.from_input(trusted).apply(lambda who: json.dumps({
                "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": who,
                                                        "Action": ["sts:AssumeRole", "sts:TagSession"]}]})),
            tags=a.tags, opts=self.child())
        principal = self.admin_role.arn
        entry = aws.eks.AccessEntry(f"{name}-admin", cluster_name=self.cluster.name, principal_arn=principal,
                                    type="STANDARD", tags=self.args.tags, opts=self.child())
        return aws.eks.AccessPolicyAssociation(
            f"{name}-admin", cluster_name=self.cluster.name, principal_arn=principal, policy_arn=CLUSTER_ADMIN_POLICY,
            access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
            opts=self.child(depends_on=[entry]))

    def _addon(self, name: str, addon: str, depends_on: Sequence[pulumi.Resource] = ()) -> aws.eks.Addon:
        # No addon_version: EKS installs the default for the cluster version and a cluster
        # upgrade moves it; pin one here to hold it back.
        # vpc-cni: its network policy agent enforces the workloads' NetworkPolicies (EKS User Guide,
        # "Configure your cluster for Kubernetes network policies": enableNetworkPolicy in the
        # add-on's configuration values; VPC CNI 1.14+, which every supported minor's default is).
        values = json.dumps(ADDON_CONFIGURATION[addon]) if addon in ADDON_CONFIGURATION else None
        return aws.eks.Addon(f"{name}-{addon}", cluster_name=self.cluster.name, addon_name=addon,
                             configuration_values=values,
                             resolve_conflicts_on_create="OVERWRITE", resolve_conflicts_on_update="OVERWRITE",
                             tags=self.args.tags, opts=self.child(depends_on=list(depends_on)))

    # -- nodes -----------------------------------------------------------------
    def _nodes(self, name: str, addons: Sequence[pulumi.Resource]) -> aws.eks.NodeGroup:
        a = self.args
        role = aws.iam.Role(f"{name}-node", assume_role_policy=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                    "Action": "sts:AssumeRole"}]}), tags=a.tags, opts=self.child())
        attached = [aws.iam.RolePolicyAttachment(f"{name}-node-{short}", role=role.name, policy_arn=arn,
                                                 opts=self.child())
                    for short, arn in NODE_POLICIES.items()]
        # Our own launch template so the nodes are held to the same rules as every EC2 host:
        # IMDSv2 only and an encrypted gp3 root volume (EKS's generated template guarantees
        # neither). Hop limit 1: a pod on the pod network is one hop further and cannot get a
        # token, so it cannot borrow the node role (EKS Best Practices Guide, Security, "Restrict
        # access to the instance profile assigned to the worker node"); the VPC CNI and the Pod
        # Identity agent run on the host network and still reach IMDS, and the controllers get
        # their region and VPC from their values, not from IMDS. No AMI, profile or user data:
        # EKS keeps managing those.
        template = aws.ec2.LaunchTemplate(
            f"{name}-nodes",
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(http_endpoint="enabled", http_tokens="required",
                                                                       http_put_response_hop_limit=1),
            block_device_mappings=[aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                device_name="/dev/xvda", ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                    volume_type="gp3", volume_size=a.node_disk_gb, encrypted="true", delete_on_termination="true"))],
            tag_specifications=[aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=t, tags=tagged(a.tags, Name=f"{a.name_prefix}-node"))
                                for t in ("instance", "volume")],
            update_default_version=True, tags=a.tags, opts=self.child())
        return aws.eks.NodeGroup(
            f"{name}-nodes",
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(id=template.id,
                                                                version=template.latest_version.apply(str)),
            cluster_name=self.cluster.name,
            node_role_arn=role.arn,
            subnet_ids=list(a.subnet_ids),
            # Both force a new group (terraform-provider-aws internal/service/eks/node_group.go): a
            # deployed group's type changes only through the step ladder/climb_eks.py allows.
            instance_types=[a.node_instance_type],
            ami_type=pulumi.Output.from_input(a.node_instance_type).apply(ami_type),
            capacity_type="ON_DEMAND",
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(min_size=a.nodes_min, desired_size=a.nodes_min,
                                                              max_size=a.nodes_max),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable_percentage=33),
            labels=dict(a.node_labels),
            # Cluster Autoscaler's auto-discovery tags. EKS already puts them on the node group's
            # Auto Scaling group; stating them here documents what the autoscaler keys on.
            tags=self.cluster_name.apply(lambda cluster: tagged(a.tags, **{
                "k8s.io/cluster-autoscaler/enabled": "true", f"k8s.io/cluster-autoscaler/{cluster}": "owned"})),
            # The autoscaler owns the desired size after creation.
            opts=self.child(depends_on=[*attached, *addons], ignore_changes=["scalingConfig.desiredSize"]),
        )

    # -- cluster services ------------------------------------------------------
    def _pod_role(self, name: str, service_account: str, policy: pulumi.Input[str] | None,
                  namespace: str = SYSTEM_NAMESPACE) -> tuple[aws.iam.Role, aws.eks.PodIdentityAssociation]:
        """A role for one service account through Pod Identity; `policy` None leaves the
        grants to whoever knows what it may read (External Secrets: the workloads)."""
        a = self.args
        role = aws.iam.Role(f"{name}-{service_account}", assume_role_policy=POD_IDENTITY_TRUST, tags=a.tags,
                            opts=self.child())
        after: list[pulumi.Resource] = []
        if policy is not None:
            managed = aws.iam.Policy(f"{name}-{service_account}", description=f"{service_account} on EKS {a.name_prefix}",
                                     policy=policy, tags=a.tags, opts=self.child())
            after.append(aws.iam.RolePolicyAttachment(f"{name}-{service_account}", role=role.name,
                                                      policy_arn=managed.arn, opts=self.child()))
        return role, aws.eks.PodIdentityAssociation(
            f"{name}-{service_account}", cluster_name=self.cluster.name, namespace=namespace,
            service_account=service_account, role_arn=role.arn, tags=a.tags, opts=self.child(depends_on=after))

    def _release(self, release: str, chart: Chart, namespace: str, values: Mapping[str, Any],
                 depends_on: Sequence[pulumi.Resource], create_namespace: bool = False) -> k8s.helm.v3.Release:
        return k8s.helm.v3.Release(
            release, name=release, chart=chart.name, version=chart.version, namespace=namespace,
            create_namespace=create_namespace, repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo),
            values=dict(values), atomic=True, cleanup_on_fail=True, timeout=600,
            opts=self.child(provider=self.provider, depends_on=list(depends_on)))

    def _cluster_services(self, name: str, ready: Sequence[pulumi.Resource]) -> dict[str, k8s.helm.v3.Release]:
        a = self.args
        chart = charts(a.version)
        _, ca_identity = self._pod_role(name, "cluster-autoscaler", self.cluster_name.apply(cluster_autoscaler_policy))
        _, lbc_identity = self._pod_role(name, "aws-load-balancer-controller", load_balancer_controller_policy())
        self.external_secrets_role, eso_identity = self._pod_role(
            name, EXTERNAL_SECRETS_SERVICE_ACCOUNT, None, namespace=EXTERNAL_SECRETS_NAMESPACE)
        two = {"replicas": 2}
        out = {
            # HPA reads CPU and memory utilisation from the metrics API; EKS ships no metrics-server.
            "metrics-server": self._release("metrics-server", chart["metrics-server"], SYSTEM_NAMESPACE, {
                **two, "podDisruptionBudget": {"enabled": True, "minAvailable": 1},
            }, ready),
            # HPA adds pods; Cluster Autoscaler adds nodes when pods cannot be scheduled.
            "cluster-autoscaler": self._release("cluster-autoscaler", chart["cluster-autoscaler"], SYSTEM_NAMESPACE, {
                "cloudProvider": "aws", "awsRegion": a.region, "fullnameOverride": "cluster-autoscaler",
                "autoDiscovery": {"clusterName": self.cluster_name},
                # The autoscaler's minor must be the cluster's; the newest patch of it.
                "image": {"tag": EKS_CLUSTER_SERVICES[a.version].autoscaler_image},
                "rbac": {"serviceAccount": {"create": True, "name": "cluster-autoscaler"}},
                "extraArgs": {"balance-similar-node-groups": True, "expander": "least-waste",
                              "skip-nodes-with-system-pods": False},
            }, [*ready, ca_identity]),
            # Turns the app's Ingress into an internet-facing ALB that targets pod IPs.
            "aws-load-balancer-controller": self._release(
                "aws-load-balancer-controller", chart["aws-load-balancer-controller"], SYSTEM_NAMESPACE, {
                    "clusterName": self.cluster_name, "region": a.region, "vpcId": a.vpc_id, "replicaCount": 2,
                    # Review aws-phases-5-6 findings 20, 21 (aws/eks-charts aws-load-balancer-controller values:
                    # `defaultTags` go on every AWS resource it makes, the ALB included, so cost allocation
                    # sees them; `podDisruptionBudget`, rendered when replicaCount > 1): one of the two
                    # webhook pods always serves while nodes drain.
                    "defaultTags": dict(a.tags), "podDisruptionBudget": {"maxUnavailable": 1},
                    "serviceAccount": {"create": True, "name": "aws-load-balancer-controller"},
                    # The chart's Service mutating webhook (failurePolicy Fail) intercepts every Service
                    # CREATE; metrics-server and KEDA install in parallel and their Services would be
                    # refused until the controller's pods serve it. It only defaults loadBalancerClass on
                    # type LoadBalancer Services, which nothing here uses (the app is an Ingress).
                    "enableServiceMutatorWebhook": False,
                }, [*ready, lbc_identity]),
            # Scales the BullMQ workers on queue depth (a Redis list length), down to workers.min.
            "keda": self._release("keda", chart["keda"], "keda", {}, ready, create_namespace=True),
            # Syncs Secrets Manager secrets into Kubernetes Secrets (and again every refresh
            # interval), with the AWS SDK's default chain: the Pod Identity role above.
            "external-secrets": self._release(
                "external-secrets", chart["external-secrets"], EXTERNAL_SECRETS_NAMESPACE, {
                    "installCRDs": True,
                    "serviceAccount": {"create": True, "name": EXTERNAL_SECRETS_SERVICE_ACCOUNT},
                }, [*ready, eso_identity], create_namespace=True),
        }
        return out
