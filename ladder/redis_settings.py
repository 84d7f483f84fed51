"""Redis server settings shared by the ElastiCache parameter group and the
local Redis cluster the integration tests run, so both enforce the same rules."""

from __future__ import annotations

# BullMQ refuses to run safely when Redis may evict its keys; ElastiCache's default
# (volatile-lru) evicts, so every phase's parameter group sets noeviction.
BASE_PARAMETERS: dict[str, str] = {
    "maxmemory-policy": "noeviction",
}


def parameter_family(engine_version: str) -> str:
    """ElastiCache parameter group family for an engine version (7.0 and 7.1 share redis7)."""
    return "redis" + engine_version.split(".")[0]


def parameters(cluster_mode: str) -> dict[str, str]:
    """Parameters for a replication group in `cluster_mode` (disabled|compatible|enabled).

    AWS wants a parameter group with `cluster-enabled yes` from the `compatible` step on
    ("Modifying cluster mode", ElastiCache User Guide), so the group keeps two parameter
    groups and switches between them.
    """
    params = dict(BASE_PARAMETERS)
    params["cluster-enabled"] = "no" if cluster_mode == "disabled" else "yes"
    return params
