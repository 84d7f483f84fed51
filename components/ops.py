"""Ops (phases 1-5): what day-2 Ansible (`ansible/`) needs from the stack.

- The SSM transfer bucket. Ansible's `amazon.aws.aws_ssm` connection moves every module
  and file through S3: the controller uploads with its own credentials and hands the host
  a presigned URL that the host fetches with curl (the plugin's documentation,
  `amazon/aws/plugins/connection/aws_ssm.py`: "The remote instance does not require IAM
  credentials for S3 ... generate a presigned URL"). So the host roles get no S3 access
  at all; the operator's policy below gets the plugin's documented controller permissions
  (s3:GetObject, PutObject, ListBucket, DeleteObject, GetBucketLocation). The bucket is
  private (public access blocked, ownership enforced, TLS-only policy), SSE-S3 encrypted
  (a KMS key would need a key grant for every operator and the presigned requests) and
  unversioned with a one-day expiry: the plugin deletes its objects after each task, and
  warns that versioned buckets keep them (secrets a task moves would stay in history).
  `force_destroy`: the contents are transfer leftovers, so stepping down to phase 6 (no
  hosts) can delete the bucket.
- The image parameter (`image_parameter`: phase 1's VM and nginx-mode fixed app hosts,
  which no Auto Scaling group rolls). Those hosts read the app image from this SSM
  parameter at boot instead of from user data, so a new `app.image` changes the
  parameter in place and never the hosts' user data (which would replace them):
  `ansible/deploy.yml` rolls the image onto the running hosts and writes the same value.
- The operator policy: attach it to whoever runs the playbooks (inventory, SSM sessions to
  this stack's instances only, the transfer bucket, the image parameter).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .base import Tags, Tier, tagged

TRANSFER_EXPIRY_DAYS = 1
"""S3 lifecycle expiration is counted in whole days (at least 1; S3 User Guide, "Lifecycle
configuration elements": Days "must be a non-zero positive integer")."""
SESSION_DOCUMENT = "SSM-SessionManagerRunShell"
"""The Session Manager document a session uses when none is named (what aws_ssm starts)."""


def image_parameter_name(prefix: str) -> str:
    """Where hosts without an Auto Scaling group read the app image (an SSM parameter name)."""
    return f"/{prefix}/app-image"


def image_from_parameter(phase: int, load_balancer: str, keep_single_host: bool = False) -> bool:
    """Hosts no Auto Scaling group rolls (phase 1's VM, also while a 1->2 climb keeps it:
    `climb.keepSingleHost`; nginx mode's fixed app hosts, phase 2 only: ladder.config) read the app image from
    the SSM parameter at boot, so ansible/deploy.yml rolls a new image onto them in place; an
    Auto Scaling group rolls itself on a new launch template."""
    return phase == 1 or keep_single_host or (phase <= 5 and load_balancer == "nginx")


@dataclass(frozen=True)
class OpsArgs:
    name_prefix: str
    """The stack's sanitised name prefix (ladder.names.name_prefix)."""
    project: str
    stack: str
    image: str
    """`app.image`: the parameter's value."""
    image_parameter: bool
    """Build the image parameter (phase 1, nginx-mode fleets)."""
    tags: Tags


def transfer_bucket_policy(bucket_arn: str) -> str:
    """Refuse every request that is not over TLS (S3 User Guide, "Enforce encryption in transit":
    Deny on aws:SecureTransport false)."""
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})


