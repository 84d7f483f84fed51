"""Container images phase 6 runs besides the app's own: each tag checked to exist, with its source.

Bump deliberately: a tag that was never published leaves pods in ImagePullBackOff and
`pulumi up` waiting until its timeout.
"""

from __future__ import annotations

# PgBouncer: CloudNativePG's (CNCF) build of upstream PgBouncer on Debian slim, the image the
# CloudNativePG operator itself runs; PgBouncer publishes no image of its own. Tags are the
# plain PgBouncer version: cloudnative-pg/pgbouncer-containers release tags `vX.Y.Z-N` up to
# 1.24.1, then docker-bake.hcl `pgBouncerVersion` (tag = plainVersion, e.g. "1.25.2" from
# "1.25.2-1.pgdg13+1", commit 332e403 of 2026-05-11; 1.25.0 and 1.25.1 from commits 8c88257
# and c4b6dd3). There is no 1.23.1. Each `pgbouncer.version` maps to its newest published patch.
# The image also carries `openssl` (postgresql-common -> ssl-cert -> openssl), which the pod
# uses to make its own client-TLS key.
PGBOUNCER_REPOSITORY = "ghcr.io/cloudnative-pg/pgbouncer"
PGBOUNCER_PUBLISHED = ("1.17.0", "1.18.0", "1.19.0", "1.19.1", "1.20.0", "1.20.1", "1.21.0", "1.22.0", "1.22.1",
                       "1.23.0", "1.24.0", "1.24.1", "1.25.0", "1.25.1", "1.25.2")


def _newest_patches(published: tuple[str, ...]) -> dict[str, str]:
    newest: dict[str, str] = {}
    for tag in sorted(published, key=lambda t: tuple(int(x) for x in t.split("."))):
        newest[tag.rsplit(".", 1)[0]] = tag
    return newest


PGBOUNCER_TAGS: dict[str, str] = _newest_patches(PGBOUNCER_PUBLISHED)
"""PgBouncer minor -> the newest published tag of it."""
PGBOUNCER_UID = 998
"""The image's `pgbouncer` user (Dockerfile: `useradd -r --uid 998 --gid 996 pgbouncer`)."""


def pgbouncer_image(version: str) -> str | None:
    """The published image for PgBouncer `version` (a minor like "1.22"), None if there is none."""
    tag = PGBOUNCER_TAGS.get(version)
    return f"{PGBOUNCER_REPOSITORY}:{tag}" if tag else None


# The bootstrap Job's psql: the Docker Official Image `postgres` (docker-library/postgres), tag
# = a PostgreSQL major (every supported major is published under its bare number). uid 999 is
# its `postgres` user (docker-library/repo-info repos/postgres: `useradd -r -g postgres --uid=999`).
POSTGRES_REPOSITORY = "docker.io/library/postgres"
POSTGRES_UID = 999
PSQL_MIN_MAJOR = 15
"""db/bootstrap.sql reads its passwords with `\\getenv`, new in psql 15; newer psql talks to older servers."""


def postgres_image(engine_version: str) -> str:
    """psql of the database's major (`database.engineVersion` "16" or "16.4"), at least PSQL_MIN_MAJOR."""
    return f"{POSTGRES_REPOSITORY}:{max(int(engine_version.split('.')[0]), PSQL_MIN_MAJOR)}"
