"""A real Redis cluster (3 masters x 1 replica, like phase 4's 3 shards x 1 replica) with
the ElastiCache parameter group's settings: the facts BullMQ relies on hold there.

- noeviction: BullMQ loses jobs if Redis evicts its keys.
- `{bull}` hash tag: BullMQ's multi-key commands and Lua scripts need all of a queue's
  keys in one slot; without the tag a cluster answers CROSSSLOT.
"""

from __future__ import annotations

import subprocess

from rediscluster import RedisCluster, redis_cluster  # noqa: F401  (fixture)

from ladder.redis_settings import parameters

TAGGED = ["{bull}:default:wait", "{bull}:default:active", "{bull}:default:meta"]
UNTAGGED = ["bull:default:wait", "bull:default:active"]
CROSSSLOT = "CROSSSLOT Keys in request don't hash to the same slot"
# What BullMQ's scripts do in essence: move a job id from one list to another and touch
# the queue's meta hash, atomically, in one script naming every key it uses.
MOVE_SCRIPT = (
    "local id = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT') "
    "if KEYS[3] then redis.call('HINCRBY', KEYS[3], 'moved', 1) end "
    "return id"
)


def _clear(cluster: RedisCluster, keys: list[str]) -> None:
    for key in keys:  # one key per DEL: works whatever the slots
        cluster.run("DEL", key)


def test_servers_run_with_parameter_group_settings(redis_cluster: RedisCluster) -> None:
    """Every node enforces the parameter group (noeviction above all), the topology is
    3 masters x 1 replica, and the auth token is required — as on ElastiCache."""
    settings = parameters("enabled")
    assert settings["maxmemory-policy"] == "noeviction"
    for port in redis_cluster.ports:
        assert redis_cluster.config_get(port, "maxmemory-policy") == "noeviction", port
        for key, value in settings.items():
            assert redis_cluster.config_get(port, key) == value, (port, key)

    rows = redis_cluster.cluster_nodes()
    masters = [r for r in rows if r["role"] == "master"]
    replicas = [r for r in rows if r["role"] == "replica"]
    assert len(masters) == 3 and len(replicas) == 3
    assert sorted(r["master_id"] for r in replicas) == sorted(m["id"] for m in masters)
    assert sum(hi - lo + 1 for m in masters for lo, hi in m["slots"]) == 16384

    def ping(*auth: str) -> str:
        cmd = [redis_cluster.cli_bin, "-p", str(redis_cluster.ports[0]), "--no-auth-warning"]
        done = subprocess.run([*cmd, *auth, "PING"], capture_output=True, text=True,
                              timeout=20, stdin=subprocess.DEVNULL)
        return (done.stderr + done.stdout).strip()  # redis-cli reports AUTH failures on stderr

    assert ping("-a", redis_cluster.password) == "PONG"
    assert ping().startswith("NOAUTH"), ping()
    wrong = ping("-a", "wrong-password")
    assert "WRONGPASS" in wrong and "PONG" not in wrong, wrong


def test_bull_hash_tag_keeps_queue_keys_in_one_slot(redis_cluster: RedisCluster) -> None:
    """`{bull}`-prefixed keys share a slot, so the multi-key commands, MULTI/EXEC and Lua
    scripts BullMQ issues succeed on the cluster."""
    c = redis_cluster
    slots = {key: c.keyslot(key) for key in TAGGED}
    assert len(set(slots.values())) == 1, slots
    _clear(c, TAGGED)
    try:
        assert c.run("RPUSH", TAGGED[0], "job-1", "job-2", "job-3") == "3"
        # A multi-key command through a cluster-aware client (redirects followed).
        assert c.run("LMOVE", TAGGED[0], TAGGED[1], "LEFT", "RIGHT") == "job-1"
        assert c.run("RPOPLPUSH", TAGGED[0], TAGGED[1]) == "job-3"  # pushed at the head
        # A Lua script touching three tagged keys.
        assert c.run("EVAL", MOVE_SCRIPT, "3", *TAGGED) == "job-2"
        assert c.run("LRANGE", TAGGED[1], "0", "-1").splitlines() == ["job-3", "job-1", "job-2"]
        assert c.run("LLEN", TAGGED[0]) == "0"
        assert c.run("HGET", TAGGED[2], "moved") == "1"

        # A transaction over all three keys, sent to the master serving their slot
        # (what a cluster client does with MULTI).
        owner = c.master_port_for_slot(slots[TAGGED[0]])
        tx = c.cli(port=owner, cluster=False, stdin=(
            f"MULTI\nRPUSH {TAGGED[0]} job-4\nLMOVE {TAGGED[1]} {TAGGED[0]} LEFT RIGHT\n"
            f"HSET {TAGGED[2]} last job-4\nEXEC\n"
        ))
        assert tx.stdout.splitlines() == ["OK", "QUEUED", "QUEUED", "QUEUED", "1", "job-3", "1"]
        assert c.run("LRANGE", TAGGED[0], "0", "-1").splitlines() == ["job-4", "job-3"]
        assert c.run("HGET", TAGGED[2], "last") == "job-4"
    finally:
        _clear(c, TAGGED)


