"""`python -m ladder prices refresh`: rebuild the price catalog's regions from the AWS price list.

Two sources answer the same questions (`Source.products`):
- `bulk` (default): the public Price List Bulk API offer files, no credentials. Service index
  `/offers/v1.0/aws/index.json` -> the service's `currentRegionIndexUrl` -> the region's
  `currentVersionUrl` (a global service such as CloudFront: the service's `currentVersionUrl`)
  (AWS Billing User Guide: "Getting price list files manually" gives the index URL
  https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/index.json; "Reading the service index
  file" its `offers.<code>.currentVersionUrl`/`currentRegionIndexUrl`; "Service Region index file
  for AWS services" `regions.<code>.currentVersionUrl`, e.g.
  /offers/v1.0/aws/AmazonRDS/20230328234721/us-east-2/index.json). A regional EC2 offer is about
  450 MB and 106k products (mattrobinsonsre/terrapod pricegen/fetch_offers.py, which streams it the same
  way), so it is downloaded once to a cache file in chunks and stream-parsed twice with ijson (yajl2 C
  backend; pinned in requirements.txt): `products` first, keeping only products a query
  matches, then `terms.OnDemand` for those SKUs only. Memory stays at the matches; a synthetic
  165 MB EC2-like offer (200,000 products, 53 wants) takes 28 s on a loaded 2-core machine, so a
  regional EC2 offer takes a minute or two (`--cache DIR` keeps the downloads for re-runs).
- `api`: the Price List Query API (boto3 `pricing` get_products, us-east-1, credentials); the
  exact-match filters go to the API as TERM_MATCH, every page is read (NextToken).

Each catalog table has a `Query` (Infracost's filters, internal/resources/aws/*.go in
infracost/infracost): productFamily, `locationType: AWS Region`, the region as `regionCode`
(`fromRegionCode` for AWSDataTransfer, whose products carry no regionCode), CloudFront by edge,
and a usage-type regex matched in full (`re.fullmatch`) so Outposts-, trust-store or reserved
variants never match. A price is written only when exactly one product matches, it has one
on-demand term, its unit is the table's price-list unit and its tiers are contiguous from 0 to
Inf; anything else is a `RefreshError` naming the table, the filters and the candidates. One
error fails the command (exit 1) and the catalog file is not rewritten, so every region a
refresh writes was refreshed table by table and its `retrieved` date is true.

`--table NAME` (repeatable) refreshes only those tables: the others keep their values, the region
keeps its `retrieved` date (that of its other tables, so no unrefreshed price is dated today) and
its `source` gains a sentence naming the refreshed tables and the day. This is the way past a
table whose query has never met a real product: UNIT_SOURCE says, per query, whether its unit is
recorded (tests/fixtures/pricelist), taken from a public matcher's expected units, or unverified
(an unverified unit that is wrong fails that table loudly; it never writes a wrong price). No
query here has been run against a live offer file: this project has no network access.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import IO, Any, Protocol

import yaml

from .cli import COMMANDS
from .prices import CATALOG_PATH, REGION_META, catalog

Tier = tuple[float | None, float]  # (cumulative upper bound in the table's unit or None, USD per unit)


@dataclass(frozen=True)
class Query:
    """How one catalog table is found in the price list."""

    service: str
    family: str | None  # productFamily; None where the products of the service carry none we filter on
    usagetype: str  # regex matched in full; {code}: the region's optional usage-type prefix, {region}: the
    # region name, {edge}: the CloudFront edge prefix, {key}: the per-type key (by="usagetype")
    unit: str  # the price list's unit of the price dimensions (Hrs, GB-Mo, GB, LCU-Hrs, Requests ...)
    filters: dict[str, str] = field(default_factory=dict)  # exact attribute values
    by: str | None = None  # attribute holding the per-type key (instanceType); "usagetype": the key is {key}
    scale: float = 1.0  # price-list unit -> catalog unit (per request -> per 10k requests ...)
    scope: str = "region"  # region: regionCode + locationType; from: fromRegionCode; edge: CloudFront, global
    first_tier: bool = False  # a flat catalog table that states it keeps the first tier ("first 50 TB")
    when_present: dict[str, str] = field(default_factory=dict)  # checked only where a product has the attribute
    metal_family: str | None = None  # productFamily of `.metal` keys (EC2: "Compute Instance (bare metal)")


# Usage-type prefixes of the catalog regions. us-east-1 products may carry none (EC2 "BoxUsage:..."),
# so the prefix is optional; the region filter already excludes other regions' products.
# Sources: AWS S3 User Guide, "Understanding your AWS billing and usage reports for Amazon S3"
# (EUC1 = EU (Frankfurt), EU = EU (Ireland)); lyft/awspricing tests/data/ec2_offer.py
# ("EU-BoxUsage:i3.metal", a recorded eu-west-1 product); USE1 for us-east-1 as in AWS Cost and
# Usage Reports (e.g. "USE1-AmazonEKS-Hours:perCluster").
USAGE_PREFIX = {"us-east-1": "USE1", "eu-west-1": "EU", "eu-central-1": "EUC1"}


# The price list's location names of the catalog regions, for AWSDataTransfer products that carry
# `fromLocation` but no `fromRegionCode` (Infracost data_transfer.go filters on fromLocation). Sources:
# "US East (N. Virginia)", "EU (Ireland)": products recorded in lyft/awspricing tests/data/ec2_offer.py;
# "EU (Frankfurt)": Infracost internal/resources/aws/cloudfront_distribution.go (Origin Shield regions).
REGION_NAME = {"us-east-1": "US East (N. Virginia)", "eu-west-1": "EU (Ireland)", "eu-central-1": "EU (Frankfurt)"}


def region_prefix(region: str) -> str:
    """The optional usage-type prefix group for `region` (an unknown region: only unprefixed types)."""
    code = USAGE_PREFIX.get(region)
    return f"(?:{code}-)?" if code else ""


def edge(region: str) -> tuple[str, str]:
    """CloudFront's price-list edge for viewers near `region`: (usage-type prefix, fromLocation/location).

    Infracost cloudfront_distribution.go prices "United States" and "Europe" edges
    (`fromLocation` for data out, `location` for requests)."""
    return ("EU", "Europe") if region.startswith("eu-") else ("US", "United States")


_EC2 = {"operatingSystem": "Linux", "tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used",
        "licenseModel": "No License required"}  # Infracost instance.go
_P = "{code}"

# Units: where each query's unit comes from is UNIT_SOURCE (below QUERIES); a product in another unit fails
# the refresh loudly, never silently, so an unverified unit can block a table (`--table` refreshes the others).
QUERIES: dict[str, Query] = {
    # marketoption: today's EC2 products carry OnDemand beside other market options (mattrobinsonsre/terrapod
    # pricegen/providers/aws/defaults.yaml `canonical`, applied where a product has it; the 2018 recording has none)
    # the key escaped in full (m7i-flex.large); metal types are their own family (Infracost instance.go: "metal
    # instances have a different ProductFamily"; lyft/awspricing tests/data/ec2_offer.py @ 9bd66f28
    # BARE_METAL_EC2_OFFER: "Compute Instance (bare metal)", EU-BoxUsage:i3.metal)
    "ec2_instance_hour": Query("AmazonEC2", "Compute Instance", r"{code}BoxUsage:{key}", "Hrs",
                               _EC2, by="instanceType", when_present={"marketoption": "OnDemand"},
                               metal_family="Compute Instance (bare metal)"),
    "ebs_gp3_gb_month": Query("AmazonEC2", "Storage", r"{code}EBS:VolumeUsage\.gp3", "GB-Mo",
                              {"volumeApiName": "gp3"}),
    "public_ipv4_hour": Query("AmazonVPC", None, r"{code}PublicIPv4:InUseAddress", "Hrs"),
    # Infracost data_transfer.go: AWSDataTransfer, "Data Transfer", transferType "AWS Outbound", usage type
    # ending DataTransfer-Out-Bytes; the region as fromRegionCode (these products have no regionCode).
    "data_transfer_out_gb": Query("AWSDataTransfer", "Data Transfer", r"{code}DataTransfer-Out-Bytes", "GB",
                                  {"transferType": "AWS Outbound", "toLocation": "External"}, scope="from",
                                  first_tier=True),
    "nat_gateway_hour": Query("AmazonEC2", "NAT Gateway", r"{code}NatGateway-Hours", "Hrs"),
    "nat_gateway_gb": Query("AmazonEC2", "NAT Gateway", r"{code}NatGateway-Bytes", "GB"),
    # Infracost lb.go: ^([A-Z]{3}\d-|Global-|EU-)?LoadBalancerUsage$ / LCUUsage, locationType AWS Region.
    "alb_hour": Query("AWSELB", "Load Balancer-Application", r"{code}LoadBalancerUsage", "Hrs"),
    "alb_lcu_hour": Query("AWSELB", "Load Balancer-Application", r"{code}LCUUsage", "LCU-Hrs"),
    "nlb_hour": Query("AWSELB", "Load Balancer-Network", r"{code}LoadBalancerUsage", "Hrs"),
    "nlb_nlcu_hour": Query("AWSELB", "Load Balancer-Network", r"{code}LCUUsage", "LCU-Hrs"),
    # Infracost db_instance.go: instanceType, deploymentOption, databaseEngine; storage "-RDS:GP3-Storage$".
    "rds_postgres_instance_hour": Query("AmazonRDS", "Database Instance", r"{code}InstanceUsage:db\.[a-z0-9.]+",
                                        "Hrs", {"databaseEngine": "PostgreSQL", "deploymentOption": "Single-AZ"},
                                        by="instanceType"),
    # Infracost db_instance.go storage filters: deploymentOption, databaseEngine "Any", volumeType
    # "General Purpose-GP3", usage type /-RDS:GP3-Storage$/ (kept, matched in full)
    "rds_gp3_gb_month": Query("AmazonRDS", "Database Storage", r"{code}RDS:GP3-Storage", "GB-Mo",
                              {"deploymentOption": "Single-AZ", "databaseEngine": "Any",
                               "volumeType": "General Purpose-GP3"}),
    # Infracost elasticache_cluster.go: "Cache Instance", instanceType, locationType, cacheEngine.
    "elasticache_node_hour": Query("AmazonElastiCache", "Cache Instance", r"{code}NodeUsage:cache\.[a-z0-9.]+",
                                   "Hrs", {"cacheEngine": "Redis"}, by="instanceType"),
    "eks_cluster_hour": Query("AmazonEKS", "Compute", r"{code}AmazonEKS-Hours:perCluster", "Hours"),
    # Infracost cloudfront_distribution.go: data out by transferType "CloudFront Outbound" + fromLocation;
    # HTTPS requests by location + requestType "CloudFront-Request-HTTPS-Proxy" (no usage type). That
    # requestType belongs to the `{edge}-Requests-HTTPS-Proxy` product, not `-Requests-Tier2-HTTPS` (a billing
    # sample lists both as separate lines, "Proxy HTTPS Requests" / "HTTPS Requests"; public cost code pairs
    # requestType CloudFront-Request-HTTPS-Proxy with usagetype f"{prefix}-Requests-HTTPS-Proxy", family
    # "Request"), so the full-match usage type is that one: one product, as Infracost prices it.
    "cloudfront_gb_out": Query("AmazonCloudFront", None, r"{edge}-DataTransfer-Out-Bytes", "GB",
                               {"transferType": "CloudFront Outbound"}, scope="edge", first_tier=True),
    # Edge to origin: `{edge}-DataTransfer-Out-OBytes` ("O" for origin; CUR usage-type notes in public cost
    # tooling; Infracost cloudfront_distribution.go dataOutToOriginCostComponents; one flat $0.020 tier).
    "cloudfront_origin_gb": Query("AmazonCloudFront", None, r"{edge}-DataTransfer-Out-OBytes", "GB", scope="edge"),
    "cloudfront_https_requests_10k": Query("AmazonCloudFront", "Request", r"{edge}-Requests-HTTPS-Proxy", "Requests",
                                           {"requestType": "CloudFront-Request-HTTPS-Proxy"}, scale=1e4,
                                           scope="edge"),
    "s3_standard_gb_month": Query("AmazonS3", "Storage", r"{code}TimedStorage-ByteHrs", "GB-Mo",
                                  {"volumeType": "Standard"}, first_tier=True),
    "s3_put_requests_1k": Query("AmazonS3", "API Request", r"{code}Requests-Tier1", "Requests", scale=1e3),
    "s3_get_requests_1k": Query("AmazonS3", "API Request", r"{code}Requests-Tier2", "Requests", scale=1e3),
    # Infracost cloudwatch_metric_alarm.go: family "Alarm", standard vs high resolution by `alarmType`
    # ("Standard" / "High Resolution"), no usage-type filter. The standard product's usage type
    # CW:AlarmMonitorUsage is in public billing data; the high-resolution product's is not known here, so
    # that query admits CW:AlarmMonitorUsage or CW:HighResAlarmMonitorUsage and alarmType decides.
    "cloudwatch_alarm_metric_month": Query("AmazonCloudWatch", "Alarm", r"{code}CW:AlarmMonitorUsage", "Alarms",
                                           {"alarmType": "Standard"}),
    "cloudwatch_alarm_high_res_metric_month": Query("AmazonCloudWatch", "Alarm",
                                                    r"{code}CW:(?:HighRes)?AlarmMonitorUsage", "Alarms",
                                                    {"alarmType": "High Resolution"}),
    # Infracost cloudwatch_log_group.go: "Data Payload", /-DataProcessing-Bytes/ (standard class, not vended logs)
    "cloudwatch_logs_ingest_gb": Query("AmazonCloudWatch", "Data Payload", r"{code}DataProcessing-Bytes", "GB"),
    "secretsmanager_secret_month": Query("AWSSecretsManager", "Secret", r"{code}AWSSecretsManager-Secrets",
                                         "Secrets"),
    "secretsmanager_api_calls_10k": Query("AWSSecretsManager", "API Request", r"{code}AWSSecretsManager-APIRequest",
                                          "API Requests", scale=1e4),
    # Infracost kms_key.go: "Encryption Key", /KMS-Keys/; KMS prefixes the region name ("sa-east-1-KMS-Keys"
    # in a public price-list estimator's lookups), so both prefix forms are allowed
    "kms_key_month": Query("awskms", "Encryption Key", r"(?:{region}-)?{code}KMS-Keys", "Keys"),
    "vpc_interface_endpoint_hour": Query("AmazonVPC", "VpcEndpoint", r"{code}VpcEndpoint-Hours", "Hrs"),
    # AWS WAF, as Infracost filters it (internal/resources/aws/wafv2_web_acl.go): Shield-protected variants
    # excluded by the full match.
    "waf_web_acl_month": Query("awswaf", "Web Application Firewall", r"[A-Z0-9]*-WebACLV2", "Month"),
    "waf_rule_month": Query("awswaf", "Web Application Firewall", r"[A-Z0-9]*-RuleV2", "Month"),
    "waf_requests_1m": Query("awswaf", "Web Application Firewall", r"[A-Z0-9]*-RequestV2-Tier1", "Requests",
                             scale=1e6),
    # Tables added for issue 17. Infracost elasticache_cluster.go: cacheEngine is the engine title-cased.
    "elasticache_valkey_node_hour": Query("AmazonElastiCache", "Cache Instance",
                                          r"{code}NodeUsage:cache\.[a-z0-9.]+", "Hrs", {"cacheEngine": "Valkey"},
                                          by="instanceType"),
    # Infracost instance.go / db_instance.go: "CPU Credits", usage type ending CPUCredits:<family>
    "ec2_cpu_credit_vcpu_hour": Query("AmazonEC2", "CPU Credits", r"{code}CPUCredits:{key}", "vCPU-Hours",
                                      {"operatingSystem": "Linux"}, by="usagetype"),
    "rds_cpu_credit_vcpu_hour": Query("AmazonRDS", "CPU Credits", r"{code}CPUCredits:{key}", "vCPU-Hours",
                                      {"databaseEngine": "PostgreSQL"}, by="usagetype"),
    # Infracost instance.go detailed monitoring: "Metric", group "Metric"; the table keeps the first tier
    "cloudwatch_metric_month": Query("AmazonCloudWatch", "Metric", r"{code}CW:MetricMonitorUsage", "Metrics",
                                     {"group": "Metric"}, first_tier=True),
    "cloudwatch_api_requests_1k": Query("AmazonCloudWatch", "API Request", r"{code}CW:Requests", "Requests",
                                        scale=1e3),
    # Infracost elasticache_cluster.go backup storage: "Storage Snapshot", no usage-type filter (the
    # exactly-one check guards it)
    "elasticache_backup_gb_month": Query("AmazonElastiCache", "Storage Snapshot", r".+", "GB-Mo"),  # family only
    # Infracost cloudwatch_log_group.go: "Storage Snapshot", /-TimedStorage-ByteHrs/
    "cloudwatch_logs_storage_gb_month": Query("AmazonCloudWatch", "Storage Snapshot", r"{code}TimedStorage-ByteHrs",
                                              "GB-Mo"),
    # EKS extended support: usage type AmazonEKS-Hours:extendedSupport (as in Cost and Usage Reports);
    # Infracost eks_cluster.go still sets $0.60 by hand ("until AWS provides the price")
    "eks_extended_support_cluster_hour": Query("AmazonEKS", "Compute", r"{code}AmazonEKS-Hours:extendedSupport",
                                               "Hours"),
    # Infracost data_transfer.go intra-region: transferType "IntraRegion", usage type DataTransfer-Regional-Bytes
    "inter_az_gb": Query("AWSDataTransfer", "Data Transfer", r"{code}DataTransfer-Regional-Bytes", "GB",
                         {"transferType": "IntraRegion"}, scope="from"),
    "ebs_gp2_gb_month": Query("AmazonEC2", "Storage", r"{code}EBS:VolumeUsage\.gp2", "GB-Mo",
                              {"volumeApiName": "gp2"}),
}


# Where each query's price-list unit (and, for scaled tables, that the price is per single unit) comes from.
# "recorded": a real price-list product in tests/fixtures/pricelist/ (README.md names repository and commit).
# "rule table": a public price-list matcher's "expected On-Demand unit" per product (a rule table for four
# standard architectures, resolved against price-list data; the code index does not name its repository).
# "unverified": no recording or public source names the unit; the refresh of that table fails loudly if wrong.
_REC_EC2 = "recorded: lyft/awspricing tests/data/ec2_offer.py"
_RULES = "rule table"
UNIT_SOURCE: dict[str, str] = {
    "ec2_instance_hour": f"{_REC_EC2} c4.large 4C7N4APU9GEUZ6H6 'Hrs'",
    "ebs_gp3_gb_month": "recorded: botocore pricing examples-1.json EBS piops 'GB-Mo'; gp2 4MB6SVGV7JKWFBUJ 'GB-Mo'",
    "ebs_gp2_gb_month": f"{_REC_EC2} (version with NAT/IP/ELB products) APS3-EBS:VolumeUsage.gp2 'GB-Mo'",
    "public_ipv4_hour": f"{_REC_EC2} Elastic IP product NDET67BXTNJGSGN2 'Hrs' (the PublicIPv4 product: unverified)",
    "data_transfer_out_gb": f"{_REC_EC2} AWSDataTransfer 25KK9VY72V4RDJBD 'GB'",
    "inter_az_gb": f"{_REC_EC2} AWSDataTransfer 25KK9VY72V4RDJBD 'GB' (same service and unit)",
    "nat_gateway_hour": "unverified (NAT hours product not recorded; EC2 hourly products are 'Hrs')",
    "nat_gateway_gb": f"{_REC_EC2} NAT Gateway 9F25CQRR8AA58QZS (Prvd-Bytes sibling) 'GB'",
    "alb_hour": f"{_REC_EC2} Load Balancer-Application DJ56KTT4RXZCM5AC 'Hrs'; {_RULES} 'Hrs'",
    "alb_lcu_hour": f"{_RULES}: Load Balancer-Application LCUUsage 'LCU-Hrs'",
    "nlb_hour": f"{_RULES}: Load Balancer-Network LoadBalancerUsage 'Hrs'",
    "nlb_nlcu_hour": f"{_RULES}: Load Balancer-Network LCUUsage 'LCU-Hrs'",
    "rds_postgres_instance_hour": f"{_RULES}: Database Instance InstanceUsage 'Hrs'",
    "rds_gp3_gb_month": f"{_RULES}: Database Storage 'GB-Mo' (Aurora storage; gp3 itself unverified)",
    "elasticache_node_hour": f"{_RULES}: Cache Instance NodeUsage 'Hrs'",
    "elasticache_valkey_node_hour": f"{_RULES}: Cache Instance NodeUsage 'Hrs' (Redis; Valkey unverified)",
    "eks_cluster_hour": f"{_RULES}: AmazonEKS Compute AmazonEKS-Hours:perCluster 'Hours' (not 'Hrs')",
    "eks_extended_support_cluster_hour": f"{_RULES}: perCluster 'Hours'; extendedSupport assumed the same (unverified)",
    "cloudfront_gb_out": "unverified: 'GB' (Infracost prices it per GB, UnitMultiplier 1)",
    "cloudfront_origin_gb": "unverified: 'GB' (Infracost prices it per GB; golden 1,234 GB = $24.68)",
    "cloudfront_https_requests_10k": "Infracost cloudfront_distribution.go: UnitMultiplier 10000 on '10k requests' "
                                     "(a per-request price); the unit string 'Requests': unverified",
    "s3_standard_gb_month": f"{_RULES}: Storage TimedStorage-ByteHrs 'GB-Mo'",
    "s3_put_requests_1k": f"{_RULES}: API Request Requests-Tier1 'Requests' (per request: x1000)",
    "s3_get_requests_1k": f"{_RULES}: API Request Requests-Tier2 'Requests' (per request: x1000)",
    "cloudwatch_alarm_metric_month": "a public price-filter test: Alarm, AlarmType Standard, Unit 'Alarms'",
    "cloudwatch_alarm_high_res_metric_month": "unverified: 'Alarms' as the standard alarm's",
    "cloudwatch_logs_ingest_gb": "unverified: 'GB' (Infracost: per GB, UnitMultiplier 1)",
    "cloudwatch_logs_storage_gb_month": f"{_RULES}: TimedStorage-ByteHrs products are 'GB-Mo' (S3, ECR, DynamoDB)",
    "cloudwatch_metric_month": "unverified: 'Metrics'",
    "cloudwatch_api_requests_1k": "unverified: 'Requests' (Infracost UnitMultiplier 1000: a per-request price)",
    "secretsmanager_secret_month": "unverified: 'Secrets'",
    "secretsmanager_api_calls_10k": "unverified: 'API Requests' (Infracost UnitMultiplier 10000: per request)",
    "kms_key_month": "unverified: 'Keys'",
    "vpc_interface_endpoint_hour": "unverified: 'Hrs'",
    "waf_web_acl_month": "unverified: 'Month'",
    "waf_rule_month": "unverified: 'Month'",
    "waf_requests_1m": "unverified: 'Requests' (Infracost UnitMultiplier 1000000: a per-request price)",
    "ec2_cpu_credit_vcpu_hour": "unverified: 'vCPU-Hours'",
    "rds_cpu_credit_vcpu_hour": "unverified: 'vCPU-Hours'",
    "elasticache_backup_gb_month": "unverified: 'GB-Mo'",
}


class RefreshError(Exception):
    """A table that cannot be refreshed truthfully; the message names table, filters and candidates."""


@dataclass(frozen=True)
class Product:
    """One price-list product with its on-demand terms, in either source's shape."""

    sku: str
    family: str
    attributes: dict[str, str]
    on_demand: dict[str, Any]  # offerTermCode-key -> term (priceDimensions ...)

    @classmethod
    def from_api(cls, item: dict[str, Any]) -> Product:
        """A get_products PriceList entry (`product` + `terms`)."""
        product = item.get("product", {})
        return cls(str(product.get("sku", "")), str(product.get("productFamily", "")),
                   dict(product.get("attributes", {})), dict((item.get("terms") or {}).get("OnDemand") or {}))

    def describe(self) -> str:
        a = self.attributes
        return (f"sku {self.sku} usagetype {a.get('usagetype', '?')!r} family {self.family!r} "
                f"location {a.get('location') or a.get('fromLocation') or '?'!r} prices {self.prices()}")

    def prices(self) -> list[str]:
        return [f"{d.get('beginRange', '?')}-{d.get('endRange', '?')} {d.get('unit', '?')} "
                f"{(d.get('pricePerUnit') or {}).get('USD', '?')}"
                for term in self.on_demand.values() for d in (term.get("priceDimensions") or {}).values()]


