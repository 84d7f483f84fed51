"""Subnet layout: pure, shared by the config model (to refuse a CIDR that cannot
hold the subnets) and the Network component (to carve them)."""

from __future__ import annotations

import ipaddress

# Each subnet is the VPC prefix + 3 (eight slots: up to 3 public + 3 private, 2 spare).
SUBNET_EXTRA_BITS = 3
# An ALB needs a /27 with 8 free addresses per subnet; we want headroom for app groups.
MIN_SUBNET_PREFIX = 26
# EKS gives every pod a VPC address (vpc-cni): phase 6 wants /24 or larger subnets.
MIN_EKS_SUBNET_PREFIX = 24


def subnet_plan(cidr: str, az_count: int) -> tuple[list[str], list[str]]:
    """(public, private) subnet CIDRs, one of each per AZ."""
    net = ipaddress.IPv4Network(cidr)
    slots = list(net.subnets(prefixlen_diff=SUBNET_EXTRA_BITS))
    public = [str(s) for s in slots[:az_count]]
    private = [str(s) for s in slots[4 : 4 + az_count]]
    return public, private


def subnet_prefix(cidr: str) -> int:
    return ipaddress.IPv4Network(cidr).prefixlen + SUBNET_EXTRA_BITS
