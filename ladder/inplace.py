"""What AWS cannot apply in place to a stateful resource: one rule set, three callers.

The program (`components/cache.py`, `components/database.py`) checks the config against
the DEPLOYED resource (read from AWS where the provider lets it, else the stack's last
outputs); `ladder diff` and `ladder review` check the head plan against the base plan.
Both call `refusals(type, name, before, after)`, where `before` and `after` are resource
inputs in Pulumi's (camelCase) names. A value missing from `before` is unknown and never
refuses anything.

A refusal is either an AWS refusal (`pulumi up` fails half-way), a replacement the
provider would plan (a new, empty resource; `protect` turns it into an error), or a change
the provider silently never sends (the stack then describes a resource that does not
exist). Each rule names its source.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .aws_facts import STATEFUL_REPLACE_FORCING

REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
RDS_INSTANCE = "aws:rds/instance:Instance"
UNKNOWN = "<unknown>"

# --- sources ---------------------------------------------------------------------------------

SRC_CLUSTER_MODE = ('AWS ElastiCache User Guide, "Modifying cluster mode" ("Cluster mode configuration can only '
                    'be changed from cluster mode disabled to cluster mode enabled. Reverting this configuration '
                    'is not possible"); ElastiCache API Reference, ModifyReplicationGroup `ClusterMode` ("To modify '
                    'cluster mode from Disabled to Enabled, you must first set the cluster mode to Compatible")')
SRC_COMPATIBLE_ONLY = ('AWS ElastiCache User Guide, "Modifying cluster mode" (in compatible mode "other modification '
                       'operations such as scaling and engine version are not allowed"; with `ClusterMode` in a '
                       'ModifyReplicationGroup request no other parameter but CacheParameterGroupName can change)')
SRC_CLUSTER_MODE_PRECONDITIONS = ('AWS ElastiCache User Guide, "Modifying cluster mode" (before migrating: auto-failover '
                                  'with at least 1 replica; Redis OSS 7.0 or later)')
SRC_REDIS_DOWNGRADE = ('AWS ElastiCache User Guide, "Modifying a replication group" ("you can\'t downgrade to earlier '
                       'engine versions except by deleting the existing cluster or replication group"); '
                       'terraform-provider-aws internal/service/elasticache/replication_group.go, CustomizeDiff '
                       '`customizeDiffEngineVersionForceNewOnDowngrade` (plans a replacement)')
SRC_RDS_DOWNGRADE = ('AWS RDS User Guide, "Upgrading a DB instance engine version" (no downgrades: restore a '
                     'snapshot into a new instance)')
SRC_RDS_SHRINK = ('AWS RDS User Guide, "Increasing DB instance storage capacity" (allocated storage can be '
                  'increased, never reduced); terraform-provider-aws internal/service/rds/instance.go '
                  '`allocated_storage` DiffSuppressFunc (a smaller value is not sent while max_allocated_storage '
                  'exceeds it)')
SRC_STORAGE_AUTOSCALING = ('AWS RDS User Guide, "Managing capacity automatically with Amazon RDS storage '
                           'autoscaling"; ministryofjustice/cloud-platform-environments#24422')
SRC_FORCE_NEW = 'terraform-provider-aws resource schema: the input is ForceNew ("Changing this forces a new resource")'
SRC_TRANSIT_ENCRYPTION = ('terraform-provider-aws internal/service/elasticache/replication_group.go, CustomizeDiff '
                          '`ForceNewIf("transit_encryption_enabled")` below engine 7.0.5')
SRC_NODE_GROUPS = ('terraform-provider-aws internal/service/elasticache/replication_group.go, CustomizeDiff '
                   '`ForceNewIf("node_group_configuration")` (explicitly configured and changed)')
SRC_ENGINE_CHANGE = ('terraform-provider-aws internal/service/elasticache/engine_version.go '
                     '`customizeDiffEngineForceNewOnDowngrade`, in replication_group.go\'s CustomizeDiff (any engine '
                     'change but redis -> valkey forces a new group)')
SRC_VALKEY_UPGRADE = ('AWS ElastiCache User Guide, "Upgrading engine versions including cross engine upgrades", '
                      '"How to upgrade from Redis OSS to Valkey" (ModifyReplicationGroup with Engine valkey, the '
                      'engine version and, for a custom parameter group, a Valkey one with the same static values; '
                      '"minimal downtime when upgrading from Redis OSS 5.0.6 or higher"; from earlier versions "a '
                      'failover time of 30 to 60 seconds during the DNS propagation"); terraform-provider-aws '
                      'internal/service/elasticache/engine_version.go `customizeDiffEngineForceNewOnDowngrade` '
                      '(redis -> valkey is the one engine change it applies in place)')
SRC_VALKEY_NO_REPLICA = ('AWS Knowledge Center, "How do I upgrade my Amazon ElastiCache for Redis engine version and what '
                         'is the impact of upgrading?" (repost.aws/knowledge-center/elasticache-redis-upgrade-engine-version: '
                         'a single-node group, or one with Multi-AZ off, cannot serve requests during the upgrade; take a '
                         'manual backup first); ElastiCache User Guide "Upgrading engine versions": from 5.0.6 writes pause '
                         '"except during the failover operation", which needs a replica')
SRC_VALKEY_ROLLBACK = ('terraform-provider-aws internal/service/elasticache/engine_version.go '
                       '`customizeDiffEngineForceNewOnDowngrade` (valkey -> redis is ForceNew: a new, empty group); '
                       'AWS ElastiCache User Guide, "How to downgrade from Valkey to Redis OSS" (AWS itself rolls '
                       'back only Valkey 7.2 to Redis OSS 7.1)')

CLUSTER_MODE_ORDER = {"disabled": 0, "compatible": 1, "enabled": 2}
TRANSIT_ENCRYPTION_IN_PLACE_FROM = (7, 0, 5)
CLUSTER_MODE_MIN_ENGINE = (7, 0)
# Redis OSS -> Valkey without the 30-60 s DNS failover: from Redis OSS 5.0.6 (SRC_VALKEY_UPGRADE).
VALKEY_SWITCH_NO_OUTAGE_FROM = (5, 0, 6)

# Config keys the program's error messages name, by (resource type, input).
CONFIG_KEYS: dict[tuple[str, str], str] = {
    (REPLICATION_GROUP, "clusterMode"): "scaleladder:redis.clusterMode",
    (REPLICATION_GROUP, "engineVersion"): "scaleladder:redis.engineVersion",
    (REPLICATION_GROUP, "engine"): "scaleladder:redis.engine",
    (REPLICATION_GROUP, "nodeType"): "scaleladder:redis.nodeType",
    (REPLICATION_GROUP, "shards"): "scaleladder:redis.shards",
    (REPLICATION_GROUP, "replicas"): "scaleladder:redis.replicasPerShard",
    (REPLICATION_GROUP, "automaticFailoverEnabled"): "scaleladder:redis.replicasPerShard",
    (RDS_INSTANCE, "allocatedStorage"): "scaleladder:database.storageGb",
    (RDS_INSTANCE, "maxAllocatedStorage"): "scaleladder:database.maxStorageGb",
    (RDS_INSTANCE, "engineVersion"): "scaleladder:database.engineVersion",
}


@dataclass(frozen=True)
class Refusal:
    """One change AWS cannot apply in place: which resource and input, from what to what, why, where stated."""

    resource: str
    type: str
    input: str
    before: Any
    after: Any
    rule: str
    source: str
    allowed: str = ""  # the values that would be accepted, for the program's error message

    @property
    def name(self) -> str:
        return self.resource

    @property
    def reason(self) -> str:
        """The refusal in one line without the resource: input, before -> after, rule, source."""
        return f"`{self.input}` {_show(self.before)} -> {_show(self.after)}: {self.rule} [source: {self.source}]"

    @property
    def key(self) -> str | None:
        return CONFIG_KEYS.get((self.type, self.input))

    def message(self) -> str:
        """The program's error: the config key first, the rule, the allowed values."""
        head = self.key or f"{self.resource}.{self.input}"
        allowed = f"; allowed: {self.allowed}" if self.allowed else ""
        return f"{head}: {self.rule} (deployed {_show(self.before)}, got {_show(self.after)}){allowed}"

    def line(self) -> str:
        """One report line: resource, input, before -> after, rule, source."""
        return (f"{self.resource} `{self.type}`: {self.input}: {_show(self.before)} -> {_show(self.after)}: "
                f"{self.rule} [{self.source}]")