@dataclass(frozen=True)
class Want:
    """One price to find: a table (and type) in a region, with the exact filters and the full-match regex."""

    table: str
    key: str | None
    service: str
    region: str | None  # None: a global service (CloudFront); the bulk source reads its global offer file
    exact: tuple[tuple[str, str], ...]  # attribute -> value; "productFamily" is the product's family
    usagetype: str
    when_present: tuple[tuple[str, str], ...] = ()  # attribute -> value where the product has the attribute
    # (attribute, value, fallback attribute, fallback value): the first where the product has it, else the
    # fallback (AWSDataTransfer: fromRegionCode, else fromLocation as Infracost filters it)
    either: tuple[str, str, str, str] | None = None

    def matches(self, product: Product) -> bool:
        return self.test(product.family, product.attributes)

    def test(self, family: str, attributes: dict[str, Any]) -> bool:
        """Every exact filter equal, the usage type matched in full."""
        for k, v in self.exact:
            if (family if k == "productFamily" else attributes.get(k)) != v:
                return False
        for k, v in self.when_present:
            if k in attributes and attributes[k] != v:
                return False
        if self.either:
            k, v, k2, v2 = self.either
            if (attributes.get(k) != v) if k in attributes else (attributes.get(k2) != v2):
                return False
        return _compiled(self.usagetype).fullmatch(str(attributes.get("usagetype", ""))) is not None

    def describe(self) -> str:
        filters = ", ".join([f"{k}={v!r}" for k, v in self.exact] + [f"{k}={v!r} if present" for k, v in self.when_present]
                            + ([f"{self.either[0]}={self.either[1]!r} (else {self.either[2]}={self.either[3]!r})"]
                               if self.either else []))
        return f"{self.service} [{filters}] usagetype ~ ^{self.usagetype}$"


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def want(table: str, query: Query, region: str, key: str | None = None) -> Want:
    """The filters of `query` for `region` (and `key`), as Infracost builds them."""
    exact: dict[str, str] = {}
    family = query.metal_family if query.metal_family and (key or "").endswith(".metal") else query.family
    if family:
        exact["productFamily"] = family
    exact.update(query.filters)
    prefix, location = edge(region)
    either: tuple[str, str, str, str] | None = None
    if query.scope == "region":
        exact["regionCode"] = region
        exact["locationType"] = "AWS Region"
    elif query.scope == "from":
        either = ("fromRegionCode", region, "fromLocation", REGION_NAME.get(region, region))
    elif query.scope == "edge":
        exact["fromLocation" if "transferType" in query.filters else "location"] = location
    if query.by:
        if not key:
            raise ValueError(f"{table}: a per-type table needs a key")
        if query.by != "usagetype":
            exact[query.by] = key
    pattern = query.usagetype.replace(_P, region_prefix(region)).replace("{edge}", prefix)
    pattern = pattern.replace("{key}", re.escape(key or "")).replace("{region}", re.escape(region))
    return Want(table, key, query.service, None if query.scope == "edge" else region, tuple(exact.items()), pattern,
                tuple(query.when_present.items()), either)