def operator_policy(project: str, stack: str, bucket_arn: str, parameter_arn: str | None) -> str:
    """What `ansible-playbook` needs: the aws_ec2 inventory (DescribeInstances has no resource
    scoping), Session Manager sessions to instances tagged with this project and stack only,
    ending its own sessions, the transfer bucket (the aws_ssm plugin's documented controller
    permissions) and, where there is one, the image parameter deploy.yml writes."""
    statements: list[dict] = [
        {"Sid": "Inventory", "Effect": "Allow", "Action": "ec2:DescribeInstances", "Resource": "*"},
        {"Sid": "SessionsToThisStack", "Effect": "Allow", "Action": "ssm:StartSession",
         "Resource": "arn:aws:ec2:*:*:instance/*",
         "Condition": {"StringEquals": {"ssm:resourceTag/project": project, "ssm:resourceTag/stack": stack}}},
        {"Sid": "SessionDocument", "Effect": "Allow", "Action": "ssm:StartSession",
         "Resource": f"arn:aws:ssm:*:*:document/{SESSION_DOCUMENT}"},
        {"Sid": "OwnSessions", "Effect": "Allow", "Action": ["ssm:TerminateSession", "ssm:ResumeSession"],
         "Resource": "arn:aws:ssm:*:*:session/${aws:userid}-*"},
        {"Sid": "TransferBucket", "Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
         "Resource": bucket_arn},
        {"Sid": "TransferObjects", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
         "Resource": f"{bucket_arn}/*"},
    ]
    if parameter_arn:
        # community.aws.ssm_parameter reads, writes and compares tags of the parameter, and looks
        # it up with DescribeParameters (an action without resource-level permissions).
        statements.append({"Sid": "ImageParameter", "Effect": "Allow",
                           "Action": ["ssm:GetParameter", "ssm:PutParameter", "ssm:ListTagsForResource"],
                           "Resource": parameter_arn})
        statements.append({"Sid": "FindParameters", "Effect": "Allow", "Action": "ssm:DescribeParameters",
                           "Resource": "*"})
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


class Ops(Tier):
    TOKEN = "scaleladder:ops:Ops"

    def __init__(self, name: str, args: OpsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        self.bucket = aws.s3.Bucket(f"{name}-ssm-transfer", force_destroy=True,
                                    tags=tagged(args.tags, role="ssm-transfer"), opts=self.child())
        block = aws.s3.BucketPublicAccessBlock(
            f"{name}-ssm-transfer", bucket=self.bucket.id, block_public_acls=True, block_public_policy=True,
            ignore_public_acls=True, restrict_public_buckets=True, opts=self.child())
        owner = aws.s3.BucketOwnershipControls(
            f"{name}-ssm-transfer", bucket=self.bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"), opts=self.child())
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-ssm-transfer", bucket=self.bucket.id,
            rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="AES256"))],
            opts=self.child())
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-ssm-transfer", bucket=self.bucket.id,
            rules=[aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-transfers", status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=TRANSFER_EXPIRY_DAYS),
                abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=TRANSFER_EXPIRY_DAYS))],
            opts=self.child())
        # After the public access block: a policy put before it would be checked as possibly public.
        aws.s3.BucketPolicy(f"{name}-ssm-transfer", bucket=self.bucket.id,
                            policy=self.bucket.arn.apply(transfer_bucket_policy),
                            opts=self.child(depends_on=[block, owner]))

        self.image_parameter: aws.ssm.Parameter | None = None
        if args.image_parameter:
            self.image_parameter = aws.ssm.Parameter(
                f"{name}-app-image", name=image_parameter_name(args.name_prefix), type="String",
                insecure_value=args.image, description="App image the hosts without an Auto Scaling group run "
                                                       "(written by pulumi up and ansible/deploy.yml)",
                tags=args.tags, opts=self.child())
        parameter_arn = self.image_parameter.arn if self.image_parameter else None
        self.operator_policy = aws.iam.Policy(
            f"{name}-ansible-operator", description=f"{args.name_prefix}: run ansible/ playbooks against this stack",
            policy=pulumi.Output.all(self.bucket.arn, parameter_arn).apply(
                lambda v: operator_policy(args.project, args.stack, v[0], v[1])),
            tags=args.tags, opts=self.child())
        self.bucket_name = self.bucket.bucket
        self.image_parameter_arn = parameter_arn
        self.image_parameter_name = image_parameter_name(args.name_prefix) if args.image_parameter else None
        self.register_outputs({"ssmTransferBucket": self.bucket.bucket,
                               "ansibleOperatorPolicyArn": self.operator_policy.arn})
