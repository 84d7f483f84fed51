"""`ladder prices refresh`: the bulk offer files and the Query API, on recorded price-list JSON.

Fixtures (tests/fixtures/pricelist/README.md names repository, path and commit of each):
recorded products from lyft/awspricing, asheiduk/as-scripts and botocore's GetProducts example;
constructed offer files (AWSDataTransfer, AWSELB) where no public recording was found, with
the attribute names Infracost filters on. Expected values are read off the fixture JSON by
hand, never computed with the code under test.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
from dataclasses import replace
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.stub import Stubber

from ladder import cli, prices, prices_refresh
from ladder.prices import CATALOG_PATH, catalog, parse
from ladder.prices_refresh import (
    QUERIES,
    ApiSource,
    BulkSource,
    Product,
    RefreshError,
    cmd_prices,
    refresh_region,
    tiers,
    want,
)

FIX = Path(__file__).parents[1] / "fixtures" / "pricelist"
TODAY = "2030-01-01"


def load(name: str) -> dict:
    return json.loads((FIX / name).read_text())


def ec2_offer(*extra: tuple[str, dict, dict]) -> dict:
    """The recorded c4.large offer excerpt (lyft/awspricing), with the `regionCode` attribute today's
    price list carries (the 2018 recording predates it); `extra` adds (sku, product, term set)."""
    offer = load("offer-ec2-c4large.lyft-awspricing.json")
    for product in offer["products"].values():
        product["attributes"]["regionCode"] = "us-east-1"
    for sku, product, terms in extra:
        offer["products"][sku] = product
        offer["terms"]["OnDemand"][sku] = terms
    return offer


def variant(offer: dict, sku: str, **changes: str) -> tuple[str, dict, dict]:
    """A copy of the recorded c4.large product under another SKU (duplicates as Infracost PR #1141 met
    them, or another instance type with `instanceType`/`usagetype`/`usd`)."""
    base_sku = "4C7N4APU9GEUZ6H6"
    product = copy.deepcopy(offer["products"][base_sku])
    usd = changes.pop("usd", None)
    product["sku"] = sku
    product["attributes"].update(changes)
    text = json.dumps(offer["terms"]["OnDemand"][base_sku]).replace(base_sku, sku)
    terms = json.loads(text)
    if usd:
        for term in terms.values():
            for dim in term["priceDimensions"].values():
                dim["pricePerUnit"]["USD"] = usd
    return sku, product, terms


class Host:
    """The bulk API's file layout, served from memory: index -> region index -> offer file."""

    def __init__(self, offers: dict[tuple[str, str | None], dict]) -> None:
        self.files: dict[str, bytes] = {}
        self.opened: list[str] = []
        services = sorted({s for s, _ in offers})
        index = {"offers": {s: {"offerCode": s, "currentVersionUrl": f"/offers/v1.0/aws/{s}/current/index.json",
                                "currentRegionIndexUrl": f"/offers/v1.0/aws/{s}/current/region_index.json"}
                            for s in services}}
        self.files["/offers/v1.0/aws/index.json"] = json.dumps(index).encode()
        for s in services:
            regions = {r: {"regionCode": r, "currentVersionUrl": f"/offers/v1.0/aws/{s}/20261101000000/{r}/index.json"}
                       for (svc, r) in offers if svc == s and r}
            self.files[f"/offers/v1.0/aws/{s}/current/region_index.json"] = json.dumps({"regions": regions}).encode()
        for (s, r), body in offers.items():
            url = f"/offers/v1.0/aws/{s}/20261101000000/{r}/index.json" if r else f"/offers/v1.0/aws/{s}/current/index.json"
            self.files[url] = json.dumps(body).encode()

    def __call__(self, url: str) -> io.BytesIO:
        path = url.removeprefix("https://offers.test")
        self.opened.append(path)
        return io.BytesIO(self.files[path])


