"""`ladder prices refresh`: the findings of the refresh review (/work/shared review "review-refresh").

Each test names the finding it closes and the mutation of ladder/prices_refresh.py it catches.
Recorded products: tests/fixtures/pricelist/README.md. Expected values are read off the fixtures
(or the constructed products below) by hand, never computed with the code under test.
"""

from __future__ import annotations

import copy
import json
import os
import re
import tempfile
from dataclasses import replace

import pytest
import yaml

from ladder import cli, prices_refresh
from ladder.prices_refresh import (
    QUERIES,
    UNIT_SOURCE,
    BulkSource,
    Product,
    RefreshError,
    cmd_prices,
    refresh_region,
    tiers,
    want,
)
from tests.unit.test_prices_refresh import (
    HEADER,
    OLD,
    TABLES,
    TODAY,
    Host,
    args,
    bulk,
    catalog_file,
    ec2_offer,
    eks_offer,
    load,
    variant,
)

DT = "constructed/offer-AWSDataTransfer-us-east-1.json"


def offer(*products: tuple[str, str, dict, list[tuple[str, str, str, str]]]) -> dict:
    """A constructed offer file: (sku, family, attributes, [(begin, end, unit, usd)...]) each."""
    out: dict = {"products": {}, "terms": {"OnDemand": {}}}
    for sku, family, attributes, dims in products:
        out["products"][sku] = {"sku": sku, "productFamily": family, "attributes": attributes}
        out["terms"]["OnDemand"][sku] = {f"{sku}.JRTCKXETXF": {"sku": sku, "offerTermCode": "JRTCKXETXF", "priceDimensions": {
            f"{sku}.JRTCKXETXF.{i}": {"beginRange": b, "endRange": e, "unit": u, "pricePerUnit": {"USD": usd}}
            for i, (b, e, u, usd) in enumerate(dims)}}}
    return out


def dt_product(**edit: object) -> Product:
    """The constructed us-east-1 -> internet product (tiers 0-10240-51200-153600-Inf), its dimensions edited."""
    body = load(DT)
    sku = "DTOUTUSE1INTERNET"
    terms = copy.deepcopy(body["terms"]["OnDemand"][sku])
    return Product(sku, "Data Transfer", body["products"][sku]["attributes"], terms)


def dims_of(p: Product) -> list[dict]:
    return sorted(next(iter(p.on_demand.values()))["priceDimensions"].values(), key=lambda d: float(d["beginRange"]))


# ---------------------------------------------------------------------------
# Finding 1: --table, and a cited unit for every query


def test_every_query_cites_where_its_unit_comes_from():
    assert set(UNIT_SOURCE) == set(QUERIES)
    for table, text in UNIT_SOURCE.items():
        assert text.startswith(("recorded", "rule table", "unverified", "Infracost", "a public")), table
        assert repr(QUERIES[table].unit) in text or f"'{QUERIES[table].unit}'" in text, table


def test_table_refreshes_only_the_named_tables_and_keeps_the_regions_date(tmp_path, capsys):
    """Only EKS is offered: the EC2 and transfer offers are never opened (Host raises KeyError otherwise)."""
    path = catalog_file(tmp_path, TABLES, OLD)
    source, host = bulk(tmp_path, {("AmazonEKS", "us-east-1"): eks_offer()})
    a = args(path)
    a.table = ["eks_cluster_hour"]
    assert cmd_prices(a, source=source) == 0, capsys.readouterr().err
    region = yaml.safe_load(path.read_text())["regions"]["us-east-1"]
    assert region["eks_cluster_hour"] == 0.0225  # the constructed product's price
    assert region["retrieved"] == "2026-11-23"  # not today: the other tables were not refreshed
    assert region["ec2_instance_hour"] == {"c4.large": 0.09} and region["data_transfer_out_gb"] == 0.09
    assert "entered by hand" in region["source"] and "eks_cluster_hour" in region["source"] and "--table" in region["source"]
    assert not any("AmazonEC2" in u or "AWSDataTransfer" in u for u in host.opened)
    a.table = ["no_such_table"]
    with pytest.raises(SystemExit, match="no_such_table: not a catalog table"):
        cmd_prices(a, source=source)


# ---------------------------------------------------------------------------
# Finding 2: CloudFront HTTPS requests are one product ({edge}-Requests-HTTPS-Proxy, Infracost's requestType)


