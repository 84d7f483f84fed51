"""Redis/Valkey server settings shared by the ElastiCache parameter group and the
local Redis cluster the integration tests run, so both enforce the same rules; the
engine's parameter group family and node price table."""

from __future__ import annotations

# BullMQ refuses to run safely when Redis may evict its keys; ElastiCache's default
# (volatile-lru) evicts, so every phase's parameter group sets noeviction.
BASE_PARAMETERS: dict[str, str] = {
    "maxmemory-policy": "noeviction",
}


# The price table of each engine's on-demand node hour (ladder/catalog/prices.yaml): the one place
# the cost rules, the config check and `ladder recommend` pick a node price by engine.
NODE_PRICE_TABLES: dict[str, str] = {"redis": "elasticache_node_hour", "valkey": "elasticache_valkey_node_hour"}
ENGINE_NAMES: dict[str, str] = {"redis": "Redis OSS", "valkey": "Valkey"}


def node_price_table(engine: str) -> str:
    """The catalog table of `engine`'s node-hour prices: a group without `engine` runs Redis OSS (any
    other engine is priced with the Redis OSS table; the stacks run none)."""
    return NODE_PRICE_TABLES.get(engine or "redis", NODE_PRICE_TABLES["redis"])


def engine_name(engine: str) -> str:
    return ENGINE_NAMES.get(engine, engine)


def parameter_family(engine_version: str, engine: str = "redis") -> str:
    """ElastiCache parameter group family for an engine and version: redis7 (7.0, 7.1), valkey7 (7.2),
    valkey8 (8.x) ("Engine specific parameters", ElastiCache User Guide). A family of the other engine
    is refused by AWS ("Expected a parameter group of family valkey8 but found one of family valkey7",
    InvalidParameterCombination, aws-samples/dify-self-hosted-on-aws#24)."""
    return engine + engine_version.split(".")[0]


def parameters(cluster_mode: str) -> dict[str, str]:
    """Parameters for a replication group in `cluster_mode` (disabled|compatible|enabled).

    AWS wants a parameter group with `cluster-enabled yes` from the `compatible` step on
    ("Modifying cluster mode", ElastiCache User Guide), so the group keeps two parameter
    groups and switches between them.
    """
    params = dict(BASE_PARAMETERS)
    params["cluster-enabled"] = "no" if cluster_mode == "disabled" else "yes"
    return params
