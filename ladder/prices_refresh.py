"""`python -m ladder prices refresh`: rebuild the price catalog's regions from the AWS Price
List API (boto3 `pricing` client, us-east-1 endpoint, `get_products`).

Every catalog table has a query below: a service code, attribute filters (TERM_MATCH) and a
pattern the product's `usagetype` must match; per-type tables (instance types, DB classes,
node types) are queried once per type the catalog already lists, so a refresh updates
prices without widening what the config model accepts. A table no product matches keeps
its previous value and the region's `source` says so. Only the `regions:` section of
prices.yaml is rewritten; its header, `tables` and `free` stay as written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .cli import COMMANDS
from .prices import CATALOG_PATH, REGION_META, catalog


@dataclass(frozen=True)
class Query:
    service: str
    usagetype: str  # regex searched in the product's usagetype; "{edge}" = the region's CloudFront edge prefix
    filters: dict[str, str] = field(default_factory=dict)
    by: str | None = None  # attribute holding the per-type key (instanceType)
    scale: float = 1.0  # Price List unit -> catalog unit (per request -> per 10k requests ...)
    regional: bool = True  # False: a global service (CloudFront) without regionCode


_EC2 = {"operatingSystem": "Linux", "tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used",
        "licenseModel": "No License required"}

QUERIES: dict[str, Query] = {
    "ec2_instance_hour": Query("AmazonEC2", r"BoxUsage:", _EC2, by="instanceType"),
    "ebs_gp3_gb_month": Query("AmazonEC2", r"EBS:VolumeUsage\.gp3$", {"volumeApiName": "gp3"}),
    "public_ipv4_hour": Query("AmazonVPC", r"PublicIPv4:InUseAddress$"),
    "data_transfer_out_gb": Query("AWSDataTransfer", r"DataTransfer-Out-Bytes$",
                                  {"transferType": "AWS Outbound", "toLocation": "External"}),
    "nat_gateway_hour": Query("AmazonEC2", r"NatGateway-Hours$", {"productFamily": "NAT Gateway"}),
    "nat_gateway_gb": Query("AmazonEC2", r"NatGateway-Bytes$", {"productFamily": "NAT Gateway"}),
    "alb_hour": Query("AWSELB", r"LoadBalancerUsage$", {"productFamily": "Load Balancer-Application"}),
    "alb_lcu_hour": Query("AWSELB", r"LCUUsage$", {"productFamily": "Load Balancer-Application"}),
    "nlb_hour": Query("AWSELB", r"LoadBalancerUsage$", {"productFamily": "Load Balancer-Network"}),
    "nlb_nlcu_hour": Query("AWSELB", r"LCUUsage$", {"productFamily": "Load Balancer-Network"}),
    "rds_postgres_instance_hour": Query("AmazonRDS", r"InstanceUsage:",
                                        {"databaseEngine": "PostgreSQL", "deploymentOption": "Single-AZ"},
                                        by="instanceType"),
    "rds_gp3_gb_month": Query("AmazonRDS", r"(^|-)RDS:GP3-Storage$", {"productFamily": "Database Storage"}),
    "elasticache_node_hour": Query("AmazonElastiCache", r"NodeUsage:", {"cacheEngine": "Redis"}, by="instanceType"),
    "eks_cluster_hour": Query("AmazonEKS", r"AmazonEKS-Hours:perCluster$"),
    "cloudfront_gb_out": Query("AmazonCloudFront", r"^{edge}-DataTransfer-Out-Bytes$", regional=False),
    "cloudfront_https_requests_10k": Query("AmazonCloudFront", r"^{edge}-Requests-Tier2-HTTPS$", scale=1e4,
                                           regional=False),
    "s3_standard_gb_month": Query("AmazonS3", r"TimedStorage-ByteHrs$", {"volumeType": "Standard"}),
    "s3_put_requests_1k": Query("AmazonS3", r"Requests-Tier1$", scale=1e3),
    "s3_get_requests_1k": Query("AmazonS3", r"Requests-Tier2$", scale=1e3),
    "cloudwatch_alarm_metric_month": Query("AmazonCloudWatch", r"CW:AlarmMonitorUsage$"),
    "cloudwatch_alarm_high_res_metric_month": Query("AmazonCloudWatch", r"CW:HighResAlarmMonitorUsage$"),
    "cloudwatch_logs_ingest_gb": Query("AmazonCloudWatch", r"DataProcessing-Bytes$"),
    "secretsmanager_secret_month": Query("AWSSecretsManager", r"AWSSecretsManager-Secrets$"),
    "secretsmanager_api_calls_10k": Query("AWSSecretsManager", r"AWSSecretsManager-APIRequest$", scale=1e4),
    "kms_key_month": Query("awskms", r"KMS-Keys$"),
    "vpc_interface_endpoint_hour": Query("AmazonVPC", r"VpcEndpoint-Hours$"),
    # AWS WAF, as Infracost filters it (internal/resources/aws/wafv2_web_acl.go): Shield-protected
    # variants excluded.
    "waf_web_acl_month": Query("awswaf", r"^[A-Z0-9]*-(?!ShieldProtected-)WebACLV2$",
                               {"productFamily": "Web Application Firewall"}),
    "waf_rule_month": Query("awswaf", r"^[A-Z0-9]*-(?!ShieldProtected-)RuleV2$",
                            {"productFamily": "Web Application Firewall"}),
    "waf_requests_1m": Query("awswaf", r"^[A-Z0-9]*-(?!ShieldProtected-)RequestV2-Tier1$",
                             {"productFamily": "Web Application Firewall"}, scale=1e6),
}


def edge(region: str) -> str:
    """CloudFront's price-list edge prefix for viewers near `region`."""
    return "EU" if region.startswith("eu-") else "US"