def cloudfront_offer() -> dict:
    """Constructed: per edge, the proxy HTTPS product Infracost's filter selects and the Tier2 HTTPS product
    (the billing sample's "$0.012 per 10,000 HTTPS Requests"), which must not be a second candidate."""
    def req(sku: str, edge: str, loc: str, usage: str, rtype: str, usd: str) -> tuple:
        return (sku, "Request", {"servicecode": "AmazonCloudFront", "location": loc, "locationType": "Other",
                                 "usagetype": f"{edge}-{usage}", "requestType": rtype}, [("0", "Inf", "Requests", usd)])
    return offer(req("CFUSPROXY", "US", "United States", "Requests-HTTPS-Proxy", "CloudFront-Request-HTTPS-Proxy", "0.0000010000"),
                 req("CFUSTIER2", "US", "United States", "Requests-Tier2-HTTPS", "CloudFront-Request-HTTPS", "0.0000010000"),
                 req("CFEUPROXY", "EU", "Europe", "Requests-HTTPS-Proxy", "CloudFront-Request-HTTPS-Proxy", "0.0000012000"))


def test_cloudfront_https_requests_are_the_proxy_product_per_10k_for_each_edge(tmp_path):
    source, _ = bulk(tmp_path, {("AmazonCloudFront", None): cloudfront_offer()})
    tables = {"cloudfront_https_requests_10k": {}}
    assert refresh_region(source, "us-east-1", {}, TODAY, tables)["cloudfront_https_requests_10k"] == 0.01
    assert refresh_region(source, "eu-central-1", {}, TODAY, tables)["cloudfront_https_requests_10k"] == 0.012
    # the edge is a filter of its own (Infracost: `location`), not only the usage-type prefix
    assert ("location", "Europe") in want("cloudfront_https_requests_10k", QUERIES["cloudfront_https_requests_10k"],
                                          "eu-west-1").exact


# ---------------------------------------------------------------------------
# Finding 4: --cache never reuses an unversioned `current` offer from an earlier run