def bulk(tmp_path: Path, offers: dict[tuple[str, str | None], dict]) -> tuple[BulkSource, Host]:
    host = Host(offers)
    return BulkSource(opener=host, base="https://offers.test", cache=tmp_path), host


# ---------------------------------------------------------------------------
# Queries against recorded and constructed products


def test_data_transfer_is_found_by_fromRegionCode_with_its_tiers(tmp_path):
    """Review point 7: AWSDataTransfer products have no regionCode. The us-east-1 -> internet product
    is the one of three (the global free-tier product and an inter-region one are not)."""
    source, _ = bulk(tmp_path, {("AWSDataTransfer", "us-east-1"): load("constructed/offer-AWSDataTransfer-us-east-1.json")})
    tiered = refresh_region(source, "us-east-1", {}, TODAY, {"data_transfer_out_gb": {"tiered": True}})
    # read off the fixture: 0-10240 $0.09, 10240-51200 $0.085, 51200-153600 $0.07, 153600-Inf $0.05
    assert tiered["data_transfer_out_gb"] == [{"upto": 10240, "usd": 0.09}, {"upto": 51200, "usd": 0.085},
                                              {"upto": 153600, "usd": 0.07}, {"upto": None, "usd": 0.05}]
    flat = refresh_region(source, "us-east-1", {}, TODAY, {"data_transfer_out_gb": {}})
    assert flat["data_transfer_out_gb"] == 0.09  # a flat table says it keeps the first 10 TB tier


def test_load_balancer_variants_do_not_match_the_anchored_usage_types(tmp_path):
    """Outposts, reserved-LCU and trust-store products end in the same suffix; the full match keeps
    exactly the standard product per price."""
    source, _ = bulk(tmp_path, {("AWSELB", "us-east-1"): load("constructed/offer-AWSELB-us-east-1.json")})
    tables = {t: {} for t in ("alb_hour", "alb_lcu_hour", "nlb_hour", "nlb_nlcu_hour")}
    out = refresh_region(source, "us-east-1", {}, TODAY, tables)
    assert (out["alb_hour"], out["alb_lcu_hour"], out["nlb_hour"], out["nlb_nlcu_hour"]) == (0.0225, 0.008, 0.0225, 0.006)


def test_recorded_usage_types_of_other_variants_do_not_match_boxusage():
    """Recorded usage types (lyft/awspricing, asheiduk/as-scripts): dedicated, unused reservations,
    GovCloud. The old unanchored search for "BoxUsage:" matched the GovCloud one."""
    page = load("api-ec2-page.lyft-awspricing.json")["PriceList"]
    recorded = [Product.from_api(p).attributes["usagetype"] for p in page]
    recorded.append(Product.from_api(load("api-ec2-r5-24xlarge.asheiduk-as-scripts.json")).attributes["usagetype"])
    assert recorded == ["APS2-UnusedDed:d2.2xlarge", "CAN1-DedicatedRes:p3.2xlarge", "UGW1-BoxUsage:r5.24xlarge"]
    import re

    us = want("ec2_instance_hour", QUERIES["ec2_instance_hour"], "us-east-1", "r5.24xlarge").usagetype
    assert [u for u in recorded if re.fullmatch(us, u)] == []
    assert re.fullmatch(us, "BoxUsage:r5.24xlarge") and re.fullmatch(us, "USE1-BoxUsage:r5.24xlarge")
    eu = want("ec2_instance_hour", QUERIES["ec2_instance_hour"], "eu-west-1", "i3.metal").usagetype
    assert re.fullmatch(eu, "EU-BoxUsage:i3.metal")  # recorded eu-west-1 usage type (lyft/awspricing)