def products(client: Any, service: str, filters: dict[str, str]) -> Iterator[dict[str, Any]]:
    kwargs: dict[str, Any] = {"ServiceCode": service, "FormatVersion": "aws_v1", "MaxResults": 100,
                              "Filters": [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in filters.items()]}
    while True:
        page = client.get_products(**kwargs)
        for item in page.get("PriceList", []):
            yield json.loads(item) if isinstance(item, str) else item
        if not page.get("NextToken"):
            return
        kwargs["NextToken"] = page["NextToken"]


def on_demand_usd(product: dict[str, Any]) -> float | None:
    """The product's on-demand USD price: the lowest tier that is not free."""
    tiers = [d for term in (product.get("terms", {}).get("OnDemand") or {}).values()
             for d in (term.get("priceDimensions") or {}).values()]
    priced = [(float(d.get("beginRange", 0) or 0), float(d["pricePerUnit"]["USD"])) for d in tiers
              if float(d.get("pricePerUnit", {}).get("USD", 0) or 0) > 0]
    return min(priced)[1] if priced else None


def fetch(client: Any, query: Query, region: str, key: str | None = None) -> float | None:
    filters = dict(query.filters)
    if query.regional:
        filters["regionCode"] = region
    if query.by and key:
        filters[query.by] = key
    pattern = re.compile(query.usagetype.replace("{edge}", edge(region)))
    for product in products(client, query.service, filters):
        if pattern.search(product.get("product", {}).get("attributes", {}).get("usagetype", "")):
            price = on_demand_usd(product)
            if price is not None:
                return round(price * query.scale, 6)
    return None


def refresh_region(client: Any, region: str, current: dict[str, Any], today: str,
                   tables: list[str] | None = None) -> tuple[dict[str, Any], list[str]]:
    """The region's new price tables (previous values where nothing matched) and what was kept."""
    out: dict[str, Any] = {}
    kept: list[str] = []
    for table, query in QUERIES.items():
        old = current.get(table)
        if tables is not None and table not in tables:
            out[table] = old
            continue
        if query.by:
            new = {key: fetch(client, query, region, key) for key in sorted(old or {})}
            kept += [f"{table}:{k}" for k, v in new.items() if v is None]
            out[table] = {k: (v if v is not None else (old or {})[k]) for k, v in new.items()}
        else:
            value = fetch(client, query, region)
            if value is None:
                kept.append(table)
            out[table] = value if value is not None else old
    source = "AWS Price List API (pricing get_products, on-demand, Linux, shared tenancy, Single-AZ)"
    if kept:
        source += f"; no matching product, kept from the previous catalog: {', '.join(kept)}"
    return {"retrieved": today, "source": source, **out}, kept


def write(regions: dict[str, Any], path: Path = CATALOG_PATH) -> None:
    """Replace the `regions:` section of the catalog file, keeping everything above it."""
    text = path.read_text()
    head = text[: text.index("\nregions:") + 1] if "\nregions:" in text else text
    body = yaml.safe_dump({"regions": regions}, sort_keys=False, width=100)
    path.write_text(head + body)
    catalog.cache_clear()


def cmd_prices(args: argparse.Namespace) -> int:
    import boto3

    if boto3.Session().get_credentials() is None:
        print("error: no AWS credentials found (environment, ~/.aws, SSO or instance role); the Price List API "
              "needs any IAM identity allowed pricing:GetProducts. The shipped catalog is unchanged.", file=sys.stderr)
        return 1
    data = yaml.safe_load(Path(args.catalog).read_text())
    regions = args.region or list(data["regions"])
    unknown = [r for r in regions if r not in data["regions"]]
    base = data["regions"][next(iter(data["regions"]))]
    client = boto3.client("pricing", region_name="us-east-1")
    today = dt.date.today().isoformat()
    try:
        for region in regions:
            current = data["regions"].get(region) or {k: v for k, v in base.items() if k not in REGION_META}
            data["regions"][region], kept = refresh_region(client, region, current, today)
            print(f"{region}: refreshed" + (f"; kept previous values for {', '.join(kept)}" if kept else ""))
    except Exception as err:  # botocore ClientError, EndpointConnectionError ...: one clear line, no traceback
        print(f"error: Price List API: {err}", file=sys.stderr)
        return 1
    write(data["regions"], Path(args.catalog))
    if unknown:
        print(f"added regions: {', '.join(unknown)} (instance types copied from {next(iter(data['regions']))})")
    print(f"wrote {args.catalog}")
    return 0


def _prices_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["refresh"], help="refresh: rebuild the catalog from the AWS Price List API")
    p.add_argument("--region", action="append", help="region to refresh (repeatable; default: every catalog region)")
    p.add_argument("--catalog", default=str(CATALOG_PATH), help="catalog file to rewrite")


COMMANDS["prices"] = ("price catalog: `prices refresh` rebuilds it from the AWS Price List API", _prices_args,
                      cmd_prices)