def test_untagged_keys_fail_with_crossslot(redis_cluster: RedisCluster) -> None:
    """Without the hash tag a queue's keys hash to different slots and the same
    operations fail with CROSSSLOT — the documented reason for the `{bull}` prefix."""
    c = redis_cluster
    wait, active = UNTAGGED
    # Slots 10033 and 6854. With 3 masters both sit on the middle master (5461-10922):
    # CROSSSLOT is about slots, not nodes — resharding may move either slot at any time.
    assert c.keyslot(wait) != c.keyslot(active), "pick untagged names in different slots"
    _clear(c, UNTAGGED)
    try:
        assert c.run("RPUSH", wait, "job-1", "job-2") == "2"  # single-key commands work

        assert c.run("LMOVE", wait, active, "LEFT", "RIGHT") == CROSSSLOT
        assert c.run("RPOPLPUSH", wait, active) == CROSSSLOT
        assert c.run("EVAL", MOVE_SCRIPT, "2", wait, active) == CROSSSLOT

        owner = c.master_port_for_slot(c.keyslot(wait))
        tx = c.cli(port=owner, cluster=False, stdin=(
            f"MULTI\nLPOP {wait}\nRPUSH {active} job-1\nEXEC\n"
        ))
        assert CROSSSLOT in tx.stdout, tx.stdout

        # Nothing moved: the failed operations had no partial effect.
        assert c.run("LRANGE", wait, "0", "-1").splitlines() == ["job-1", "job-2"]
        assert c.run("EXISTS", active) == "0"
    finally:
        _clear(c, UNTAGGED)


def test_noeviction_rejects_writes_beyond_maxmemory(redis_cluster: RedisCluster) -> None:
    """With maxmemory reached, a noeviction master refuses writes with OOM and keeps
    every key — BullMQ's jobs are never silently dropped."""
    c = redis_cluster
    port = c.master_port_for_slot(c.keyslot("{bull}"))
    early = {f"{{bull}}:oom:early:{i}": f"job-{i}" for i in range(20)}
    filled: list[str] = []
    value = "x" * 100_000
    try:
        for i, (key, val) in enumerate(early.items()):
            # Half carry a TTL: ElastiCache's default volatile-lru would evict exactly those,
            # so their survival tells noeviction apart from it.
            ttl = ("EX", "3600") if i % 2 == 0 else ()
            assert c.run("SET", key, val, *ttl, port=port, cluster=False) == "OK"
        used = int(c.info(port, "INFO memory")["used_memory"])
        limit = used + 2 * 1024 * 1024  # 2 MB of headroom above what the node uses now
        assert c.run("CONFIG", "SET", "maxmemory", str(limit), port=port, cluster=False) == "OK"

        oom = None
        for i in range(100):  # 10 MB at most: bounded, far above the 2 MB headroom
            key = f"{{bull}}:oom:fill:{i}"
            reply = c.run("SET", key, value, port=port, cluster=False)
            if reply != "OK":
                oom = reply
                break
            filled.append(key)
        assert oom is not None, "100 x 100 kB writes never hit maxmemory"
        assert oom.startswith("OOM command not allowed when used memory > 'maxmemory'"), oom
        # The limit, not pre-existing usage, stopped the writes (at least one fitted), and it
        # was enforced (no more than the 2 MB headroom / 100 kB, plus the one admitted
        # while just under the limit, went in). Observed: 9 with Redis 7.0 + jemalloc.
        assert 1 <= len(filled) <= 22, len(filled)

        # Nothing was evicted to make room: every earlier key is still there.
        for key, val in early.items():
            assert c.run("GET", key, port=port, cluster=False) == val, key
        for key in filled:
            assert c.run("EXISTS", key, port=port, cluster=False) == "1", key
        assert c.info(port, "INFO stats")["evicted_keys"] == "0"
        # The refusal is about memory, not the key: once the client frees memory (noeviction
        # leaves that to the application), the same write is accepted again.
        for key in filled:
            assert c.run("DEL", key, port=port, cluster=False) == "1", key
        assert c.run("SET", f"{{bull}}:oom:fill:{len(filled)}", value, port=port,
                     cluster=False) == "OK"
        filled.append(f"{{bull}}:oom:fill:{len(filled)}")
    finally:
        c.run("CONFIG", "SET", "maxmemory", "0", port=port, cluster=False)
        for key in [*early, *filled]:
            c.run("DEL", key, port=port, cluster=False)