def test_duplicate_products_fail_loudly_naming_table_filters_and_candidates(tmp_path):
    offer = ec2_offer()
    offer = ec2_offer(variant(offer, "DUPLICATEC4LARGE", usd="0.0990000000"))
    source, _ = bulk(tmp_path, {("AmazonEC2", "us-east-1"): offer})
    with pytest.raises(RefreshError) as err:
        refresh_region(source, "us-east-1", {"ec2_instance_hour": {"c4.large": 0.1}}, TODAY, {"ec2_instance_hour": {}})
    text = str(err.value)
    assert "ec2_instance_hour:c4.large in us-east-1: 2 products match" in text
    assert "instanceType='c4.large'" in text and "locationType='AWS Region'" in text
    assert "4C7N4APU9GEUZ6H6" in text and "DUPLICATEC4LARGE" in text


def test_the_on_demand_price_is_read_and_reserved_terms_ignored(tmp_path):
    """The recorded offer carries four reserved terms (upfront fees in "Quantity", $0.021-0.063/h);
    its on-demand rate is $0.10 per Hrs."""
    source, _ = bulk(tmp_path, {("AmazonEC2", "us-east-1"): ec2_offer()})
    out = refresh_region(source, "us-east-1", {"ec2_instance_hour": {"c4.large": 0.09}}, TODAY, {"ec2_instance_hour": {}})
    assert out["ec2_instance_hour"] == {"c4.large": 0.1}


def test_a_unit_other_than_the_tables_fails():
    """botocore's recorded GetProducts example: EBS io1 storage at $0.138 per GB-Mo."""
    product = Product.from_api(json.loads(load("api-ebs-piops.botocore-examples.json")["PriceList"][0]))
    query = replace(QUERIES["ebs_gp3_gb_month"], usagetype=r"{code}EBS:VolumeUsage\.piops")
    assert tiers(product, query, "ebs") == [(None, 0.138)]
    with pytest.raises(RefreshError, match=r"unit GB-Mo where the catalog table is priced per 'GB'"):
        tiers(product, replace(query, unit="GB"), "ebs")


def test_a_tiered_product_for_a_flat_table_fails_unless_the_table_keeps_its_first_tier(tmp_path):
    source, _ = bulk(tmp_path, {("AWSDataTransfer", "us-east-1"): load("constructed/offer-AWSDataTransfer-us-east-1.json")})
    w = want("data_transfer_out_gb", QUERIES["data_transfer_out_gb"], "us-east-1")
    found = source.products("AWSDataTransfer", "us-east-1", [w])[w]
    strict = replace(QUERIES["data_transfer_out_gb"], first_tier=False)
    with pytest.raises(RefreshError, match="4 price tiers"):
        prices_refresh.value("data_transfer_out_gb", strict, found, w, tiered=False)


def test_every_catalog_table_has_a_query_and_a_table_without_one_fails(tmp_path):
    assert set(catalog().tables) <= set(QUERIES), "add a Query for the new table to ladder/prices_refresh.py"
    source, _ = bulk(tmp_path, {})
    with pytest.raises(RefreshError, match="no_such_table in us-east-1: no Price List query"):
        refresh_region(source, "us-east-1", {}, TODAY, {"no_such_table": {}})


def test_bulk_source_follows_the_index_layout_and_reads_global_services_whole(tmp_path):
    source, host = bulk(tmp_path, {("AWSELB", "us-east-1"): load("constructed/offer-AWSELB-us-east-1.json"),
                                   ("AmazonCloudFront", None): {"products": {}, "terms": {"OnDemand": {}}}})
    refresh_region(source, "us-east-1", {}, TODAY, {"alb_hour": {}})
    assert host.opened == ["/offers/v1.0/aws/index.json", "/offers/v1.0/aws/AWSELB/current/region_index.json",
                           "/offers/v1.0/aws/AWSELB/20261101000000/us-east-1/index.json"]
    with pytest.raises(RefreshError, match="cloudfront_gb_out in every region .global.: 0 products match"):
        refresh_region(source, "us-east-1", {}, TODAY, {"cloudfront_gb_out": {}})
    assert host.opened[-1] == "/offers/v1.0/aws/AmazonCloudFront/current/index.json"


# ---------------------------------------------------------------------------
# The command: all or nothing


