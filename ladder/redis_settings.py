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


_MODE_ORDER = {"disabled": 0, "compatible": 1, "enabled": 2}


def cluster_mode_step_problem(previous: str | None, wanted: str) -> str | None:
    """Why the group cannot go from `previous` (the stack's last deployed mode) to `wanted`, or None.

    AWS moves a replication group disabled -> compatible -> enabled, one step per
    modification, and never back. Planning the way back would make the provider
    replace the group and lose every queued job, so the program refuses instead.
    """
    if previous is None or previous == wanted:
        return None
    if _MODE_ORDER[wanted] < _MODE_ORDER[previous]:
        return (
            f"scaleladder:redis.clusterMode: the Redis group is already in cluster mode '{previous}' and AWS cannot "
            f"revert cluster mode; '{wanted}' would replace the group and lose its data. Keep phase >= 4 "
            f"(or set redis.clusterMode: {previous}); allowed: {', '.join(m for m, o in _MODE_ORDER.items() if o >= _MODE_ORDER[previous])}"
        )
    if _MODE_ORDER[wanted] - _MODE_ORDER[previous] > 1:
        return (
            f"scaleladder:redis.clusterMode: AWS moves cluster mode one step at a time; the group is '{previous}', "
            f"so set redis.clusterMode: compatible for one `pulumi up` (switch the app to a cluster client), then enabled"
        )
    return None
