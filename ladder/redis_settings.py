"""Redis server settings shared by the ElastiCache parameter group and the
local Redis cluster the integration tests run, so both enforce the same rules."""

from __future__ import annotations

# BullMQ refuses to run safely when Redis may evict its keys; ElastiCache's default
# (volatile-lru) evicts, so every phase's parameter group sets noeviction.
BASE_PARAMETERS: dict[str, str] = {
    "maxmemory-policy": "noeviction",
    # Keyspace events BullMQ does not need; keep them off (the ElastiCache default).
    "notify-keyspace-events": "",
}


def parameter_family(engine_version: str) -> str:
    """ElastiCache parameter group family for an engine version (7.0 and 7.1 share redis7)."""
    return "redis" + engine_version.split(".")[0]


def parameters(cluster_mode: str) -> dict[str, str]:
    """Parameters for a replication group in `cluster_mode` (disabled|compatible|enabled).

    `cluster-enabled` must be `yes` for a cluster-mode-enabled group; AWS applies it while
    moving a group from compatible to enabled.
    """
    params = dict(BASE_PARAMETERS)
    params["cluster-enabled"] = "yes" if cluster_mode == "enabled" else "no"
    return params