HEADER = "# Price catalog (test copy)\ncurrency: USD\n"


def catalog_file(tmp_path: Path, tables: dict, region: dict) -> Path:
    path = tmp_path / "prices.yaml"
    body = yaml.safe_dump({"tables": tables, "free": ["pulumi:*"]}, sort_keys=False)
    path.write_text(HEADER + body + yaml.safe_dump({"regions": {"us-east-1": region}}, sort_keys=False))
    return path


def args(path: Path, *extra: str) -> argparse.Namespace:
    return argparse.Namespace(catalog=str(path), region=None, add_type=list(extra) or None, source="bulk", cache=None)


OLD = {"retrieved": "2026-11-23", "source": "entered by hand", "ec2_instance_hour": {"c4.large": 0.09},
       "data_transfer_out_gb": 0.09, "eks_cluster_hour": 0.1}
TABLES = {"ec2_instance_hour": {"unit": "instance-hour", "what": "EC2"},
          "data_transfer_out_gb": {"unit": "GB", "what": "egress", "tiered": True},
          "eks_cluster_hour": {"unit": "cluster-hour", "what": "EKS"}}


def eks_offer(usagetype: str = "USE1-AmazonEKS-Hours:perCluster") -> dict:
    """An EKS offer with one product, built from the ELB fixture's shape (constructed), in the unit a public
    price-list rule table expects of the EKS control plane ("Hours", not EC2's "Hrs")."""
    elb = copy.deepcopy(load("constructed/offer-AWSELB-us-east-1.json"))
    sku = "ALBHOURUSE1"
    product = {**elb["products"][sku], "productFamily": "Compute"}
    product["attributes"] = {**product["attributes"], "servicecode": "AmazonEKS", "usagetype": usagetype}
    terms = elb["terms"]["OnDemand"][sku]
    for term in terms.values():
        for dim in term["priceDimensions"].values():
            dim["unit"] = "Hours"
    return {"products": {sku: product}, "terms": {"OnDemand": {sku: terms}}}


def test_a_table_that_matches_nothing_fails_the_command_and_leaves_the_catalog_untouched(tmp_path, capsys):
    path = catalog_file(tmp_path, TABLES, OLD)
    before = path.read_bytes()
    source, _ = bulk(tmp_path, {("AmazonEC2", "us-east-1"): ec2_offer(),
                                ("AWSDataTransfer", "us-east-1"): load("constructed/offer-AWSDataTransfer-us-east-1.json"),
                                ("AmazonEKS", "us-east-1"): eks_offer("USE1-AmazonEKS-Hours:extendedSupport")})
    assert cmd_prices(args(path), source=source) == 1
    err = capsys.readouterr().err
    assert "eks_cluster_hour in us-east-1: 0 products match AmazonEKS" in err and "catalog is unchanged" in err
    assert path.read_bytes() == before  # not rewritten, so not stamped `retrieved: today` either


def test_a_full_refresh_stamps_the_region_writes_tiers_and_reads_back(tmp_path):
    path = catalog_file(tmp_path, TABLES, OLD)
    source, _ = bulk(tmp_path, {("AmazonEC2", "us-east-1"): ec2_offer(),
                                ("AWSDataTransfer", "us-east-1"): load("constructed/offer-AWSDataTransfer-us-east-1.json"),
                                ("AmazonEKS", "us-east-1"): eks_offer()})
    assert cmd_prices(args(path), source=source) == 0
    text = path.read_text()
    assert text.startswith(HEADER) and "      - {upto: 10240, usd: 0.09}\n" in text  # the shared tier format
    region = parse(yaml.safe_load(text)).regions["us-east-1"]
    assert region["retrieved"] != "2026-11-23" and "hand" not in region["source"]
    assert region["ec2_instance_hour"] == {"c4.large": 0.1} and region["eks_cluster_hour"] == 0.0225
    assert region["data_transfer_out_gb"][-1] == {"upto": None, "usd": 0.05}


