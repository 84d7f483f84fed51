"""Physical names the program derives from the project and stack names.

A stack name is valid for Pulumi with characters AWS refuses in names (`prod_eu`, dots,
capitals) and may be long (`production-eu-west-1-blue`). Every name built from it goes
through `name_prefix`, which satisfies the strictest rule among its uses:
- RDS `final_snapshot_identifier`: letters, digits and hyphens, starting with a letter, no
  two hyphens in a row, not ending in one (terraform-provider-aws internal/service/rds/
  validate.go `validFinalSnapshotIdentifier`);
- S3-style and CloudFront OAC names, KMS aliases, EKS cluster names: lowercase is accepted
  by all, and the OAC name `<prefix>-static-assets` must stay within 64 characters
  (internal/service/cloudfront/origin_access_control.go, name: StringLenBetween(1, 64)).
"""

from __future__ import annotations

import hashlib
import re

MAX_PREFIX = 38
"""Longest prefix: leaves room for the longest suffix we append (`-static-assets`, 14) under
the 64-character names, and for `-<suffix>` of Pulumi's autonaming on the others."""


def name_prefix(project: str, stack: str) -> str:
    """`<project>-<stack>`, lowercased, every run of other characters turned into one hyphen;
    a longer result is cut and ends in a short hash of the original, so two long stack names
    sharing a beginning never share a prefix."""
    raw = f"{project}-{stack}"
    clean = re.sub(r"[^a-z0-9]+", "-", raw.lower()).strip("-")
    if not clean or not clean[0].isalpha():
        clean = f"s-{clean}".rstrip("-")
    if len(clean) > MAX_PREFIX:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:6]
        clean = clean[:MAX_PREFIX - 7].rstrip("-") + "-" + digest
    return clean