def _show(value: Any) -> str:
    return "(none)" if value is None else str(value)


def _known(value: Any) -> bool:
    return value is not None and value != UNKNOWN and value != ""


def _number(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def version(text: Any) -> tuple[int, ...] | None:
    """"16.4" -> (16, 4); "7.x" -> (7,); None for anything unparsable."""
    if not isinstance(text, (str, int, float)) or isinstance(text, bool):
        return None
    parts = []
    for part in str(text).split("."):
        if not re.fullmatch(r"\d+", part):
            break
        parts.append(int(part))
    return tuple(parts) or None


def is_downgrade(before: Any, after: Any) -> bool:
    """`after` is older than `before`, comparing only the parts both name ("16" = the newest 16.x)."""
    old, new = version(before), version(after)
    if old is None or new is None:
        return False
    common = min(len(old), len(new))
    return new[:common] < old[:common]


# --- ElastiCache replication group -------------------------------------------------------------


def redis_shape(inputs: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """(shards, replicas per shard) of a group's inputs: cluster mode enabled counts node groups
    and replicas per group; disabled/compatible count cache clusters (one primary + replicas).
    The provider reads both back from the group, so switching between them is no change."""
    if _known(inputs.get("numNodeGroups")):
        replicas = inputs.get("replicasPerNodeGroup")
        return int(inputs["numNodeGroups"]), int(replicas) if replicas is not None and _known(replicas) else None
    if _known(inputs.get("numCacheClusters")):
        return 1, int(inputs["numCacheClusters"]) - 1
    if inputs.get("clusterMode") in ("disabled", "compatible"):
        return 1, None  # one node group, whatever the outputs did not record
    return None, None


def cluster_mode_refusals(name: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> Iterator[Refusal]:
    """Backwards, a skipped `compatible` step, a mode change with any other change, scaling while
    compatible, and the migration's preconditions."""
    old, new = before.get("clusterMode"), after.get("clusterMode")
    if not (_known(old) and _known(new)) or old not in CLUSTER_MODE_ORDER or new not in CLUSTER_MODE_ORDER:
        return
    later = ", ".join(m for m, o in CLUSTER_MODE_ORDER.items() if o >= CLUSTER_MODE_ORDER[old])
    if CLUSTER_MODE_ORDER[new] < CLUSTER_MODE_ORDER[old]:
        yield Refusal(name, REPLICATION_GROUP, "clusterMode", old, new,
                      f"the Redis group is already in cluster mode '{old}' and AWS cannot revert cluster mode "
                      "(ModifyReplicationGroup refuses it; only a new group, without the data, could be "
                      f"'{new}')", SRC_CLUSTER_MODE, allowed=later)
        return
    if CLUSTER_MODE_ORDER[new] - CLUSTER_MODE_ORDER[old] > 1:
        yield Refusal(name, REPLICATION_GROUP, "clusterMode", old, new,
                      f"AWS moves cluster mode one step at a time; the group is '{old}', so set "
                      "redis.clusterMode: compatible for one `pulumi up` (switch the app to a cluster client), "
                      "then enabled", SRC_CLUSTER_MODE, allowed="disabled, compatible")
        return
    changing_mode = old != new
    if not (changing_mode or old == "compatible"):
        return
    why = (f"the same update changes cluster mode ({old} -> {new}), and AWS changes nothing else with it"
           if changing_mode else "the group is in cluster mode 'compatible', where AWS allows no scaling and no "
           "engine version change")
    then = "; change it in a `pulumi up` of its own, before or after the mode change" if changing_mode else (
        "; finish the move (redis.clusterMode: enabled) first")
    (old_shards, old_replicas), (new_shards, new_replicas) = redis_shape(before), redis_shape(after)
    for field, was, now, keep in (("shards", old_shards, new_shards, old_shards),
                                  ("replicas", old_replicas, new_replicas, old_replicas)):
        if was is not None and now is not None and was != now:
            yield Refusal(name, REPLICATION_GROUP, field, was, now, why + then, SRC_COMPATIBLE_ONLY, allowed=str(keep))
    for field in ("nodeType", "engineVersion", "engine"):
        was, now = before.get(field), after.get(field)
        if _known(was) and _known(now) and was != now and not (field == "engineVersion" and _same_version(was, now)):
            yield Refusal(name, REPLICATION_GROUP, field, was, now, why + then, SRC_COMPATIBLE_ONLY, allowed=str(was))
    if changing_mode:
        yield from _migration_preconditions(name, old, new, after)


def _same_version(a: Any, b: Any) -> bool:
    """"7.1" and the engine's actual "7.1.0" name the same version."""
    va, vb = version(a), version(b)
    if va is None or vb is None:
        return a == b
    common = min(len(va), len(vb))
    return va[:common] == vb[:common]


def _migration_preconditions(name: str, old: str, new: str, after: Mapping[str, Any]) -> Iterator[Refusal]:
    shards, replicas = redis_shape(after)
    failover = after.get("automaticFailoverEnabled")
    if (replicas is not None and replicas < 1) or failover is False:
        yield Refusal(name, REPLICATION_GROUP, "automaticFailoverEnabled", old, new,
                      "changing cluster mode needs automatic failover with at least one replica",
                      SRC_CLUSTER_MODE_PRECONDITIONS, allowed="redis.replicasPerShard >= 1")
    engine = version(after.get("engineVersion"))
    if engine is not None and engine[:2] < CLUSTER_MODE_MIN_ENGINE:
        yield Refusal(name, REPLICATION_GROUP, "engineVersion", after.get("engineVersion"), after.get("engineVersion"),
                      "changing cluster mode needs Redis OSS 7.0 or later", SRC_CLUSTER_MODE_PRECONDITIONS,
                      allowed="7.0 or later")


def redis_version_refusals(name: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> Iterator[Refusal]:
    old, new = before.get("engineVersion"), after.get("engineVersion")
    if is_downgrade(old, new):
        yield Refusal(name, REPLICATION_GROUP, "engineVersion", old, new,
                      "ElastiCache cannot downgrade an engine: the provider would replace the group (a new, empty "
                      "one; every queued job lost)", SRC_REDIS_DOWNGRADE, allowed=f"{old} or newer")


def redis_engine_refusals(name: str, before: Mapping[str, Any], after: Mapping[str, Any],
                          accept_interruption: bool | None = None) -> Iterator[Refusal]:
    """Valkey -> Redis OSS (the provider replaces the group), and Redis OSS -> Valkey from a version
    that AWS switches only with a failover outage. Redis OSS -> Valkey from 5.0.6 on is in place;
    on a group without a replica (no automatic failover: phases 1-2) only with
    climb.acceptCacheInterruption (`accept_interruption`; None: not checked, as for plan diffs)."""
    old, new = before.get("engine"), after.get("engine")
    if not (_known(old) and _known(new)) or old == new:
        return
    if (old, new) == ("valkey", "redis"):
        yield Refusal(name, REPLICATION_GROUP, "engine", old, new,
                      "the group runs Valkey, and the provider plans any engine change but Redis OSS -> Valkey as "
                      "a replacement (a new, empty group; every queued job lost); AWS itself rolls back only "
                      "Valkey 7.2 to Redis OSS 7.1", SRC_VALKEY_ROLLBACK, allowed="valkey")
        return
    source = version(before.get("engineVersion"))
    if (old, new) == ("redis", "valkey") and source is not None and \
            source + (0,) * (3 - len(source)) < VALKEY_SWITCH_NO_OUTAGE_FROM:
        yield Refusal(name, REPLICATION_GROUP, "engine", old, new,
                      f"the group runs Redis OSS {before.get('engineVersion')}: below 5.0.6 AWS switches it to Valkey "
                      "with a 30-60 s failover (DNS propagation), a write outage the ladder does not take; upgrade "
                      "Redis OSS first (scaleladder:redis.engine redis, scaleladder:redis.engineVersion 7.1), then "
                      "switch", SRC_VALKEY_UPGRADE, allowed="redis (until the group runs Redis OSS 5.0.6 or later)")
        return
    failover = before.get("automaticFailoverEnabled", after.get("automaticFailoverEnabled"))
    if (old, new) == ("redis", "valkey") and failover is False and accept_interruption is False:
        yield Refusal(name, REPLICATION_GROUP, "engine", old, new,
                      "the group has no replica (no automatic failover), so its only node cannot serve requests "
                      "while AWS upgrades it: the app and the BullMQ workers lose Redis for the upgrade; take a "
                      "manual backup, then set scaleladder:climb.acceptCacheInterruption true for this `up` (or "
                      "switch after a phase with replicas)", SRC_VALKEY_NO_REPLICA,
                      allowed="redis (or valkey with scaleladder:climb.acceptCacheInterruption true)")


def redis_replace_inputs(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, str]:
    """Inputs whose change makes the provider replace the group only under a condition, with the source."""
    out: dict[str, str] = {}
    if is_downgrade(before.get("engineVersion"), after.get("engineVersion")):
        out["engineVersion"] = SRC_REDIS_DOWNGRADE
    old_engine, new_engine = before.get("engine"), after.get("engine")
    if _known(old_engine) and _known(new_engine) and old_engine != new_engine and \
            (old_engine, new_engine) != ("redis", "valkey"):
        out["engine"] = SRC_ENGINE_CHANGE
    old_groups, new_groups = before.get("nodeGroupConfiguration"), after.get("nodeGroupConfiguration")
    if (old_groups or new_groups) and old_groups != new_groups and UNKNOWN not in (old_groups, new_groups):
        out["nodeGroupConfiguration"] = SRC_NODE_GROUPS
    actual = version(before.get("engineVersion"))
    if before.get("transitEncryptionEnabled") != after.get("transitEncryptionEnabled") and \
            _known(before.get("transitEncryptionEnabled")) and (actual is None or actual < TRANSIT_ENCRYPTION_IN_PLACE_FROM):
        out["transitEncryptionEnabled"] = SRC_TRANSIT_ENCRYPTION
    return out


# --- RDS instance ----------------------------------------------------------------------------


def rds_storage_refusals(name: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> Iterator[Refusal]:
    old, new, ceiling = (_number(v.get(k)) for v, k in ((before, "allocatedStorage"), (after, "allocatedStorage"),
                                                         (after, "maxAllocatedStorage")))
    if old is None or new is None or new >= old:
        return
    also: list[Refusal] = []
    if ceiling is not None and ceiling > new:
        effect = (f"the provider does not send it (storage autoscaling, maxAllocatedStorage {ceiling}), so the "
                  f"instance stays at {old} GB or more while the stack, its cost and its alarms say {new}")
        if ceiling * 10 < old * 11:  # the new maximum is still sent, against the storage the instance has
            also.append(Refusal(name, RDS_INSTANCE, "maxAllocatedStorage", old, ceiling,
                          f"the instance keeps {old} GB, and AWS refuses a maximum allocated storage less than 10 % "
                          f"above it (\"The maximum allocated storage must be increased by at least 10 percent\")",
                          SRC_STORAGE_AUTOSCALING, allowed=f"{-(-old * 11 // 10)} or more"))
    else:
        effect = "ModifyDBInstance refuses a smaller AllocatedStorage"
    yield Refusal(name, RDS_INSTANCE, "allocatedStorage", old, new, f"RDS cannot reduce allocated storage: {effect}",
                  SRC_RDS_SHRINK, allowed=f"{old} or more")
    yield from also


def rds_version_refusals(name: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> Iterator[Refusal]:
    old, new = before.get("engineVersion"), after.get("engineVersion")
    if is_downgrade(old, new):
        major = (version(old) or (0,))[0]
        yield Refusal(name, RDS_INSTANCE, "engineVersion", old, new,
                      f"the database runs PostgreSQL {old} and RDS cannot downgrade an engine (to go back, restore "
                      "a snapshot into a new stack)", SRC_RDS_DOWNGRADE, allowed=f"{major} or later")


# --- every stateful type -------------------------------------------------------------------


def _replace_forcing(type_: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, str]:
    forcing = {k: SRC_FORCE_NEW for k in STATEFUL_REPLACE_FORCING.get(type_, ())}
    if type_ == REPLICATION_GROUP:
        forcing.update(redis_replace_inputs(before, after))
    return forcing


def replace_refusals(type_: str, name: str, before: Mapping[str, Any], after: Mapping[str, Any],
                     skip: Iterable[str] = ()) -> Iterator[Refusal]:
    """A changed replace-forcing input of a stateful resource: a new, empty resource (encryption,
    KMS key, identifiers, engine ...). `skip` leaves out inputs another rule already reported."""
    skipped = set(skip)
    for key, source in sorted(_replace_forcing(type_, before, after).items()):
        if key in skipped or key not in before or key not in after:
            continue
        old, new = before[key], after[key]
        if old == UNKNOWN or new == UNKNOWN or old == new:
            continue
        yield Refusal(name, type_, key, old, new, "changing it replaces the resource: AWS cannot change it in place "
                      "(a new, empty resource; `protect` makes `pulumi up` fail)", source, allowed=_show(old))


def conditional_replace_inputs(type_: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> set[str]:
    """Inputs that force a replacement of this resource only given its other values (for `ladder diff`)."""
    return set(redis_replace_inputs(before, after)) if type_ == REPLICATION_GROUP else set()


def refusals(type_: str, name: str, before: Mapping[str, Any] | None, after: Mapping[str, Any],
             accept_cache_interruption: bool | None = None) -> list[Refusal]:
    """Every change from `before` (deployed, or the base plan) to `after` that AWS cannot apply in place
    (`accept_cache_interruption`: climb.acceptCacheInterruption; None for plan diffs, which lack it)."""
    if not before:
        return []  # nothing deployed: a new resource takes any value
    found: list[Refusal] = []
    if type_ == REPLICATION_GROUP:
        found += cluster_mode_refusals(name, before, after)
        found += redis_engine_refusals(name, before, after, accept_cache_interruption)
        found += redis_version_refusals(name, before, after)
    elif type_ == RDS_INSTANCE:
        if after.get("replicateSourceDb") or before.get("replicateSourceDb"):
            return []  # a read replica holds no data of its own
        found += rds_storage_refusals(name, before, after)
        found += rds_version_refusals(name, before, after)
    found += replace_refusals(type_, name, before, after, skip={r.input for r in found})
    return found


def plan_refusals(base_plan: Mapping[str, Any], head_plan: Mapping[str, Any]) -> list[Refusal]:
    """`refusals` for every resource of `head_plan` that `base_plan` has too (matched by URN)."""
    old = {r["urn"]: r for r in base_plan.get("resources") or []}
    found: list[Refusal] = []
    for r in head_plan.get("resources") or []:
        base = old.get(r["urn"])
        if base is not None and base["type"] == r["type"]:
            found += refusals(r["type"], r["name"], base.get("inputs") or {}, r.get("inputs") or {})
    return found