def test_add_type_widens_the_per_type_table(tmp_path, monkeypatch):
    path = catalog_file(tmp_path, {"ec2_instance_hour": TABLES["ec2_instance_hour"]},
                        {"retrieved": "2026-11-23", "source": "by hand", "ec2_instance_hour": {"c4.large": 0.09}})
    offer = ec2_offer()
    # a Graviton type, constructed from the recorded product (instanceType, usagetype, price changed)
    offer = ec2_offer(variant(offer, "CONSTRUCTEDM7GLG", instanceType="m7g.large", usagetype="BoxUsage:m7g.large",
                              usd="0.0816000000"))
    source, _ = bulk(tmp_path, {("AmazonEC2", "us-east-1"): offer})
    assert cmd_prices(args(path, "ec2_instance_hour:m7g.large"), source=source) == 0
    monkeypatch.setattr(prices, "CATALOG_PATH", path)  # what the config model reads (catalog())
    catalog.cache_clear()
    try:
        assert catalog().instance_types("us-east-1", "ec2_instance_hour") == ["c4.large", "m7g.large"]
        assert catalog().price("us-east-1", "ec2_instance_hour", "m7g.large") == 0.0816
    finally:
        monkeypatch.undo()
        catalog.cache_clear()


def test_add_type_the_price_list_lacks_fails_and_bad_syntax_names_the_tables(tmp_path, capsys):
    path = catalog_file(tmp_path, {"ec2_instance_hour": TABLES["ec2_instance_hour"]},
                        {"retrieved": "2026-11-23", "source": "by hand", "ec2_instance_hour": {"c4.large": 0.09}})
    before = path.read_bytes()
    source, _ = bulk(tmp_path, {("AmazonEC2", "us-east-1"): ec2_offer()})
    assert cmd_prices(args(path, "ec2_instance_hour:m7g.large"), source=source) == 1
    assert "ec2_instance_hour:m7g.large in us-east-1: 0 products match" in capsys.readouterr().err
    assert path.read_bytes() == before
    with pytest.raises(SystemExit, match="TABLE one of ec2_instance_hour"):
        cmd_prices(args(path, "ebs_gp3_gb_month:gp4"), source=source)


# ---------------------------------------------------------------------------
# The Query API path (botocore Stubber, recorded pages)


def test_api_pages_two_and_three_carry_the_filters_and_the_next_token():
    client = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    w = want("ec2_instance_hour", QUERIES["ec2_instance_hour"], "us-east-1", "c4.large")
    filters = [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in w.exact]
    expected = {"ServiceCode": "AmazonEC2", "FormatVersion": "aws_v1", "MaxResults": 100, "Filters": filters}
    page1 = load("api-ec2-page.lyft-awspricing.json")  # recorded page with its NextToken
    page2 = [json.dumps(load("api-ec2-r5-24xlarge.asheiduk-as-scripts.json"))]
    c4 = ec2_offer()
    page3 = [json.dumps({"product": c4["products"]["4C7N4APU9GEUZ6H6"], "serviceCode": "AmazonEC2",
                         "terms": {"OnDemand": c4["terms"]["OnDemand"]["4C7N4APU9GEUZ6H6"]}})]
    with Stubber(client) as stub:
        stub.add_response("get_products", {"PriceList": [json.dumps(p) for p in page1["PriceList"]],
                                           "NextToken": page1["NextToken"], "FormatVersion": "aws_v1"}, expected)
        stub.add_response("get_products", {"PriceList": page2, "NextToken": "page-3"},
                          {**expected, "NextToken": page1["NextToken"]})
        stub.add_response("get_products", {"PriceList": page3}, {**expected, "NextToken": "page-3"})
        found = ApiSource(client).products("AmazonEC2", "us-east-1", [w])[w]
        stub.assert_no_pending_responses()
    assert [p.sku for p in found] == ["4C7N4APU9GEUZ6H6"]  # the recorded others are other regions/tenancies