def test_a_cached_global_offer_is_fetched_again_by_the_next_run_and_versioned_ones_are_reused(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    tables = {"cloudfront_https_requests_10k": {}, "alb_hour": {}}
    elb = load("constructed/offer-AWSELB-us-east-1.json")
    first = Host({("AmazonCloudFront", None): cloudfront_offer(), ("AWSELB", "us-east-1"): elb})
    run1 = BulkSource(opener=first, base="https://offers.test", cache=cache)
    assert refresh_region(run1, "us-east-1", {}, TODAY, tables)["cloudfront_https_requests_10k"] == 0.01
    changed = cloudfront_offer()
    for term in changed["terms"]["OnDemand"]["CFUSPROXY"].values():
        for dim in term["priceDimensions"].values():
            dim["pricePerUnit"]["USD"] = "0.0000020000"  # a new publication under the same `current` URL
    second = Host({("AmazonCloudFront", None): changed, ("AWSELB", "us-east-1"): elb})
    run2 = BulkSource(opener=second, base="https://offers.test", cache=cache)
    assert refresh_region(run2, "us-east-1", {}, TODAY, tables)["cloudfront_https_requests_10k"] == 0.02
    assert "/offers/v1.0/aws/AWSELB/20261101000000/us-east-1/index.json" not in second.opened  # versioned: reused
    refresh_region(run2, "eu-west-1", {}, TODAY, {"cloudfront_https_requests_10k": {}})
    assert second.opened.count("/offers/v1.0/aws/AmazonCloudFront/current/index.json") == 1  # once per run


# ---------------------------------------------------------------------------
# Finding 3: per-request prices scale to the catalog unit, and small floats read back as numbers


def test_s3_put_requests_per_request_become_per_1k_and_are_written_as_numbers(tmp_path):
    """Constructed S3 product: Requests-Tier1 at $0.000005 per request (the rule table's unit "Requests");
    the catalog table is per 1,000 requests: 0.000005 x 1000 = 0.005."""
    s3 = offer(("S3PUTUSE1", "API Request", {"servicecode": "AmazonS3", "regionCode": "us-east-1",
                                             "locationType": "AWS Region", "usagetype": "Requests-Tier1"},
                [("0", "Inf", "Requests", "0.0000050000")]))
    path = catalog_file(tmp_path, {"s3_put_requests_1k": {"unit": "1k requests", "what": "S3 PUT"}},
                        {"retrieved": "2026-11-23", "source": "by hand", "s3_put_requests_1k": 0.004})
    source, _ = bulk(tmp_path, {("AmazonS3", "us-east-1"): s3})
    assert cmd_prices(args(path), source=source) == 0
    assert yaml.safe_load(path.read_text())["regions"]["us-east-1"]["s3_put_requests_1k"] == 0.005


@pytest.mark.parametrize("v", [5e-06, 5e-05, 1.5e-07, 0.0225, 1e-10])
def test_small_floats_are_written_in_a_form_yaml_reads_as_a_float(v):
    text = prices_refresh._scalar(v)
    assert isinstance(yaml.safe_load(text), float) and yaml.safe_load(text) == v


def test_a_scaled_tiered_table_scales_prices_up_and_bounds_down():
    """Constructed: 0-1,000,000 requests at $0.000005, then $0.000004. Per 1k: 1,000 (thousand) at 0.005,
    then 0.004."""
    product = Product("T", "API Request", {}, {"T.X": {"priceDimensions": {
        "a": {"beginRange": "0", "endRange": "1000000", "unit": "Requests", "pricePerUnit": {"USD": "0.0000050000"}},
        "b": {"beginRange": "1000000", "endRange": "Inf", "unit": "Requests", "pricePerUnit": {"USD": "0.0000040000"}}}}})
    assert tiers(product, QUERIES["s3_put_requests_1k"], "t") == [(1000, 0.005), (None, 0.004)]


# ---------------------------------------------------------------------------
# Finding 5: the tier checks


def test_several_on_demand_terms_fail():
    p = dt_product()
    term = next(iter(p.on_demand.values()))
    two = replace(p, on_demand={"A": term, "B": copy.deepcopy(term)})
    with pytest.raises(RefreshError, match="2 on-demand terms, expected 1"):
        tiers(two, QUERIES["data_transfer_out_gb"], "dt")


@pytest.mark.parametrize("edit", ["gap", "overlap", "no_inf"])
def test_tier_ladders_with_a_gap_an_overlap_or_no_last_tier_fail(edit):
    p = dt_product()
    assert tiers(p, QUERIES["data_transfer_out_gb"], "dt")[-1] == (None, 0.05)  # the unedited ladder is accepted
    dims = dims_of(p)
    if edit == "gap":
        dims[1]["beginRange"] = "10241"  # 10240-10241 uncovered
    elif edit == "overlap":
        dims[2]["beginRange"] = "50000"  # 50000-51200 in two tiers
    else:
        term = next(iter(p.on_demand.values()))
        last = next(k for k, d in term["priceDimensions"].items() if d["endRange"] == "Inf")
        del term["priceDimensions"][last]  # stops at 153,600 GB: the rest would be billed at nothing
    with pytest.raises(RefreshError, match="not contiguous from 0 to Inf|not Inf"):
        tiers(p, QUERIES["data_transfer_out_gb"], "dt")


# ---------------------------------------------------------------------------
# Finding 6: sibling products (constructed from the recorded c4.large) and the real recordings


def c4_siblings() -> dict:
    """The recorded c4.large with siblings that share its usage type and differ in one filtered attribute
    each (constructed; MBQPYDJSY3BY84BH/MDKVAJXMJGZFDJUE are the sibling SKUs lyft/awspricing's README
    lists for c4.large Linux in US East). Each filter Infracost's instance.go applies removes one."""
    base = ec2_offer()
    return ec2_offer(variant(base, "MBQPYDJSY3BY84BH", tenancy="Dedicated", usd="0.1100000000"),
                     variant(base, "MDKVAJXMJGZFDJUE", tenancy="Host", usd="0.1200000000"),
                     variant(base, "SIBWINDOWSC4L", operatingSystem="Windows", usd="0.1930000000"),
                     variant(base, "SIBSQLWEBC4L", preInstalledSw="SQL Web", usd="0.1730000000"),
                     variant(base, "SIBBYOLC4L", licenseModel="Bring your own license", usd="0.1000000000"),
                     variant(base, "SIBALLOCC4L", capacitystatus="AllocatedCapacityReservation", usd="0.1000000000"))


def test_siblings_of_other_tenancy_os_software_licence_or_capacity_are_not_candidates(tmp_path):
    base = c4_siblings()
    base["products"]["4C7N4APU9GEUZ6H6"]["attributes"]["capacitystatus"] = "Used"  # as at lyft 9594b55 (#32)
    for sku in base["products"]:
        if sku != "4C7N4APU9GEUZ6H6":
            base["products"][sku]["attributes"].setdefault("capacitystatus", "Used")
    source, _ = bulk(tmp_path, {("AmazonEC2", "us-east-1"): base})
    out = refresh_region(source, "us-east-1", {"ec2_instance_hour": {"c4.large": 0.09}}, TODAY, {"ec2_instance_hour": {}})
    assert out["ec2_instance_hour"] == {"c4.large": 0.1}


def test_recorded_nat_variant_alb_prefix_and_free_first_hour(monkeypatch):
    """Real products (offer-ec2-others.lyft-awspricing.json): a provisioned-bandwidth NAT product must not
    price NAT GB; the Canada ALB hour is found under its CAN1- prefix; an Elastic IP product's $0 first hour
    cannot become a flat price."""
    recorded = load("offer-ec2-others.lyft-awspricing.json")

    def product(sku: str, region: str) -> Product:
        p = recorded["products"][sku]
        return Product(sku, p["productFamily"], {**p["attributes"], "regionCode": region}, recorded["terms"]["OnDemand"][sku])

    nat = product("9F25CQRR8AA58QZS", "eu-west-1")
    assert nat.attributes["usagetype"] == "EU-NatGateway-Prvd-Bytes"
    assert not want("nat_gateway_gb", QUERIES["nat_gateway_gb"], "eu-west-1").matches(nat)
    assert want("nat_gateway_gb", QUERIES["nat_gateway_gb"], "eu-west-1").matches(
        replace(nat, attributes={**nat.attributes, "usagetype": "EU-NatGateway-Bytes"}))
    monkeypatch.setitem(prices_refresh.USAGE_PREFIX, "ca-central-1", "CAN1")
    alb = product("DJ56KTT4RXZCM5AC", "ca-central-1")
    w = want("alb_hour", QUERIES["alb_hour"], "ca-central-1")
    assert w.matches(alb) and prices_refresh.value("alb_hour", QUERIES["alb_hour"], [alb], w, False) == 0.02475
    ip = product("NDET67BXTNJGSGN2", "eu-west-1")
    q = replace(QUERIES["public_ipv4_hour"], usagetype="{code}ElasticIP:IdleAddress")
    w = want("public_ipv4_hour", q, "eu-west-1")
    assert tiers(ip, q, "ip") == [(1, 0.0), (None, 0.005)]
    with pytest.raises(RefreshError, match="2 price tiers"):
        prices_refresh.value("public_ipv4_hour", q, [ip], w, False)


def test_transfer_matches_fromRegionCode_or_else_fromLocation_and_only_to_the_internet(tmp_path):
    body = load(DT)
    attrs = body["products"]["DTOUTUSE1INTERNET"]["attributes"]
    del attrs["fromRegionCode"]  # the older shape: fromLocation "US East (N. Virginia)" only
    (tmp_path / "a").mkdir()
    source, _ = bulk(tmp_path / "a", {("AWSDataTransfer", "us-east-1"): body})
    assert refresh_region(source, "us-east-1", {}, TODAY, {"data_transfer_out_gb": {}})["data_transfer_out_gb"] == 0.09
    # a product to another destination under the same usage type (constructed) is not a second candidate
    body = load(DT)
    other = copy.deepcopy(body["products"]["DTOUTUSE1INTERNET"])
    other["sku"] = "DTOUTUSE1OTHER"
    other["attributes"]["toLocation"] = "Amazon CloudFront"
    body["products"]["DTOUTUSE1OTHER"] = other
    body["terms"]["OnDemand"]["DTOUTUSE1OTHER"] = json.loads(json.dumps(body["terms"]["OnDemand"]["DTOUTUSE1INTERNET"])
                                                             .replace("DTOUTUSE1INTERNET", "DTOUTUSE1OTHER"))
    (tmp_path / "b").mkdir()
    source, _ = bulk(tmp_path / "b", {("AWSDataTransfer", "us-east-1"): body})
    assert refresh_region(source, "us-east-1", {}, TODAY, {"data_transfer_out_gb": {}})["data_transfer_out_gb"] == 0.09
    eu = want("data_transfer_out_gb", QUERIES["data_transfer_out_gb"], "eu-west-1")
    assert not eu.matches(Product("X", "Data Transfer", attrs, {}))  # the N. Virginia product is not Ireland's


# ---------------------------------------------------------------------------
# Finding 7: CloudWatch alarms by alarmType, RDS gp3 by databaseEngine Any + volumeType (Infracost)


def test_alarm_types_and_rds_gp3_are_told_apart_by_infracosts_attributes(tmp_path):
    def alarm(sku: str, kind: str, usd: str) -> tuple:
        return (sku, "Alarm", {"regionCode": "us-east-1", "locationType": "AWS Region", "usagetype": "CW:AlarmMonitorUsage",
                               "alarmType": kind}, [("0", "Inf", "Alarms", usd)])

    def gp3(sku: str, engine: str, usd: str) -> tuple:
        return (sku, "Database Storage", {"regionCode": "us-east-1", "locationType": "AWS Region",
                                          "usagetype": "USE1-RDS:GP3-Storage", "deploymentOption": "Single-AZ",
                                          "databaseEngine": engine, "volumeType": "General Purpose-GP3"},
                [("0", "Inf", "GB-Mo", usd)])
    source, _ = bulk(tmp_path, {("AmazonCloudWatch", "us-east-1"): offer(alarm("CWSTD", "Standard", "0.1000000000"),
                                                                          alarm("CWHIGH", "High Resolution", "0.3000000000")),
                                ("AmazonRDS", "us-east-1"): offer(gp3("RDSANY", "Any", "0.1150000000"),
                                                                  gp3("RDSPG", "PostgreSQL", "0.2000000000"))})
    tables = {"cloudwatch_alarm_metric_month": {}, "cloudwatch_alarm_high_res_metric_month": {}, "rds_gp3_gb_month": {}}
    out = refresh_region(source, "us-east-1", {}, TODAY, tables)
    assert (out["cloudwatch_alarm_metric_month"], out["cloudwatch_alarm_high_res_metric_month"],
            out["rds_gp3_gb_month"]) == (0.1, 0.3, 0.115)


# ---------------------------------------------------------------------------
# Finding 8: hyphenated and metal instance types


def test_hyphenated_types_can_be_added_and_metal_types_use_their_family(tmp_path):
    path = catalog_file(tmp_path, {"ec2_instance_hour": TABLES["ec2_instance_hour"]},
                        {"retrieved": "2026-11-23", "source": "by hand", "ec2_instance_hour": {"c4.large": 0.09}})
    base = ec2_offer()
    flex = variant(base, "CONSTRUCTEDFLEX", instanceType="m7i-flex.large", usagetype="BoxUsage:m7i-flex.large",
                   usd="0.0958000000")  # illustrative price
    (tmp_path / "a").mkdir()
    source, _ = bulk(tmp_path / "a", {("AmazonEC2", "us-east-1"): ec2_offer(flex)})
    assert cmd_prices(args(path, "ec2_instance_hour:m7i-flex.large"), source=source) == 0
    assert yaml.safe_load(path.read_text())["regions"]["us-east-1"]["ec2_instance_hour"]["m7i-flex.large"] == 0.0958
    # the recorded i3.metal (Windows, SQL Ent) and a Linux copy of it (constructed): the Linux one is priced
    metal = load("offer-ec2-i3metal.lyft-awspricing.json")
    recorded = metal["products"]["SBVNSX4BKU246KVM"]
    recorded["attributes"]["regionCode"] = "eu-west-1"
    linux = copy.deepcopy(recorded)
    linux["sku"] = "LINUXI3METAL"
    linux["attributes"].update(operatingSystem="Linux", preInstalledSw="NA", operation="RunInstances")
    metal["products"]["LINUXI3METAL"] = linux
    metal["terms"] = {"OnDemand": {sku: {f"{sku}.T": {"priceDimensions": {"d": {
        "beginRange": "0", "endRange": "Inf", "unit": "Hrs", "pricePerUnit": {"USD": usd}}}}}
        for sku, usd in (("SBVNSX4BKU246KVM", "9.9000000000"), ("LINUXI3METAL", "4.9920000000"))}}
    (tmp_path / "b").mkdir()
    source, _ = bulk(tmp_path / "b", {("AmazonEC2", "eu-west-1"): metal})
    out = refresh_region(source, "eu-west-1", {"ec2_instance_hour": {"i3.metal": 5.0}}, TODAY, {"ec2_instance_hour": {}})
    assert out["ec2_instance_hour"] == {"i3.metal": 4.992}


# ---------------------------------------------------------------------------
# Finding 9: a per-type table without types


def test_a_per_type_table_without_types_is_a_named_error_and_all_unpriced_types_absent_is_empty(tmp_path):
    source, _ = bulk(tmp_path, {("AmazonEC2", "us-east-1"): ec2_offer()})
    with pytest.raises(RefreshError, match="ec2_instance_hour in us-east-1: no types to price.*--add-type"):
        refresh_region(source, "us-east-1", {}, TODAY, {"ec2_instance_hour": {}})
    reason = {"ec2_instance_hour": "m7g: not offered here yet"}
    out = refresh_region(source, "us-east-1", {"unpriced_types": reason, "ec2_instance_hour": {}}, TODAY,
                         {"ec2_instance_hour": {}}, elsewhere={"ec2_instance_hour": {"m7g.large"}})
    assert out["ec2_instance_hour"] == {} and out["unpriced_types"] == reason
    path = tmp_path / "p.yaml"
    path.write_text(HEADER + "regions: {}\n")
    prices_refresh.write({"us-east-1": out}, path)  # reads back: an empty map, not null
    assert yaml.safe_load(path.read_text())["regions"]["us-east-1"]["ec2_instance_hour"] == {}


# ---------------------------------------------------------------------------
# Finding 10: downloads without --cache are removed


def test_a_run_without_cache_leaves_no_download_directory(monkeypatch, tmp_path):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    path = catalog_file(tmp_path, TABLES, OLD)
    host = Host({("AmazonEC2", "us-east-1"): ec2_offer(), ("AWSDataTransfer", "us-east-1"): load(DT),
                 ("AmazonEKS", "us-east-1"): eks_offer()})
    monkeypatch.setattr(prices_refresh, "_urlopen", lambda url: host(url.replace(prices_refresh.PRICE_LIST_HOST,
                                                                                "https://offers.test")))
    kept: list = []  # holds the source, so its removal is the command's doing, not garbage collection
    make = prices_refresh.make_source
    monkeypatch.setattr(prices_refresh, "make_source", lambda a: kept.append(make(a)) or kept[-1])
    assert cli.main(["prices", "refresh", "--catalog", str(path)]) == 0
    assert len(host.opened) > 3 and kept and list(temp.iterdir()) == []


# ---------------------------------------------------------------------------
# Finding 11: the catalog write is atomic


def test_a_failed_write_leaves_the_catalog_whole(monkeypatch, tmp_path):
    path = catalog_file(tmp_path, TABLES, OLD)
    before = path.read_bytes()
    regions = yaml.safe_load(path.read_text())["regions"]
    regions["us-east-1"]["eks_cluster_hour"] = 0.2

    def fail(src: object, dst: object) -> None:
        raise OSError("No space left on device")
    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        prices_refresh.write(regions, path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["prices.yaml"]


# ---------------------------------------------------------------------------
# Finding 12: --add-type keys per table


def test_add_type_takes_each_tables_key_form():
    tables = {t: {} for t in ("ec2_instance_hour", "ec2_cpu_credit_vcpu_hour", "rds_cpu_credit_vcpu_hour")}
    assert prices_refresh.parse_add(["ec2_cpu_credit_vcpu_hour:t4g", "rds_cpu_credit_vcpu_hour:db.t4g",
                                     "ec2_instance_hour:m7i-flex.large"], tables) == {
        "ec2_cpu_credit_vcpu_hour": ["t4g"], "rds_cpu_credit_vcpu_hour": ["db.t4g"], "ec2_instance_hour": ["m7i-flex.large"]}
    for bad, says in (("rds_cpu_credit_vcpu_hour:t4g", "e.g. db.t4g"), ("ec2_cpu_credit_vcpu_hour:t4g.micro", "e.g. t4g"),
                      ("ec2_instance_hour:t3", "e.g. m7g.large")):
        with pytest.raises(SystemExit, match=re.escape(says)):
            prices_refresh.parse_add([bad], tables)


def test_the_cli_takes_table_and_refreshes_only_it(monkeypatch, tmp_path, capsys):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    path = catalog_file(tmp_path, TABLES, OLD)
    host = Host({("AmazonEKS", "us-east-1"): eks_offer()})  # no EC2 or transfer offer: opening one raises
    monkeypatch.setattr(prices_refresh, "_urlopen", lambda url: host(url.replace(prices_refresh.PRICE_LIST_HOST,
                                                                                "https://offers.test")))
    assert cli.main(["prices", "refresh", "--catalog", str(path), "--table", "eks_cluster_hour"]) == 0
    out = capsys.readouterr().out
    assert "us-east-1 eks_cluster_hour: 0.1 -> 0.0225" in out and "ec2_instance_hour" not in out
    assert yaml.safe_load(path.read_text())["regions"]["us-east-1"]["retrieved"] == "2026-11-23"
