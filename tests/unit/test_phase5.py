"""Phase 5 (and 6, which keeps it): CloudFront in front of a private static-assets
bucket and the app, read from the offline plan."""

from __future__ import annotations

import json

import pytest

from ladder import engine
from ladder.aws_facts import CLOUDFRONT_LOG_DELIVERY_CANONICAL_ID, CLOUDFRONT_MANAGED_POLICIES
from ladder.config import ConfigError

from .plans import plan, stack_values, user_data_texts

CDN_STACKS = ["phase5", "phase6"]
APP_CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0123abcd-0123-4567-89ab-0123456789ab"
CDN_CERT = "arn:aws:acm:us-east-1:123456789012:certificate/fedcba98-0123-4567-89ab-0123456789ab"
ALL_METHODS = {"GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"}


def distribution(p: engine.Plan) -> engine.Resource:
    return p.one("aws:cloudfront/distribution:Distribution")


def behaviours(p: engine.Plan) -> tuple[dict, dict, dict]:
    """(the /static/* behaviour, the default behaviour, origins by id)."""
    d = distribution(p).inputs
    static = [b for b in d.get("orderedCacheBehaviors", []) if b["pathPattern"] == "/static/*"]
    assert len(static) == 1, "exactly one /static/* behaviour"
    return static[0], d["defaultCacheBehavior"], {o["originId"]: o for o in d["origins"]}


def app_origin_host(p: engine.Plan) -> str:
    """The load balancer the phase serves the app from: the fleet's ALB, or the Ingress's ALB."""
    if p.config.phase == 6:
        ingress = p.one("kubernetes:networking.k8s.io/v1:Ingress")
        return ingress.state["status"]["loadBalancer"]["ingress"][0]["hostname"]
    return p.one("aws:lb/loadBalancer:LoadBalancer", "fleet-alb").state["dnsName"]