def test_api_source_needs_credentials_and_says_bulk_does_not(monkeypatch, tmp_path, capsys):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    before = CATALOG_PATH.read_text()
    assert cli.main(["prices", "refresh", "--source", "api"]) == 1
    err = capsys.readouterr().err
    assert "no AWS credentials" in err and "--source bulk" in err and "catalog is unchanged" in err
    assert CATALOG_PATH.read_text() == before


def test_the_writer_round_trips_the_shipped_catalog_and_keeps_its_header(tmp_path):
    """Per-type maps, tier lists, long `unpriced_types` reasons: written and read back equal."""
    path = tmp_path / "prices.yaml"
    path.write_text(CATALOG_PATH.read_text())
    data = yaml.safe_load(path.read_text())
    prices_refresh.write(data["regions"], path)
    text = path.read_text()
    shipped = CATALOG_PATH.read_text()
    assert text[: text.index("\nregions:")] == shipped[: shipped.index("\nregions:")]
    assert yaml.safe_load(text) == data


def eu_offer(*types: str) -> dict:
    """eu-west-1 EC2 products: the recorded c4.large re-homed (regionCode, the EU- usage-type prefix)."""
    offer = ec2_offer()
    out = {"products": {}, "terms": {"OnDemand": {}}}
    for t in types:
        sku, product, terms = variant(offer, f"EU{t.replace('.', '').upper()}", instanceType=t,
                                      usagetype=f"EU-BoxUsage:{t}", regionCode="eu-west-1")
        out["products"][sku] = product
        out["terms"]["OnDemand"][sku] = terms
    return out


def test_a_region_with_unpriced_types_gains_those_its_price_list_has(tmp_path):
    us = ec2_offer(variant(ec2_offer(), "CONSTRUCTEDM7GLG", instanceType="m7g.large", usagetype="BoxUsage:m7g.large"))
    path = tmp_path / "prices.yaml"
    reason = {"ec2_instance_hour": "m7g: no Europe (Ireland) price found"}
    regions = {"us-east-1": {"retrieved": "x", "source": "x", "ec2_instance_hour": {"c4.large": 0.1, "m7g.large": 0.1}},
               "eu-west-1": {"retrieved": "x", "source": "x", "unpriced_types": reason,
                             "ec2_instance_hour": {"c4.large": 0.1}}}
    path.write_text(HEADER + yaml.safe_dump({"tables": {"ec2_instance_hour": TABLES["ec2_instance_hour"]},
                                             "regions": regions}, sort_keys=False))
    (tmp_path / "a").mkdir()
    source, _ = bulk(tmp_path / "a", {("AmazonEC2", "us-east-1"): us, ("AmazonEC2", "eu-west-1"): eu_offer("c4.large")})
    assert cmd_prices(args(path), source=source) == 0
    eu = yaml.safe_load(path.read_text())["regions"]["eu-west-1"]
    assert eu["ec2_instance_hour"] == {"c4.large": 0.1} and eu["unpriced_types"] == reason  # still not priced there
    (tmp_path / "b").mkdir()
    source, _ = bulk(tmp_path / "b", {("AmazonEC2", "us-east-1"): us,
                                      ("AmazonEC2", "eu-west-1"): eu_offer("c4.large", "m7g.large")})
    assert cmd_prices(args(path), source=source) == 0
    eu = yaml.safe_load(path.read_text())["regions"]["eu-west-1"]
    assert sorted(eu["ec2_instance_hour"]) == ["c4.large", "m7g.large"] and "unpriced_types" not in eu