class Source(Protocol):
    def products(self, service: str, region: str | None, wants: list[Want]) -> dict[Want, list[Product]]:
        """Every product of `service` in `region` matching each want (all candidates, not the first)."""
        ...


# ---------------------------------------------------------------------------
# The Price List Query API (credentials)


class ApiSource:
    """boto3 `pricing` get_products: one query per want, TERM_MATCH on the exact filters, every page."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def pages(self, service: str, filters: Iterable[tuple[str, str]]) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {"ServiceCode": service, "FormatVersion": "aws_v1", "MaxResults": 100,
                                  "Filters": [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in filters]}
        while True:
            page = self.client.get_products(**kwargs)
            for item in page.get("PriceList", []):
                yield json.loads(item) if isinstance(item, str) else item
            if not page.get("NextToken"):
                return
            kwargs = {**kwargs, "NextToken": page["NextToken"]}

    def products(self, service: str, region: str | None, wants: list[Want]) -> dict[Want, list[Product]]:
        out: dict[Want, list[Product]] = {}
        for w in wants:
            found = (Product.from_api(item) for item in self.pages(service, w.exact))
            out[w] = [p for p in found if w.matches(p)]  # TERM_MATCH is loose (case); the match is exact
        return out


# ---------------------------------------------------------------------------
# The public bulk offer files (no credentials)

PRICE_LIST_HOST = "https://pricing.us-east-1.amazonaws.com"  # AWS Billing, "Getting price list files manually"
OFFER_INDEX = "/offers/v1.0/aws/index.json"

Opener = Callable[[str], IO[bytes]]


def _urlopen(url: str) -> IO[bytes]:
    return urllib.request.urlopen(url, timeout=120)  # noqa: S310 - a fixed https host


class WantIndex:
    """Wants by productFamily and per-type key, so a product of a multi-gigabyte offer file is tested
    against the few wants it could match, not all of them (the same `Want.matches` decides)."""

    def __init__(self, wants: list[Want]) -> None:
        self.by: dict[tuple[str | None, str | None, str | None], list[Want]] = {}
        self.keys: dict[str | None, set[str]] = {}
        for w in wants:
            exact = dict(w.exact)
            family = exact.get("productFamily")
            attr = next((k for k in ("instanceType",) if k in exact), None)
            self.by.setdefault((family, attr, exact.get(attr) if attr else None), []).append(w)
            if attr:
                self.keys.setdefault(family, set()).add(attr)

    def match(self, family: str, attributes: dict[str, Any]) -> list[Want]:
        cands: list[Want] = []
        for fam in (family, None):
            cands += self.by.get((fam, None, None), [])
            for attr in self.keys.get(fam, ()):
                cands += self.by.get((fam, attr, str(attributes.get(attr))), [])
        return [w for w in cands if w.test(family, attributes)] if cands else []


_VERSIONED = re.compile(r"/\d{14}/")  # an offer URL naming its publication (/AmazonEC2/20161213014831/...)


class BulkSource:
    """Offer files: index -> region index -> region offer, each downloaded once to `cache`.

    A versioned offer URL names one publication, so a cached copy is that publication and is reused
    across runs. An unversioned one (a global service's `currentVersionUrl`, .../current/index.json)
    changes content under the same name, so it is downloaded afresh once per BulkSource (per run)
    and never reused from an earlier run: a reused file would be stamped "fetched today".
    Without `cache` the downloads go to a temporary directory that `close()` removes."""

    def __init__(self, opener: Opener | None = None, base: str = PRICE_LIST_HOST, cache: Path | None = None) -> None:
        self.open, self.base = opener or _urlopen, base
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if cache is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="scaleladder-offers-")
            cache = Path(self._tmp.name)
        self.cache = cache
        self._json: dict[str, Any] = {}
        self._fresh: set[str] = set()  # unversioned URLs downloaded by this source

    def close(self) -> None:
        """Remove the temporary download directory (a kept `--cache DIR` stays)."""
        if self._tmp is not None:
            self._tmp.cleanup()

    def _get_json(self, path: str) -> Any:
        if path not in self._json:
            with self.open(self.base + path) as f:
                self._json[path] = json.load(f)
        return self._json[path]

    def offer_url(self, service: str, region: str | None) -> str:
        """The current offer file of `service` in `region` (global services: the whole offer)."""
        offers = self._get_json(OFFER_INDEX).get("offers", {})
        if service not in offers:
            raise RefreshError(f"bulk offer index has no service {service!r}")
        if region is None:
            return str(offers[service]["currentVersionUrl"])
        regions = self._get_json(offers[service]["currentRegionIndexUrl"]).get("regions", {})
        if region not in regions:
            raise RefreshError(f"{service}: the region index has no region {region!r}")
        return str(regions[region]["currentVersionUrl"])

    def _file(self, url: str) -> Path:
        """Download once, in chunks (an EC2 regional offer is ~450 MB; it never sits in memory)."""
        target = self.cache / (re.sub(r"[^A-Za-z0-9.-]+", "_", url.strip("/")) or "offer.json")
        versioned = _VERSIONED.search(url) is not None
        if not target.exists() or (not versioned and url not in self._fresh):
            partial = target.with_suffix(".part")
            with self.open(self.base + url) as src, partial.open("wb") as dst:
                shutil.copyfileobj(src, dst, length=1 << 20)
            partial.replace(target)
            self._fresh.add(url)
        return target

    def products(self, service: str, region: str | None, wants: list[Want]) -> dict[Want, list[Product]]:
        import ijson  # pinned in requirements.txt; the yajl2 C backend streams gigabytes

        path = self._file(self.offer_url(service, region))
        index = WantIndex(wants)
        hits: dict[str, tuple[dict[str, Any], list[Want]]] = {}
        with path.open("rb") as f:
            for sku, product in ijson.kvitems(f, "products"):
                matched = index.match(str(product.get("productFamily", "")), product.get("attributes") or {})
                if matched:
                    hits[str(sku)] = (product, matched)
        terms: dict[str, dict[str, Any]] = {}
        if hits:
            with path.open("rb") as f:
                for sku, term_set in ijson.kvitems(f, "terms.OnDemand"):
                    if sku in hits:
                        terms[str(sku)] = term_set
        out: dict[Want, list[Product]] = {w: [] for w in wants}
        for sku, (product, matched) in hits.items():
            p = Product(sku, str(product.get("productFamily", "")),
                        {k: str(v) for k, v in (product.get("attributes") or {}).items()}, terms.get(sku, {}))
            for w in matched:
                out[w].append(p)
        return out


# ---------------------------------------------------------------------------
# From products to catalog values


def _num(text: Any, what: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise RefreshError(f"{what}: not a number: {text!r}") from None


def tiers(product: Product, query: Query, where: str) -> list[Tier]:
    """The product's on-demand tiers in the catalog's unit, checked: one term, the table's unit,
    contiguous ranges from 0 to Inf. beginRange/endRange become the shared format's `upto`."""
    if len(product.on_demand) != 1:
        raise RefreshError(f"{where}: {len(product.on_demand)} on-demand terms, expected 1: {product.describe()}")
    term = next(iter(product.on_demand.values()))
    dims = list((term.get("priceDimensions") or {}).values())
    if not dims:
        raise RefreshError(f"{where}: no price dimensions: {product.describe()}")
    wrong = sorted({str(d.get("unit")) for d in dims} - {query.unit})
    if wrong:
        raise RefreshError(f"{where}: unit {', '.join(wrong)} where the catalog table is priced per {query.unit!r} "
                           f"(x{query.scale:g}): {product.describe()}")
    dims.sort(key=lambda d: _num(d.get("beginRange", "0") or "0", where))
    out: list[Tier] = []
    expect = 0.0
    for i, d in enumerate(dims):
        begin = _num(d.get("beginRange", "0") or "0", where)
        end_text = str(d.get("endRange", "Inf") or "Inf")
        end = None if end_text == "Inf" else _num(end_text, where)
        if begin != expect or (end is None and i != len(dims) - 1) or (end is not None and end <= begin):
            raise RefreshError(f"{where}: price ranges are not contiguous from 0 to Inf: {product.describe()}")
        usd = _num((d.get("pricePerUnit") or {}).get("USD"), where)
        out.append((None if end is None else round(end / query.scale, 6), round(usd * query.scale, 10)))
        expect = end if end is not None else expect
    if out[-1][0] is not None:
        raise RefreshError(f"{where}: the last price range ends at {out[-1][0]}, not Inf: {product.describe()}")
    return out


def value(table: str, query: Query, found: list[Product], w: Want, tiered: bool, free: float | None = None) -> Any:
    """The catalog value of one price: exactly one product, else a loud error.

    `free` is the table's `free_per_month`: a price list that also carries that allowance as a $0
    first tier would count it twice, so a flat table skips a $0 tier that ends exactly there, and
    anything else with both is an error."""
    where = f"{table}{':' + w.key if w.key else ''} in {w.region or 'every region (global)'}"
    if len(found) != 1:
        listed = "".join(f"\n    - {p.describe()}" for p in found) or " none"
        hint = (f" (no usage-type prefix is known for {w.region}: add it to USAGE_PREFIX in ladder/prices_refresh.py)"
                if w.region and w.region not in USAGE_PREFIX and not found else "")
        raise RefreshError(f"{where}: {len(found)} products match {w.describe()}, expected exactly 1{hint}; "
                           f"candidates:{listed}")
    t = tiers(found[0], query, where)
    if free is not None and t[0][1] == 0:
        if tiered or t[0][0] != free or len(t) == 1:
            raise RefreshError(f"{where}: the price list's first tier is free ({t[0]}) and the catalog also declares "
                               f"free_per_month: {free:g}; one of them would count the allowance twice")
        t = t[1:]
    if tiered:
        return [{"upto": (int(u) if u is not None and float(u).is_integer() else u), "usd": usd} for u, usd in t]
    if len(t) > 1 and not query.first_tier:
        raise RefreshError(f"{where}: the product has {len(t)} price tiers {t} but the catalog table is flat; "
                           "declare it `tiered: true` in prices.yaml (and price it by tiers in ladder/cost.py)")
    if t[0][1] == 0:
        raise RefreshError(f"{where}: the first price tier is free {t}; a flat table cannot hold it "
                           "(declare the table tiered, or a free_per_month allowance)")
    return t[0][1]


def refresh_region(source: Source, region: str, current: dict[str, Any], today: str,
                   tables: dict[str, dict[str, Any]], add: dict[str, list[str]] | None = None,
                   source_name: str = "AWS price list", elsewhere: dict[str, set[str]] | None = None,
                   partial: bool = False) -> dict[str, Any]:
    """The region's refreshed tables; raises RefreshError listing every table that could not be refreshed.

    `partial` (`--table`): `tables` is a subset; the others keep their values, the region keeps its
    `retrieved` date (the oldest any of its tables holds for) and `source` gains a line naming the
    refreshed tables and today's date, so no unrefreshed price is dated today.

    `tables` is the catalog's `tables:` section (the tables to refresh and whether each is tiered);
    `add` widens per-type tables by the given types. `elsewhere`: the types other regions list; for
    a table the region's `unpriced_types` names, they are tried too, and the ones the price list
    has no product for stay unlisted (the entry and its reason stay until every type is priced)."""
    add = add or {}
    unpriced: dict[str, str] = dict(current.get("unpriced_types") or {})
    optional: set[tuple[str, str]] = set()
    errors: list[str] = []
    missing = [t for t in tables if t not in QUERIES]
    errors += [f"{t} in {region}: no Price List query for this table (add one to QUERIES in "
               "ladder/prices_refresh.py)" for t in missing]
    wants: dict[str, list[Want]] = {}
    plan: list[tuple[str, Query, Want]] = []
    for table in tables:
        if table in missing:
            continue
        query = QUERIES[table]
        keys: list[str | None] = [None]
        if query.by:
            required = set(current.get(table) or {}) | set(add.get(table, []))
            extra = (elsewhere or {}).get(table, set()) - required if table in unpriced else set()
            optional |= {(table, k) for k in extra}
            keys = list(sorted(required | extra))
            if not keys:
                errors.append(f"{table} in {region}: no types to price (the region lists none); name them with "
                              f"--add-type {table}:TYPE")
                continue
        for key in keys:
            w = want(table, query, region, key)
            plan.append((table, query, w))
            wants.setdefault(query.service, []).append(w)
    found: dict[Want, list[Product]] = {}
    for service, ws in wants.items():
        for scope in sorted({w.region or "" for w in ws}):
            group = [w for w in ws if (w.region or "") == scope]
            found.update(source.products(service, scope or None, group))
    out: dict[str, Any] = {}
    for table, query, w in plan:
        if query.by:
            out.setdefault(table, {})  # every type may be optional and absent: the table is then empty here
        if (table, w.key) in optional and not found.get(w):
            continue  # not in this region's price list: stays unpriced, its reason kept
        try:
            free = tables[table].get("free_per_month")
            v = value(table, query, found.get(w, []), w, bool(tables[table].get("tiered")),
                      None if free is None else float(free))
        except RefreshError as err:
            errors.append(str(err))
            continue
        if query.by:
            out.setdefault(table, {})[w.key] = v
        else:
            out[table] = v
    if errors:
        raise RefreshError("\n".join(errors))
    src = (f"{source_name}, on-demand list prices fetched {today} by `python -m ladder prices refresh`: "
           "one product per price (Infracost's filters, full-match usage types), units checked, tiers kept")
    for table in list(unpriced):
        if table in out and all(k in out[table] for k in (elsewhere or {}).get(table, set())):
            del unpriced[table]  # every type the other regions list is priced here now
    if partial:
        block = {k: (out[k] if k in tables else v) for k, v in current.items() if k != "unpriced_types"}
        block["source"] = (f"{str(current.get('source', '')).rstrip()} Refreshed {today} from the {source_name} by "
                           f"`python -m ladder prices refresh --table`: {', '.join(tables)} (the region's retrieved "
                           "date is that of its other tables).").strip()
        block.update({t: out[t] for t in tables if t not in block})
        if unpriced:
            block["unpriced_types"] = unpriced
        return block
    kept = {k: v for k, v in current.items() if k not in tables and k not in REGION_META and k != "unpriced_types"}
    if unpriced:
        kept["unpriced_types"] = unpriced
    return {"retrieved": today, "source": src, **kept, **{t: out[t] for t in tables}}


# ---------------------------------------------------------------------------
# Writing the catalog


def _scalar(v: Any) -> str:
    if isinstance(v, dt.date):
        return json.dumps(v.isoformat())
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v.is_integer() and abs(v) >= 1:
            return str(int(v))
        text = repr(v)  # shortest exact form; YAML 1.1 reads "5e-06" as a string, so the mantissa gets a dot
        mantissa, e, exp = text.partition("e")
        return f"{mantissa if '.' in mantissa else mantissa + '.0'}{e}{exp}" if e else text
    return json.dumps(str(v))


def dump_regions(regions: dict[str, dict[str, Any]]) -> str:
    """The `regions:` section: per-type tables as maps, tier lists one flow mapping a line (shared format)."""
    lines = ["regions:"]
    for region, tables in regions.items():
        lines.append(f"  {region}:")
        for key, v in tables.items():
            if key == "source":
                lines.append("    source: >-")
                lines += [f"      {line}" for line in _wrap(str(v), 94)]
            elif isinstance(v, dict) and not v:
                lines.append(f"    {key}: {{}}")
            elif isinstance(v, dict):
                lines.append(f"    {key}:")
                lines += [f"      {k}: {_scalar(x)}" for k, x in v.items()]
            elif isinstance(v, list):
                lines.append(f"    {key}:")
                lines += ["      - {" + ", ".join(f"{k}: {_scalar(x)}" for k, x in tier.items()) + "}" for tier in v]
            else:
                lines.append(f"    {key}: {_scalar(v)}")
    return "\n".join(lines) + "\n"


def _wrap(text: str, width: int) -> list[str]:
    out, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return out + ([line] if line else [])


def write(regions: dict[str, Any], path: Path = CATALOG_PATH) -> None:
    """Replace the `regions:` section of the catalog file, keeping everything above it verbatim."""
    text = path.read_text()
    head = text[: text.index("\nregions:") + 1] if "\nregions:" in text else text
    new = head + dump_regions(regions)
    if yaml.safe_load(new)["regions"] != json.loads(json.dumps(regions, default=str)):
        raise RefreshError("internal: the written regions do not read back as refreshed; catalog left as it was")
    tmp = path.with_name(path.name + ".tmp")  # same directory, so os.replace is an atomic rename
    try:
        with tmp.open("w") as f:
            f.write(new)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # an interrupted or failed write leaves the old catalog whole
    finally:
        tmp.unlink(missing_ok=True)
    catalog.cache_clear()


# ---------------------------------------------------------------------------
# The command


# The keys a per-type table takes: instance types (by instanceType), or the family inside the usage type
# (CPU credits: CPUCredits:t3 / CPUCredits:db.t3, as the catalog keys them), with an example each.
KEY_FORMS: dict[str, tuple[str, str]] = {
    "instanceType": (r"[a-z0-9-]+(\.[a-z0-9-]+)+", "an instance type (e.g. m7g.large, m7i-flex.large)"),
    "ec2_cpu_credit_vcpu_hour": (r"[a-z][a-z0-9-]*", "an EC2 burstable family (e.g. t4g)"),
    "rds_cpu_credit_vcpu_hour": (r"db\.[a-z][a-z0-9-]*", "an RDS burstable class family (e.g. db.t4g)"),
}


def parse_add(values: list[str] | None, tables: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """`--add-type TABLE:TYPE[,TYPE...]` -> {table: [types]}; only per-type tables take types, each its form."""
    out: dict[str, list[str]] = {}
    per_type = sorted(t for t, q in QUERIES.items() if q.by and t in tables)
    for item in values or []:
        table, _, types = item.partition(":")
        if table not in per_type or not types:
            raise SystemExit(f"error: --add-type {item!r}: expected TABLE:TYPE[,TYPE...] with TABLE one of "
                             f"{', '.join(per_type)}")
        pattern, what = KEY_FORMS.get(table) or KEY_FORMS[str(QUERIES[table].by)]
        for t in types.split(","):
            if not re.fullmatch(pattern, t.strip()):
                raise SystemExit(f"error: --add-type {item!r}: {t!r} is not {what}")
            out.setdefault(table, []).append(t.strip())
    return out


def parse_tables(values: list[str] | None, tables: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """`--table NAME` (repeatable) -> the subset of the catalog's tables to refresh (all when not given)."""
    if not values:
        return tables
    unknown = [t for t in values if t not in tables]
    if unknown:
        raise SystemExit(f"error: --table {', '.join(unknown)}: not a catalog table; one of {', '.join(tables)}")
    return {t: tables[t] for t in tables if t in values}


def make_source(args: argparse.Namespace) -> tuple[Source, str]:
    if args.source == "api":
        import boto3

        if boto3.Session().get_credentials() is None:
            raise RefreshError("no AWS credentials found (environment, ~/.aws, SSO or instance role); the Price "
                               "List Query API needs an IAM identity allowed pricing:GetProducts. `--source bulk` "
                               "(the default) needs none.")
        return ApiSource(boto3.client("pricing", region_name="us-east-1")), \
            "AWS Price List Query API (pricing get_products)"
    cache = Path(args.cache) if args.cache else None
    if cache:
        cache.mkdir(parents=True, exist_ok=True)
    return BulkSource(cache=cache), "AWS Price List Bulk API offer files (public, current version)"


def cmd_prices(args: argparse.Namespace, source: Source | None = None) -> int:
    path = Path(args.catalog)
    data = yaml.safe_load(path.read_text())
    tables: dict[str, dict[str, Any]] = data.get("tables", {})
    add = parse_add(args.add_type, tables)
    chosen = parse_tables(getattr(args, "table", None), tables)
    partial = chosen is not tables
    regions = args.region or list(data["regions"])
    if partial and (set(add) - set(chosen) or set(regions) - set(data["regions"])):
        print("error: --table refreshes tables of catalog regions only, and --add-type must name one of those tables "
              f"(chosen: {', '.join(chosen)}); a new region needs a full refresh", file=sys.stderr)
        return 1
    if add and set(regions) != set(data["regions"]) | set(regions):
        print("error: --add-type refreshes every catalog region (per-type tables list the same types in every "
              f"region); drop --region or name all of: {', '.join(data['regions'])}", file=sys.stderr)
        return 1
    base = data["regions"][next(iter(data["regions"]))]
    today = dt.date.today().isoformat()
    owned: BulkSource | None = None
    try:
        if source is None:
            source, name = make_source(args)
            owned = source if isinstance(source, BulkSource) else None
        else:
            name = "AWS price list"
        new: dict[str, Any] = {}
        failed: list[str] = []
        for region in regions:
            current = data["regions"].get(region) or {k: v for k, v in base.items() if k not in REGION_META}
            elsewhere = {t: {k for r, block in data["regions"].items() if r != region
                             for k in (block.get(t) or {}) if isinstance(block.get(t), dict)}
                         for t, q in QUERIES.items() if q.by}
            try:
                new[region] = refresh_region(source, region, current, today, chosen, add, name, elsewhere, partial)
                print(f"{region}: {'the' if partial else 'all'} {len(chosen)} tables priced from the price list")
            except RefreshError as err:
                failed.append(f"{region}:\n  " + str(err).replace("\n", "\n  "))
    except RefreshError as err:
        print(f"error: {err}\nThe catalog is unchanged.", file=sys.stderr)
        return 1
    except Exception as err:  # network, botocore ClientError, a broken offer file ...: one line, no traceback
        print(f"error: price list: {type(err).__name__}: {err}\nThe catalog is unchanged.", file=sys.stderr)
        return 1
    finally:
        if owned is not None:
            owned.close()  # the temporary downloads (over 1.5 GB for three regions); a --cache DIR stays
    if failed:
        print("error: prices refresh failed; the catalog is unchanged (no region is stamped):\n" + "\n".join(failed),
              file=sys.stderr)
        return 1
    for region, tables_new in new.items():
        for line in changes(data["regions"].get(region) or {}, tables_new, list(chosen)):
            print(f"  {region} {line}")
    data["regions"].update(new)
    try:
        write(data["regions"], path)
    except RefreshError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for table, types in add.items():
        print(f"added to {table}: {', '.join(types)}")
        for line in missing_facts(table, types):
            print(f"note: {line}", file=sys.stderr)
    print(f"wrote {path}")
    return 0


def missing_facts(table: str, types: list[str]) -> list[str]:
    """Added types the non-price facts do not know yet (the plan sizes from them), to say so."""
    from . import aws_facts

    facts = {"rds_postgres_instance_hour": ("RDS_CLASS_MEMORY_GIB", "max_connections"),
             "elasticache_node_hour": ("ELASTICACHE_NODE_SPECS", "node sizing"),
             "elasticache_valkey_node_hour": ("ELASTICACHE_NODE_SPECS", "node sizing")}
    if table not in facts:
        return []
    name, use = facts[table]
    known = getattr(aws_facts, name, {})
    return [f"{t} is priced now but ladder/aws_facts.py {name} has no entry for it ({use}); add one before a "
            "stack uses it" for t in types if t not in known]


def changes(old: dict[str, Any], new: dict[str, Any], tables: list[str]) -> list[str]:
    """What a refresh changed, one line per price (added, removed, new value), for the reviewer."""
    out: list[str] = []
    for table in tables:
        a, b = old.get(table), new.get(table)
        if isinstance(a, dict) or isinstance(b, dict):
            a, b = a if isinstance(a, dict) else {}, b if isinstance(b, dict) else {}
            out += [f"{table}:{k}: {a.get(k, 'added')} -> {b.get(k, 'removed')}"
                    for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            out.append(f"{table}: {a} -> {b}")
    return out


def _prices_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["refresh"], help="refresh: rebuild the catalog's regions from the AWS price list")
    p.add_argument("--source", choices=["bulk", "api"], default="bulk",
                   help="bulk: public offer files, no credentials (default); api: Price List Query API, credentials")
    p.add_argument("--region", action="append", help="region to refresh (repeatable; default: every catalog region)")
    p.add_argument("--add-type", action="append", metavar="TABLE:TYPE[,TYPE...]",
                   help="also price these types (repeatable), e.g. ec2_instance_hour:m7g.large,m7g.xlarge; "
                        "the config model accepts what the catalog lists")
    p.add_argument("--table", action="append", metavar="NAME",
                   help="refresh only this catalog table (repeatable; default: every table); the others keep their "
                        "values and the region its retrieved date, its source names the refreshed tables and the day")
    p.add_argument("--cache", help="directory to keep downloaded offer files in (bulk; versioned offers are reused, "
                                   "a global service's current offer is fetched again each run; default: a temp "
                                   "dir, removed afterwards)")
    p.add_argument("--catalog", default=str(CATALOG_PATH), help="catalog file to rewrite")


COMMANDS["prices"] = ("price catalog: `prices refresh` rebuilds it from the AWS price list (bulk offer files or "
                      "the Query API)", _prices_args, cmd_prices)
