"""CDN (phase 5 on): CloudFront in front of everything; `/static/*` from a private
S3 bucket through origin access control, the rest from the phase's load balancer,
uncached. With `cdn.apiPath: loadBalancer` (docs/api-path.md) the distribution has no app
origin: it serves the bucket only (clients send the API to the load balancer, whose
certificate and REGIONAL web ACL face them), with CORS headers since the pages come from
the API's host.

Data safety. The `static-assets` bucket keeps its logical name (and so its URN) in
every phase >= 5 and sets none of its replace-forcing inputs (`bucket`,
`bucketPrefix`, `objectLockEnabled`). It is `retain_on_delete`, not `protect`:
stepping back from phase 5 to 4 removes the CDN from the program, and a protected
bucket would make that `pulumi up` fail; retained, Pulumi forgets the bucket while
it stays in AWS with every object and version (climbing again creates a new bucket;
`pulumi import` adopts the old one instead). Everything that guards a bucket (public access
block, policy, encryption, versioning, lifecycle, ownership, ACL) is retained with it. Versioning keeps overwritten assets for
30 days, so a bad deploy of static files can be rolled back.

Origin protocol. CloudFront checks the origin's certificate against the origin's
domain name (AllViewerExceptHostHeader does not forward the viewer's Host), and no
certificate can cover a load balancer's AWS name. So: with `app.certificateArn` the
origin is `cdn.originDomain` (a DNS name in that certificate, pointed at the load
balancer) over `https-only`. The config model requires both from phase 5 on: with the
viewer's cookies and Authorization forwarded (AllViewerExceptHostHeader), plain HTTP between
CloudFront and the load balancer is not an option (review aws-phases-5-6 finding 11).

Origin access. The load balancer admits only CloudFront: its security group only the
managed origin-facing prefix list on 443 (phase 5: ladder/topology.py; phase 6: the
Ingress annotation), and its listener only requests carrying the secret ORIGIN_VERIFY_HEADER
(anyone can point a distribution of their own at the origin; only ours knows the value).

Encryption is SSE-S3 on both buckets: OAC can read SSE-KMS objects only with a key
policy granting CloudFront, and CloudFront standard logging cannot write to SSE-KMS
buckets without one either; SSE-S3 needs neither and still encrypts at rest.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from .base import Tags, Tier, tagged

STATIC_PATH = "/static/*"
STATIC_ORIGIN_ID = "static-assets"
APP_ORIGIN_ID = "app"
ALL_METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
# CloudFront managed policies, looked up by name (their ids are fixed; see ladder.aws_facts).
CACHING_OPTIMIZED = "Managed-CachingOptimized"
CORS_AND_SECURITY_HEADERS = "Managed-CORS-and-SecurityHeadersPolicy"
CACHING_DISABLED = "Managed-CachingDisabled"
ALL_VIEWER_EXCEPT_HOST = "Managed-AllViewerExceptHostHeader"
SECURITY_HEADERS = "Managed-SecurityHeadersPolicy"
ORIGIN_VERIFY_HEADER = "X-Origin-Verify"
"""Sent by CloudFront to the app origin with a secret value; the load balancer forwards only
requests that carry it (fixed 403 otherwise), so another CloudFront distribution pointed at the
origin (the managed prefix list admits every distribution's servers) is refused too."""
CLOUDFRONT_ORIGIN_FACING = "com.amazonaws.global.cloudfront.origin-facing"
"""The AWS-managed prefix list of CloudFront's origin-facing servers (VPC User Guide,
"AWS-managed prefix lists"; its weight is 55 rules of a security group's 60: one rule only)."""


@dataclass(frozen=True)
class OriginVerifyArgs:
    name_prefix: str
    tags: Tags


class OriginVerify(Tier):
    """The origin header's secret value: generated, kept in Secrets Manager (for operators and
    for a rotation), handed to CloudFront and the load balancer as a Pulumi secret only."""

    TOKEN = "scaleladder:edge:OriginVerify"

    def __init__(self, name: str, args: OriginVerifyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        # Letters and digits only: an ALB http-header condition treats * and ? as wildcards and
        # takes at most 128 characters per value (ELB User Guide, "Listener rules", HTTP header conditions).
        value = random.RandomPassword(f"{name}-value", length=48, special=False, opts=self.child())
        self.secret = aws.secretsmanager.Secret(
            f"{name}", description=f"{args.name_prefix}: the {ORIGIN_VERIFY_HEADER} header CloudFront sends to the app origin",
            recovery_window_in_days=7, tags=args.tags, opts=self.child())
        aws.secretsmanager.SecretVersion(f"{name}", secret_id=self.secret.id, secret_string=value.result,
                                         opts=self.child())
        self.value: pulumi.Output[str] = pulumi.Output.secret(value.result)
        self.register_outputs({"originVerifySecretArn": self.secret.arn})


@dataclass(frozen=True)
class CdnArgs:
    origin_domain: pulumi.Input[str] | None
    """DNS name CloudFront reaches the app at: the load balancer's, or `cdn.originDomain`; None: no app
    origin (`cdn.apiPath: loadBalancer`), the distribution serves the static bucket only."""
    origin_https: bool
    """`https-only` to the origin (the app has a certificate covering `origin_domain`), else `http-only`."""
    price_class: str
    """CloudFront price class (edge locations served)."""
    name_prefix: str
    """Prefix of account-unique names (the origin access control)."""
    tags: Tags
    aliases: Sequence[str] = field(default_factory=tuple)
    """Viewer domain names; need `certificate_arn`."""
    certificate_arn: str | None = None
    """ACM certificate in us-east-1 for `aliases`; None -> the *.cloudfront.net certificate."""
    log_retention_days: int = 90
    """Days CloudFront access logs are kept."""
    noncurrent_asset_days: int = 30
    """Days an overwritten or deleted static asset stays recoverable."""
    origin_verify: pulumi.Input[str] | None = None
    """Secret value CloudFront sends as ORIGIN_VERIFY_HEADER to the app origin (OriginVerify)."""
    origin_ready: Sequence[pulumi.Resource] = ()
    """What must serve before the distribution (its app origin) is created or changed: phase 6's app
    Deployment, whose rollout Pulumi awaits and whose pods are ready only once the ALB reports them
    healthy (components/workloads.py), so CloudFront never moves to an ALB without targets."""
    web_acl_arn: pulumi.Input[str] | None = None
    """AWS WAF web ACL (CLOUDFRONT scope, us-east-1) in front of the distribution (components/waf.py)."""
    gate: pulumi.Input[bool] = True
    """A climb check the distribution waits for (ladder.climb_eks.check raises instead of resolving):
    without an app origin nothing else of the distribution depends on it."""


class Cdn(Tier):
    TOKEN = "scaleladder:edge:Cdn"

    def __init__(self, name: str, args: CdnArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        self.args = args
        invoke = pulumi.InvokeOutputOptions(parent=self)

        self.bucket = aws.s3.Bucket("static-assets", tags=tagged(args.tags, role="static-assets"),
                                    opts=self.child(retain_on_delete=True))
        guards = self._private_bucket("static-assets", self.bucket, ownership="BucketOwnerEnforced")
        aws.s3.BucketVersioning(
            "static-assets", bucket=self.bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=self.kept())
        aws.s3.BucketLifecycleConfiguration(
            "static-assets", bucket=self.bucket.id,
            rules=[aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-old-versions", status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=args.noncurrent_asset_days),
                abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=7))],
            opts=self.kept())

        self.logs, log_acl = self._log_bucket(invoke)

        oac = aws.cloudfront.OriginAccessControl(
            # Auto-named (logical name + random suffix): a replacement never collides with the old OAC's name.
            "static-assets", description=f"{args.name_prefix}: static assets (S3)",
            origin_access_control_origin_type="s3", signing_behavior="always", signing_protocol="sigv4",
            opts=self.child())

        optimized = aws.cloudfront.get_cache_policy_output(name=CACHING_OPTIMIZED, opts=invoke).id
        disabled = aws.cloudfront.get_cache_policy_output(name=CACHING_DISABLED, opts=invoke).id
        all_viewer = aws.cloudfront.get_origin_request_policy_output(name=ALL_VIEWER_EXCEPT_HOST, opts=invoke).id
        headers = aws.cloudfront.get_response_headers_policy_output(name=SECURITY_HEADERS, opts=invoke).id

        api = args.origin_domain is not None
        # Pages from the API's own host load /static from the distribution's: cross-origin, so CORS.
        static_headers = headers if api else aws.cloudfront.get_response_headers_policy_output(
            name=CORS_AND_SECURITY_HEADERS, opts=invoke).id
        static_origin = aws.cloudfront.DistributionOriginArgs(
            # No s3_origin_config: with OAC the S3 origin carries no origin access identity.
            origin_id=STATIC_ORIGIN_ID, domain_name=self.bucket.bucket_regional_domain_name,
            origin_access_control_id=oac.id)
        self.distribution = aws.cloudfront.Distribution(
            "cdn",
            enabled=True if api else pulumi.Output.from_input(args.gate).apply(lambda _: True),
            comment=f"{args.name_prefix}: /static/* from S3, the rest from the app" if api
            else f"{args.name_prefix}: static assets from S3 (the API goes to the load balancer)",
            is_ipv6_enabled=True,
            http_version="http2and3",
            price_class=args.price_class,
            aliases=list(args.aliases) or None,
            origins=[static_origin, *([
                aws.cloudfront.DistributionOriginArgs(
                    origin_id=APP_ORIGIN_ID, domain_name=args.origin_domain or "",
                    custom_origin_config=aws.cloudfront.DistributionOriginCustomOriginConfigArgs(
                        http_port=80, https_port=443,
                        origin_protocol_policy="https-only" if args.origin_https else "http-only",
                        origin_ssl_protocols=["TLSv1.2"], origin_read_timeout=60, origin_keepalive_timeout=5),
                    custom_headers=[aws.cloudfront.DistributionOriginCustomHeaderArgs(
                        name=ORIGIN_VERIFY_HEADER, value=args.origin_verify)] if args.origin_verify is not None else None),
            ] if api else [])],
            default_cache_behavior=aws.cloudfront.DistributionDefaultCacheBehaviorArgs(
                target_origin_id=APP_ORIGIN_ID, viewer_protocol_policy="redirect-to-https",
                allowed_methods=ALL_METHODS, cached_methods=["GET", "HEAD"], compress=True,
                cache_policy_id=disabled, origin_request_policy_id=all_viewer, response_headers_policy_id=headers)
            if api else aws.cloudfront.DistributionDefaultCacheBehaviorArgs(
                # No app origin: what is not /static/* is looked up in the bucket too (a 403 for a missing key).
                target_origin_id=STATIC_ORIGIN_ID, viewer_protocol_policy="redirect-to-https",
                allowed_methods=["GET", "HEAD", "OPTIONS"], cached_methods=["GET", "HEAD"], compress=True,
                cache_policy_id=optimized, response_headers_policy_id=static_headers),
            ordered_cache_behaviors=[aws.cloudfront.DistributionOrderedCacheBehaviorArgs(
                path_pattern=STATIC_PATH, target_origin_id=STATIC_ORIGIN_ID, viewer_protocol_policy="redirect-to-https",
                allowed_methods=["GET", "HEAD", "OPTIONS"], cached_methods=["GET", "HEAD"], compress=True,
                cache_policy_id=optimized, response_headers_policy_id=static_headers)],
            logging_config=aws.cloudfront.DistributionLoggingConfigArgs(
                bucket=self.logs.bucket_domain_name, prefix="cloudfront/", include_cookies=False),
            restrictions=aws.cloudfront.DistributionRestrictionsArgs(
                geo_restriction=aws.cloudfront.DistributionRestrictionsGeoRestrictionArgs(restriction_type="none")),
            viewer_certificate=self._viewer_certificate(),
            web_acl_id=args.web_acl_arn,
            tags=args.tags,
            opts=self.child(depends_on=[log_acl, *args.origin_ready]),
        )

        aws.s3.BucketPolicy(
            "static-assets", bucket=self.bucket.id,
            policy=pulumi.Output.all(self.bucket.arn, self.distribution.arn).apply(lambda v: static_policy(v[0], v[1])),
            opts=self.kept(depends_on=guards))

        self.domain_name = self.distribution.domain_name
        host = args.aliases[0] if args.aliases else self.distribution.domain_name
        self.url = pulumi.Output.concat("https://", host)
        self.static_url = pulumi.Output.concat("https://", host, "/static")
        self.bucket_name = self.bucket.bucket
        self.register_outputs({
            "cdnDomain": self.domain_name, "cdnDistributionArn": self.distribution.arn,
            "staticBucket": self.bucket_name, "staticUrl": self.static_url, "cdnLogBucket": self.logs.bucket,
        })

    # -- buckets -------------------------------------------------------------
    def kept(self, **kwargs) -> pulumi.ResourceOptions:
        """Options of what guards a retained bucket (public access block, policy, encryption,
        versioning, lifecycle, ownership, ACL): retained with it, so a step back from phase 5
        leaves the bucket in AWS still private, TLS-only and expiring old versions (deleted
        guards would leave it unblocked and growing)."""
        return self.child(retain_on_delete=True, **kwargs)

    def _private_bucket(self, name: str, bucket: aws.s3.Bucket, ownership: str) -> list[pulumi.Resource]:
        """Public access blocked, ownership set, SSE-S3 by default. Returns what a policy must wait for."""
        block = aws.s3.BucketPublicAccessBlock(
            name, bucket=bucket.id, block_public_acls=True, block_public_policy=True, ignore_public_acls=True,
            restrict_public_buckets=True, opts=self.kept())
        owner = aws.s3.BucketOwnershipControls(
            name, bucket=bucket.id, rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership=ownership),
            opts=self.kept())
        aws.s3.BucketServerSideEncryptionConfiguration(
            name, bucket=bucket.id,
            rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="AES256"))],
            opts=self.kept())
        return [block, owner]

    def _log_bucket(self, invoke: pulumi.InvokeOutputOptions) -> tuple[aws.s3.Bucket, aws.s3.BucketAcl]:
        """CloudFront standard logging writes through bucket ACLs: ACLs enabled
        (BucketOwnerPreferred) and FULL_CONTROL for the awslogsdelivery account."""
        a = self.args
        logs = aws.s3.Bucket("cdn-logs", tags=tagged(a.tags, role="cdn-logs"), opts=self.child(retain_on_delete=True))
        block, owner = self._private_bucket("cdn-logs", logs, ownership="BucketOwnerPreferred")
        me = aws.s3.get_canonical_user_id_output(opts=invoke).id
        delivery = aws.cloudfront.get_log_delivery_canonical_user_id_output(opts=invoke).id
        acl = aws.s3.BucketAcl(
            "cdn-logs", bucket=logs.id,
            access_control_policy=aws.s3.BucketAclAccessControlPolicyArgs(
                owner=aws.s3.BucketAclAccessControlPolicyOwnerArgs(id=me),
                grants=[aws.s3.BucketAclAccessControlPolicyGrantArgs(
                    permission="FULL_CONTROL",
                    grantee=aws.s3.BucketAclAccessControlPolicyGrantGranteeArgs(type="CanonicalUser", id=grantee))
                    for grantee in (me, delivery)]),
            opts=self.kept(depends_on=[owner]))
        aws.s3.BucketLifecycleConfiguration(
            "cdn-logs", bucket=logs.id,
            rules=[aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-logs", status="Enabled", filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=a.log_retention_days),
                abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=7))],
            opts=self.kept())
        aws.s3.BucketPolicy("cdn-logs", bucket=logs.id, policy=logs.arn.apply(lambda arn: tls_only_policy(arn)),
                            opts=self.kept(depends_on=[block]))
        return logs, acl

    def _viewer_certificate(self) -> aws.cloudfront.DistributionViewerCertificateArgs:
        if self.args.certificate_arn:
            return aws.cloudfront.DistributionViewerCertificateArgs(
                acm_certificate_arn=self.args.certificate_arn, ssl_support_method="sni-only",
                minimum_protocol_version="TLSv1.2_2021")
        return aws.cloudfront.DistributionViewerCertificateArgs(cloudfront_default_certificate=True)


def _deny_insecure(bucket_arn: str) -> dict:
    return {
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def tls_only_policy(bucket_arn: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [_deny_insecure(bucket_arn)]})


def static_policy(bucket_arn: str, distribution_arn: str) -> str:
    """Reads only by this distribution (OAC signs as cloudfront.amazonaws.com), TLS only."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        _deny_insecure(bucket_arn),
        {
            "Sid": "AllowCloudFrontReadThroughOAC", "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"}, "Action": "s3:GetObject",
            "Resource": f"{bucket_arn}/*",
            "Condition": {"StringEquals": {"AWS:SourceArn": distribution_arn}},
        },
    ]})