def test_per_family_keys_are_matched_whole():
    """CPU credits are keyed by family inside the usage type (Infracost: CPUCredits:<family>$): t3 must not
    take t3a's product, nor KMS's key price its rotation surcharge."""
    import re

    t3 = want("ec2_cpu_credit_vcpu_hour", QUERIES["ec2_cpu_credit_vcpu_hour"], "eu-west-1", "t3")
    assert ("instanceType", "t3") not in t3.exact  # the key lives in the usage type only
    assert [u for u in ("EU-CPUCredits:t3", "EU-CPUCredits:t3a", "EU-CPUCredits:t3.micro") if re.fullmatch(t3.usagetype, u)] \
        == ["EU-CPUCredits:t3"]
    kms = want("kms_key_month", QUERIES["kms_key_month"], "us-east-1").usagetype
    assert re.fullmatch(kms, "us-east-1-KMS-Keys") and not re.fullmatch(kms, "us-east-1-KMS-Keys-Rotation")


def test_the_cli_refreshes_from_the_offer_files_without_credentials_and_lists_changes(monkeypatch, tmp_path, capsys):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    path = catalog_file(tmp_path, TABLES, OLD)
    host = Host({("AmazonEC2", "us-east-1"): ec2_offer(),
                 ("AWSDataTransfer", "us-east-1"): load("constructed/offer-AWSDataTransfer-us-east-1.json"),
                 ("AmazonEKS", "us-east-1"): eks_offer()})
    monkeypatch.setattr(prices_refresh, "_urlopen", lambda url: host(url.replace(prices_refresh.PRICE_LIST_HOST,
                                                                                "https://offers.test")))
    assert cli.main(["prices", "refresh", "--catalog", str(path), "--cache", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    assert "us-east-1 ec2_instance_hour:c4.large: 0.09 -> 0.1" in out and "us-east-1 eks_cluster_hour: 0.1 -> 0.0225" in out
    assert host.opened[0] == "/offers/v1.0/aws/index.json"
    assert any((tmp_path / "cache").iterdir())  # downloads kept for a re-run


def test_a_free_first_tier_and_a_free_per_month_allowance_are_never_both_counted(tmp_path):
    """The global data-transfer product carries 100 GB at $0 (constructed fixture)."""
    source, _ = bulk(tmp_path, {("AWSDataTransfer", "us-east-1"): load("constructed/offer-AWSDataTransfer-us-east-1.json")})
    q = replace(QUERIES["data_transfer_out_gb"], usagetype="Global-DataTransfer-Out-Bytes", scope="global-test")
    w = replace(want("data_transfer_out_gb", QUERIES["data_transfer_out_gb"], "us-east-1"),
                exact=(("transferType", "AWS Outbound"), ("fromLocation", "Global")), usagetype="Global-DataTransfer-Out-Bytes",
                either=None)
    found = source.products("AWSDataTransfer", "us-east-1", [w])[w]
    assert [p.sku for p in found] == ["DTOUTGLOBALFREE"]
    with pytest.raises(RefreshError, match="also declares free_per_month: 100"):
        prices_refresh.value("data_transfer_out_gb", q, found, w, tiered=True, free=100)
    with pytest.raises(RefreshError, match="first price tier is free"):
        prices_refresh.value("data_transfer_out_gb", q, found, w, tiered=False)


def test_an_added_db_class_without_memory_facts_is_named():
    lines = prices_refresh.missing_facts("rds_postgres_instance_hour", ["db.t4g.micro", "db.zz9.large"])
    assert len(lines) == 1 and "db.zz9.large" in lines[0] and "RDS_CLASS_MEMORY_GIB" in lines[0]


def test_a_product_of_another_market_option_is_not_a_second_candidate(tmp_path):
    offer = ec2_offer()
    other = variant(offer, "OTHERMARKETC4L", marketoption="CapacityBlock", usd="0.0500000000")  # illustrative value
    offer = ec2_offer(other)
    offer["products"]["4C7N4APU9GEUZ6H6"]["attributes"]["marketoption"] = "OnDemand"
    source, _ = bulk(tmp_path, {("AmazonEC2", "us-east-1"): offer})
    out = refresh_region(source, "us-east-1", {"ec2_instance_hour": {"c4.large": 0.09}}, TODAY, {"ec2_instance_hour": {}})
    assert out["ec2_instance_hour"] == {"c4.large": 0.1}
