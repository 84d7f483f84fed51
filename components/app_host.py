"""What every app host needs, whichever phase runs it: the user data that starts the
API (behind nginx) and/or the worker, and the hardened EC2 settings (IMDSv2 only,
encrypted gp3 root, Ubuntu 24.04 from the SSM public parameter).

Also `SingleHost`, phase 1's one VM with an Elastic IP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from ladder import aws_facts, userdata
from ladder.registry import login
from ladder.userdata import NGINX_PORT as NGINX_PORT  # fleet.py's target port (re-export)
from ladder.userdata import app_user_data

from .base import Tags, Tier, tagged

# Canonical publishes the current Ubuntu 24.04 LTS AMI per architecture here (SSM public parameters:
# ".../ubuntu/PRODUCT/RELEASE/stable/current/ARCH/VIRT_TYPE/VOL_TYPE/ami-id", ARCH "amd64 or arm64";
# Canonical, "Finding Ubuntu images with the AWS SSM Parameter Store", discourse.ubuntu.com/t/15507).
# Keyed by the EC2 architecture names of ladder/aws_facts.py (x86_64 runs Canonical's amd64 images).
UBUNTU_AMI_PARAMETERS: dict[str, str] = {
    aws_facts.X86_64: "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id",
    aws_facts.ARM64: "/aws/service/canonical/ubuntu/server/24.04/stable/current/arm64/hvm/ebs-gp3/ami-id",
}
UBUNTU_AMI_PARAMETER = UBUNTU_AMI_PARAMETERS[aws_facts.X86_64]  # the one every stack used before arm64 hosts
ROOT_DEVICE = "/dev/sda1"  # Ubuntu AMIs' root device
ROOT_GB = 30

AmiByArchitecture = Mapping[str, pulumi.Input[str]]
"""The AMI each host architecture launches from (x86_64, arm64): what `hosts_amis` resolves."""


def ubuntu_ami(parent: pulumi.Resource | None = None, architecture: str = aws_facts.X86_64) -> pulumi.Output[str]:
    return aws.ssm.get_parameter_output(name=UBUNTU_AMI_PARAMETERS[architecture],
                                        opts=pulumi.InvokeOutputOptions(parent=parent)).value


def hosts_ami(explicit: str | None, recorded: pulumi.Input[str | None],
              architecture: str = aws_facts.X86_64) -> pulumi.Output[str]:
    """The AMI the EC2 hosts of one architecture launch from: `hosts.ami` when the stack sets one
    (the config allows it only when every host tier has one architecture), else the AMI the last
    `up` recorded for that architecture, else Canonical's current one (first `up`). So a new
    Canonical AMI rolls the groups only when the stack asks for it (review aws-phases-1-4 finding
    13), and the plan shows which AMI that is (outputs hostsAmi / hostsAmiArm64)."""
    if explicit:
        return pulumi.Output.from_input(explicit)
    return pulumi.Output.all(recorded, ubuntu_ami(architecture=architecture)).apply(lambda v: str(v[0] or v[1]))


def ami_for(amis: pulumi.Input[str] | AmiByArchitecture, instance_type: str,
            parent: pulumi.Resource | None = None) -> pulumi.Input[str]:
    """The AMI a host of `instance_type` boots: its architecture's entry of `amis` (a kept AMI applies
    only to hosts of the architecture it was recorded for), Canonical's current one for an
    architecture `amis` lacks; a plain AMI (callers that pass one) for every host."""
    architecture = aws_facts.ec2_architecture(instance_type)
    if isinstance(amis, Mapping):
        return amis.get(architecture) or ubuntu_ami(parent, architecture)
    return amis or ubuntu_ami(parent, architecture)


def vm_architecture_problems(phase: int, wanted_type: str, recorded_type: str | None, deployed_phase: int | None,
                             allowed_types: Sequence[str]) -> list[str]:
    """Phase 1's VM keeps its CPU architecture: "AMIs are specific to the architecture of the
    processor, so you must select an instance type with the same processor architecture as the
    current instance type" (EC2 User Guide, "Compatibility for changing the instance type"), and the
    VM ignores AMI changes (host_instance), so the type change would fail at AWS mid-`up`.
    `recorded_type` is the singleHostType the last `up` wrote; a phase-1 stack deployed before that
    output ran an x86_64 type (every type the catalog listed then was)."""
    if phase != 1 or (not recorded_type and deployed_phase != 1):  # no VM deployed yet
        return []
    was = aws_facts.ec2_architecture(recorded_type) if recorded_type else aws_facts.X86_64
    now = aws_facts.ec2_architecture(wanted_type)
    if was == now:
        return []
    same = [t for t in allowed_types if aws_facts.ec2_architecture(t) == was]
    return [f"scaleladder:appTier.instanceType: the phase-1 VM runs {recorded_type or 'an x86_64 type'} ({was}) "
            f"and EC2 cannot change it to {wanted_type} ({now}): an instance keeps its CPU architecture; keep a "
            f"{was} type (another architecture is a new VM: a new host and a DNS move); allowed: {', '.join(same)}"]


@dataclass(frozen=True)
class AppSpec:
    """The app as the stack config describes it (plain values)."""

    region: str
    image: str
    port: int
    health_path: str
    env: Mapping[str, str]
    worker_command: Sequence[str]
    queues: Sequence[str]
    queue_prefix: str
    registry_credentials_secret_arn: str | None = None  # non-ECR private registries (ladder.registry)
    log_group: str = ""  # the containers' CloudWatch Logs group (ladder.metrics.container_log_group)
    metrics_parameter: str = ""  # SSM parameter holding the metrics publisher (components/signals.py)
    trusted_proxies: Sequence[str] = ()  # who may set the client address/scheme (ladder.userdata.trusted_proxies)


@dataclass(frozen=True)
class AppEndpoints:
    """Where the app finds its data tier (Outputs from the tiers below)."""

    db_secret_arn: pulumi.Input[str]  # db-app: the read-write login (never db-master)
    db_host: pulumi.Input[str]
    db_port: int
    db_name: str
    db_read_host: pulumi.Input[str]
    db_read_name: str
    db_via_pgbouncer: bool
    redis_secret_arn: pulumi.Input[str]
    redis_host: pulumi.Input[str]
    redis_port: int
    redis_cluster: bool
    static_url: pulumi.Input[str] | None = None
    secret_arns: Sequence[pulumi.Input[str]] = field(default_factory=tuple)
    db_read_secret_arn: pulumi.Input[str] = ""  # db-app-ro: the read-only login (DATABASE_READ_URL)
    # Phases 1-2 (no PgBouncer tier): the host runs the roles bootstrap before the containers,
    # so it gets the bootstrap's secret ARNs (credentials.SECRET_* -> ARN); None elsewhere.
    db_bootstrap_secret_arns: Mapping[str, pulumi.Input[str]] | None = None


def user_data(spec: AppSpec, ends: AppEndpoints, roles: Sequence[str], asg_name: str = "",
              rate_limit: dict[str, int] | None = None, image_parameter: str | None = None) -> pulumi.Output[str]:
    """Cloud-init for a host running `roles` (api, worker). Holds ARNs and hosts, never secrets.
    `rate_limit`: nginx's per-client limit (ladder.edge), where this host faces the clients.
    `image_parameter` (hosts no Auto Scaling group rolls: phase 1, nginx-mode app hosts): the host
    reads the image from that SSM parameter at boot, so a new `app.image` leaves the user data as it
    is and never replaces the host (user_data_replace_on_change); ansible/deploy.yml rolls it onto
    the running host (components/ops.py). Launch templates keep the image inline: there a new
    image is meant to roll the group."""
    api = "api" in roles
    registry = login(spec.image, spec.registry_credentials_secret_arn).boot_env()
    return pulumi.Output.all(ends.db_secret_arn, ends.db_host, ends.db_read_host, ends.redis_secret_arn,
                             ends.redis_host, ends.static_url, ends.db_read_secret_arn,
                             pulumi.Output.all(**(ends.db_bootstrap_secret_arns or {}))).apply(
        lambda v: app_user_data({
            **userdata.db_fields(v[6], v[7] if ends.db_bootstrap_secret_arns else None),
            "region": spec.region, "image": spec.image, "image_parameter": image_parameter or "",
            "app_port": spec.port, "health_path": spec.health_path, "roles": list(roles),
            "worker_command": list(spec.worker_command), "asg_name": asg_name,
            "db_secret_arn": v[0], "db_host": v[1], "db_port": ends.db_port, "db_name": ends.db_name,
            "db_read_host": v[2], "db_read_name": ends.db_read_name, "db_via_pgbouncer": ends.db_via_pgbouncer,
            "redis_secret_arn": v[3], "redis_host": v[4], "redis_port": ends.redis_port,
            "redis_cluster": ends.redis_cluster, "queue_prefix": spec.queue_prefix, "queues": list(spec.queues),
            "static_url": v[5] or "", "env": dict(spec.env),
            "registry": registry, "log_group": spec.log_group, "metrics_parameter": spec.metrics_parameter,
            "nginx_conf": userdata.reverse_proxy_conf(spec.port, spec.health_path, rate_limit,
                                                       spec.trusted_proxies) if api else "",
        }))


def host_instance(name: str, *, parent: pulumi.Resource, ami: pulumi.Input[str], instance_type: pulumi.Input[str],
                  subnet_id: pulumi.Input[str], security_group_id: pulumi.Input[str],
                  instance_profile: pulumi.Input[str], user_data: pulumi.Input[str], tags: Tags,
                  public: bool = False, depends_on: Sequence[pulumi.Resource] = ()) -> aws.ec2.Instance:
    """A hardened EC2 host: IMDSv2 only (hop limit 1 keeps containers from borrowing the
    instance role), encrypted gp3 root, no key pair (SSM Session Manager instead).

    `public`: the host sits in a public subnet (no NAT) behind an Elastic IP. The EIP can only
    be associated once the instance is running, while cloud-init's snap and apt steps may
    already be reaching the internet; the public subnets do not map public IPs on launch, so
    the host gets one at launch (released by AWS when the EIP is associated, never billed twice).

    User data is read at creation only (`ignore_changes` on `userDataBase64`). These hosts belong
    to no Auto Scaling group (phase 1's VM, nginx mode's app hosts and LB host), so replacing one
    is an outage: the EIP or the nginx upstream moves to a host still booting. Ansible applies
    the settings it owns to the running hosts (`ansible/configure.yml`: nginx's rate limit,
    trusted proxies, the LB's upstreams; `deploy.yml`: the image; `refresh-credentials.yml`:
    credentials); the rest of the user data (endpoints, STATIC_URL, boot scripts) reaches only a
    new host. `ladder diff` reports the ignored drift. A new host (first
    `up`) gets the current user data; the engine substitutes the recorded value of an ignored
    input in every later update and replacement (pulumi/pulumi#2657: "used for Create, but ...
    ignored for purposes of updates"), so a host replaced for another reason boots the recorded
    user data and is brought up to date by `configure.yml`."""
    return aws.ec2.Instance(
        name, ami=ami, instance_type=instance_type, subnet_id=subnet_id, vpc_security_group_ids=[security_group_id],
        iam_instance_profile=instance_profile,
        # gzip in base64 (16 KB limit; the provider: "gzip-encoded user data must be base64-encoded
        # and passed via this argument"); cloud-init uncompresses it.
        user_data_base64=pulumi.Output.from_input(user_data).apply(userdata.encode),
        associate_public_ip_address=True if public else None,
        # Kept as deployed (existing stacks see no change of this flag); with userDataBase64 in
        # ignore_changes the provider never sees a user-data diff, so it never replaces the host.
        user_data_replace_on_change=True,
        metadata_options=aws.ec2.InstanceMetadataOptionsArgs(http_endpoint="enabled", http_tokens="required",
                                                             http_put_response_hop_limit=1),
        root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(volume_type="gp3", volume_size=ROOT_GB, encrypted=True,
                                                              delete_on_termination=True),
        monitoring=True, tags=tagged(tags, Name=name),
        # A newer AMI is picked up deliberately (`pulumi up --replace`), not on every up; user-data
        # changes reach these hosts through Ansible, never through a replacement (docstring).
        opts=pulumi.ResourceOptions(parent=parent, ignore_changes=["ami", "userDataBase64"],
                                    depends_on=list(depends_on)))


def host_template(name: str, *, parent: pulumi.Resource, ami: pulumi.Input[str], instance_type: str,
                  security_group_id: pulumi.Input[str], instance_profile_arn: pulumi.Input[str],
                  user_data: pulumi.Input[str], tags: Tags,
                  depends_on: Sequence[pulumi.Resource] = ()) -> aws.ec2.LaunchTemplate:
    """The launch-template twin of `host_instance`, for Auto Scaling groups (user data gzip in base64)."""
    return aws.ec2.LaunchTemplate(
        name, image_id=ami, instance_type=instance_type, vpc_security_group_ids=[security_group_id],
        iam_instance_profile=aws.ec2.LaunchTemplateIamInstanceProfileArgs(arn=instance_profile_arn),
        user_data=pulumi.Output.from_input(user_data).apply(userdata.encode),
        metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(http_endpoint="enabled", http_tokens="required",
                                                                   http_put_response_hop_limit=1),
        block_device_mappings=[aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
            device_name=ROOT_DEVICE, ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                volume_type="gp3", volume_size=ROOT_GB, encrypted="true", delete_on_termination="true"))],
        monitoring=aws.ec2.LaunchTemplateMonitoringArgs(enabled=True),
        tag_specifications=[aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=t, tags=tagged(tags, Name=name))
                            for t in ("instance", "volume")],
        update_default_version=True, tags=tags, opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)))


@dataclass(frozen=True)
class SingleHostArgs:
    ami: pulumi.Input[str]
    subnet_id: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    instance_type: pulumi.Input[str]
    instance_profile: pulumi.Input[str]
    user_data: pulumi.Input[str]
    tags: Tags


class SingleHost(Tier):
    """Phase 1: one VM in a public subnet with an Elastic IP, nginx + API + worker."""

    TOKEN = "scaleladder:app:SingleHost"

    def __init__(self, name: str, args: SingleHostArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        self.instance = host_instance(name, parent=self, ami=args.ami, instance_type=args.instance_type,
                                      subnet_id=args.subnet_id, security_group_id=args.security_group_id,
                                      instance_profile=args.instance_profile, user_data=args.user_data, tags=args.tags,
                                      public=True)
        self.eip = aws.ec2.Eip(f"{name}-ip", domain="vpc", instance=self.instance.id, tags=args.tags,
                               opts=self.child())
        self.instance_id = self.instance.id
        self.public_ip = self.eip.public_ip
        self.register_outputs({"instanceId": self.instance.id, "publicIp": self.eip.public_ip})