@pytest.mark.parametrize("stack", CDN_STACKS)
def test_static_bucket_is_private_and_readable_only_by_this_distribution_over_tls(stack):
    p = plan(stack)
    bucket = p.one("aws:s3/bucket:Bucket", "static-assets")
    arn = bucket.state["arn"]
    # Kept on step-back (5 -> 4 removes the CDN) without blocking it, as `protect` would.
    assert bucket.options["retainOnDelete"] and not bucket.options["protect"]
    assert not {"acl", "policy", "grants", "website"} & set(bucket.inputs), "no inline ACL, policy or website"

    block = p.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "static-assets").inputs
    assert block["bucket"] == bucket.id
    assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                          "restrictPublicBuckets"))
    owner = p.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls", "static-assets").inputs
    assert owner["rule"]["objectOwnership"] == "BucketOwnerEnforced", "ACLs off: only the policy grants access"
    sse = p.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                "static-assets").inputs
    assert sse["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] in ("AES256", "aws:kms")
    versioning = p.one("aws:s3/bucketVersioning:BucketVersioning", "static-assets").inputs
    assert versioning["versioningConfiguration"]["status"] == "Enabled"

    policy = json.loads(p.one("aws:s3/bucketPolicy:BucketPolicy", "static-assets").inputs["policy"])
    allows = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert allows
    for s in allows:
        assert s["Principal"] == {"Service": "cloudfront.amazonaws.com"}, s
        assert s["Condition"] == {"StringEquals": {"AWS:SourceArn": distribution(p).state["arn"]}}, s
        assert s["Action"] in ("s3:GetObject", ["s3:GetObject"]), "CloudFront only reads"
    denies = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert any(s["Principal"] == "*" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
               and {arn, f"{arn}/*"} <= set(s["Resource"]) and s["Action"] == "s3:*" for s in denies), "TLS only"

    # The S3 origin signs with origin access control (sigv4, always), not a legacy OAI.
    oac = p.one("aws:cloudfront/originAccessControl:OriginAccessControl")
    assert (oac.inputs["signingBehavior"], oac.inputs["signingProtocol"],
            oac.inputs["originAccessControlOriginType"]) == ("always", "sigv4", "s3")
    static, _, origins = behaviours(p)
    s3 = origins[static["targetOriginId"]]
    assert s3["domainName"] == bucket.state["bucketRegionalDomainName"]
    assert s3["originAccessControlId"] == oac.id
    assert not s3.get("s3OriginConfig", {}).get("originAccessIdentity")


@pytest.mark.parametrize("stack", CDN_STACKS)
def test_static_paths_are_cached_from_s3_and_everything_else_goes_uncached_to_the_app(stack):
    p = plan(stack)
    static, default, origins = behaviours(p)
    headers = CLOUDFRONT_MANAGED_POLICIES["Managed-SecurityHeadersPolicy"]

    assert static["cachePolicyId"] == CLOUDFRONT_MANAGED_POLICIES["Managed-CachingOptimized"]
    assert static["compress"] is True and static["viewerProtocolPolicy"] == "redirect-to-https"
    assert set(static["allowedMethods"]) <= {"GET", "HEAD", "OPTIONS"}, "S3 is read-only"
    assert static["responseHeadersPolicyId"] == headers

    assert default["cachePolicyId"] == CLOUDFRONT_MANAGED_POLICIES["Managed-CachingDisabled"]
    assert default["originRequestPolicyId"] == CLOUDFRONT_MANAGED_POLICIES["Managed-AllViewerExceptHostHeader"]
    assert set(default["allowedMethods"]) == ALL_METHODS
    assert default["viewerProtocolPolicy"] == "redirect-to-https"
    assert default["responseHeadersPolicyId"] == headers

    app = origins[default["targetOriginId"]]
    # From phase 5 the origin is reached over HTTPS at cdn.originDomain (a name in app.certificateArn
    # pointed at the load balancer), never at the load balancer's own AWS name no certificate covers.
    assert app["domainName"] == p.config.cdn.origin_domain != app_origin_host(p)
    custom = app["customOriginConfig"]
    assert custom["originProtocolPolicy"] == "https-only", "viewers' cookies and Authorization cross this leg"
    assert custom["originSslProtocols"] == ["TLSv1.2"]

    d = distribution(p).inputs
    assert d["priceClass"] == p.config.cdn.price_class
    assert d["viewerCertificate"] == {"cloudfrontDefaultCertificate": True}
    assert "aliases" not in d or not d["aliases"]


def test_with_certificates_the_cdn_serves_aliases_and_reaches_the_origin_over_https():
    p = plan("phase5", app={"certificateArn": APP_CERT},
             cdn={"originDomain": "origin.example.com", "aliases": ["www.example.com"], "certificateArn": CDN_CERT})
    _, default, origins = behaviours(p)
    app = origins[default["targetOriginId"]]
    assert app["domainName"] == "origin.example.com", "a name the app certificate covers, not the ALB's AWS name"
    assert app["customOriginConfig"]["originProtocolPolicy"] == "https-only"
    d = distribution(p).inputs
    assert d["aliases"] == ["www.example.com"]
    assert d["viewerCertificate"] == {"acmCertificateArn": CDN_CERT, "sslSupportMethod": "sni-only",
                                      "minimumProtocolVersion": "TLSv1.2_2021"}
    app_hosts = [text for text in user_data_texts(p).values() if "app.plain.env" in text]
    assert app_hosts and all("STATIC_URL=https://www.example.com/static\n" in text for text in app_hosts)
    assert p.outputs["url"] == "https://www.example.com"


@pytest.mark.parametrize("overrides,key", [
    ({"app": {"certificateArn": APP_CERT}, "cdn": {"originDomain": None}}, "scaleladder:cdn.originDomain"),
    ({"cdn": {"aliases": ["www.example.com"]}}, "scaleladder:cdn.aliases"),
    ({"cdn": {"certificateArn": CDN_CERT}}, "scaleladder:cdn.certificateArn"),
    ({"app": {"certificateArn": None}}, "scaleladder:app.certificateArn"),
])
def test_cdn_certificate_mistakes_are_refused_naming_the_key(overrides, key):
    with pytest.raises(ConfigError) as err:
        engine.run("phase5", values=stack_values("phase5", **overrides))
    assert key in str(err.value)


@pytest.mark.parametrize("stack", CDN_STACKS)
def test_access_logs_go_to_a_private_encrypted_expiring_bucket_cloudfront_can_write(stack):
    p = plan(stack)
    logs = p.one("aws:s3/bucket:Bucket", "cdn-logs")
    assert distribution(p).inputs["loggingConfig"]["bucket"] == logs.state["bucketDomainName"]
    block = p.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "cdn-logs").inputs
    assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                          "restrictPublicBuckets"))
    # Standard logging writes through ACLs: ACLs enabled, FULL_CONTROL for awslogsdelivery.
    owner = p.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls", "cdn-logs").inputs
    assert owner["rule"]["objectOwnership"] == "BucketOwnerPreferred"
    grants = p.one("aws:s3/bucketAcl:BucketAcl", "cdn-logs").inputs["accessControlPolicy"]["grants"]
    assert {"permission": "FULL_CONTROL", "grantee": {"type": "CanonicalUser", "id": CLOUDFRONT_LOG_DELIVERY_CANONICAL_ID}} in grants
    assert all(g["grantee"]["type"] == "CanonicalUser" for g in grants), "no group (public) grantees"
    assert p.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "cdn-logs")
    rules = p.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "cdn-logs").inputs["rules"]
    assert any(r["status"] == "Enabled" and r.get("expiration", {}).get("days", 0) > 0 for r in rules)


def test_app_hosts_get_the_cdn_static_url_and_earlier_phases_have_no_cdn():
    p = plan("phase5")
    # Known before the distribution (which waits for the app hosts): on the first `up` with a CDN
    # the same-host path, then the `staticUrl` the last `up` recorded (tests/unit/test_climb_eks.py).
    expected = "STATIC_URL=/static\n"
    hosts = {name: text for name, text in user_data_texts(p).items() if "app.plain.env" in text}
    assert hosts and all(expected in text for text in hosts.values()), "API and workers read STATIC_URL"
    assert p.outputs["url"] == f"https://{p.outputs['cdnDomain']}"
    earlier = plan("phase4")
    assert not earlier.of_type("scaleladder:edge:Cdn")
    assert not [b for b in earlier.of_type("aws:s3/bucket:Bucket") if b.name == "static-assets"]
    assert not any("STATIC_URL" in text for text in user_data_texts(earlier).values())
