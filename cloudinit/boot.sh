#!/bin/bash
# scaleladder boot: fetch secrets from Secrets Manager with the instance role (they are
# never in user data), write the app's env file (root-only), and (re)start the containers.
# Idempotent: safe to re-run after a secret rotation (`systemctl restart scaleladder`).
#
# Day-2 steps (ansible/deploy.yml runs them one by one for a blue/green image switch; each
# is the same code a boot runs, on the env file the last boot wrote):
#   scaleladder-boot pull IMAGE             registry login, pull, logout
#   scaleladder-boot api NAME PORT IMAGE    (re)start API container NAME on 127.0.0.1:PORT
#   scaleladder-boot worker IMAGE           (re)start the worker container
#   scaleladder-boot env                    rewrite app.env from the current secrets, print their versions
#   scaleladder-boot record VERSIONS        record them once the containers run on them
set -euo pipefail
export PATH="$PATH:/snap/bin"  # aws-cli comes as a snap; systemd's PATH lacks /snap/bin
# Exported (set -a): the env-file writer below is a python3 child that reads DB_HOST, DB_PORT,
# DB_VIA_PGBOUNCER ... from its environment; a plain `source` left them to this shell only and the
# writer failed with KeyError (found by tests/integration/test_cutover.py).
set -a
# shellcheck source=/dev/null
source "${SCALELADDER_BOOT_ENV:-/etc/scaleladder/boot.env}"  # another file only in ansible/'s tests
set +a
etc="${SCALELADDER_ETC:-/etc/scaleladder}"  # other directories only in tests/integration/test_cutover.py
versions_file="${SCALELADDER_VERSIONS_FILE:-/var/lib/scaleladder/db-secret-versions}"  # scaleladder-refresh reads it
umask 077
secret() { aws --region "$REGION" secretsmanager get-secret-value --secret-id "$1" --query SecretString --output text; }
version() { aws --region "$REGION" secretsmanager get-secret-value --secret-id "$1" --query VersionId --output text; }
run() {  # name, extra args...
  local name=$1; shift
  docker rm -f "$name" >/dev/null 2>&1 || true
  docker run -d --name "$name" --restart unless-stopped --read-only --tmpfs /tmp \
    --security-opt no-new-privileges --env-file "$etc"/app.env \
    -v "$etc"/rds-ca.pem:/etc/ssl/rds-ca.pem:ro "$@"
}
# Registry login (REGISTRY_AUTH from ladder/registry.py): ECR with the instance role's
# short-lived token, another private registry with the Secrets Manager credentials, or
# none (public image). Passwords go through pipes to --password-stdin, never argv or logs.
retry() {  # attempts, command...: ECR/Secrets Manager/registry hiccups at boot are retried
  local attempts=$1 n=1; shift
  until "$@"; do
    if (( n >= attempts )); then return 1; fi
    sleep $(( n * 5 )); n=$(( n + 1 ))
  done
}
ecr_login() {
  aws ecr get-login-password --region "$REGISTRY_REGION" | docker login --username AWS --password-stdin "$REGISTRY"
}
secret_login() {
  local creds user
  creds="$(aws --region "$REGISTRY_REGION" secretsmanager get-secret-value --secret-id "$REGISTRY_SECRET_ARN" \
    --query SecretString --output text)" || return 1
  user="$(printf '%s' "$creds" | python3 -c 'import json, sys; print(json.load(sys.stdin)["username"])')" || return 1
  printf '%s' "$creds" | python3 -c 'import json, sys; sys.stdout.write(json.load(sys.stdin)["password"])' \
    | docker login --username "$user" --password-stdin "$REGISTRY"
}
pull() {  # image
  case "$REGISTRY_AUTH" in
    ecr) retry 5 ecr_login >/dev/null ;;
    secret) retry 5 secret_login >/dev/null ;;
    none) ;;
    *) echo "unknown REGISTRY_AUTH=$REGISTRY_AUTH" >&2; exit 1 ;;
  esac
  retry 5 docker pull "$1"
  # The pulled image is all later starts need: drop the stored login (docker keeps it
  # unencrypted in /root/.docker/config.json).
  if [[ "$REGISTRY_AUTH" != none ]]; then docker logout "$REGISTRY" >/dev/null; fi
}
api() { run "$1" -e PORT="$APP_PORT" -p "127.0.0.1:$2:${APP_PORT}" "$3"; }  # name, host port, image
# shellcheck disable=SC2086 # WORKER_COMMAND is a word list validated by the config model
worker() { run worker "$1" $WORKER_COMMAND; }  # image
write_env() {  # sets $versions: the secret versions app.env is written from
  # The versions this run uses, taken before the values: a rotation landing in between shows up
  # as a changed version at the next scaleladder-refresh run, never as a missed one.
  versions="$(version "$DB_SECRET_ARN") $(version "$DB_READ_SECRET_ARN")"

  # RDS CA bundle, so clients verify the server (sslmode=verify-full). (The bootstrap unit may
  # have fetched it already; fetching again is harmless.)
  curl -fsS --retry 5 "https://truststore.pki.rds.amazonaws.com/${REGION}/${REGION}-bundle.pem" -o "$etc"/rds-ca.pem
  chmod 0644 "$etc"/rds-ca.pem

  # The app's own logins: db-app (read-write) and db-app-ro (read-only), never db-master.
  DB_SECRET="$(secret "$DB_SECRET_ARN")" DB_READ_SECRET="$(secret "$DB_READ_SECRET_ARN")" \
  REDIS_TOKEN="$(secret "$REDIS_SECRET_ARN")" python3 - > "$etc"/app.env.new <<'PY'
import json, os
from urllib.parse import quote

e = os.environ
def url(secret: str, host: str, name: str, tls: str) -> str:
    db = json.loads(secret)
    user, password = quote(db["username"], safe=""), quote(db["password"], safe="")
    return f"postgres://{user}:{password}@{host}:{e['DB_PORT']}/{name}?{tls}"

# Direct to RDS (phases 1-2): verify-full against the RDS CA. Through PgBouncer (3+): TLS to
# PgBouncer, whose per-host self-signed certificate no CA vouches for, so `require` (encrypted,
# not authenticated; PgBouncer verifies RDS itself). Never `disable`. node-postgres reads
# `require` as verify-full unless told to follow libpq (brianc/node-postgres#3473): uselibpqcompat.
if e["DB_VIA_PGBOUNCER"] == "true":
    tls = "sslmode=require&uselibpqcompat=true"
else:
    tls = "sslmode=verify-full&sslrootcert=/etc/ssl/rds-ca.pem"
print("DATABASE_URL=" + url(e["DB_SECRET"], e["DB_HOST"], e["DB_NAME"], tls))
print("DATABASE_READ_URL=" + url(e["DB_READ_SECRET"], e["DB_READ_HOST"], e["DB_READ_NAME"], tls))
print(f"REDIS_URL=rediss://:{quote(e['REDIS_TOKEN'], safe='')}@{e['REDIS_HOST']}:{e['REDIS_PORT']}")
PY
  cat "$etc"/app.plain.env >> "$etc"/app.env.new
  mv "$etc"/app.env.new "$etc"/app.env
}
record() {  # versions: once the containers run on them (scaleladder-refresh compares)
  mkdir -p "$(dirname "$versions_file")"
  echo "$1" > "$versions_file"
}
case "${1:-}" in
  pull) pull "$2"; exit 0 ;;
  api) api "$2" "$3" "$4"; exit 0 ;;
  worker) worker "$2"; exit 0 ;;
  env) write_env; echo "$versions"; exit 0 ;;
  record) record "$2"; exit 0 ;;
  "") ;;
  *) echo "usage: scaleladder-boot [pull IMAGE | api NAME PORT IMAGE | worker IMAGE | env | record VERSIONS]" >&2
     exit 1 ;;
esac

# Phase 1's VM and nginx-mode app hosts (no Auto Scaling group): the image is an SSM parameter
# that `pulumi up` and ansible/deploy.yml write (components/ops.py), so a new image never
# changes these hosts' user data (which would replace them).
if [[ -n "${IMAGE_PARAMETER:-}" ]]; then
  IMAGE="$(retry 5 aws --region "$REGION" ssm get-parameter --name "$IMAGE_PARAMETER" \
    --query Parameter.Value --output text)"
fi

write_env
pull "$IMAGE"
if [[ " $ROLES " == *" api "* ]]; then
  api api "$APP_PORT" "$IMAGE"
fi
if [[ " $ROLES " == *" worker "* ]]; then
  worker "$IMAGE"
fi
record "$versions"
