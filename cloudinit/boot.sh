#!/bin/bash
# scaleladder boot: fetch secrets from Secrets Manager with the instance role (they are
# never in user data), write the app's env file (root-only), and (re)start the containers.
# Idempotent: safe to re-run after a secret rotation (`systemctl restart scaleladder`).
set -euo pipefail
export PATH="$PATH:/snap/bin"  # aws-cli comes as a snap; systemd's PATH lacks /snap/bin
# shellcheck source=/dev/null
source /etc/scaleladder/boot.env
umask 077
secret() { aws --region "$REGION" secretsmanager get-secret-value --secret-id "$1" --query SecretString --output text; }
version() { aws --region "$REGION" secretsmanager get-secret-value --secret-id "$1" --query VersionId --output text; }
# The versions this run uses, taken before the values: a rotation landing in between shows up
# as a changed version at the next scaleladder-refresh run, never as a missed one.
versions="$(version "$DB_SECRET_ARN") $(version "$DB_READ_SECRET_ARN")"

# RDS CA bundle, so clients verify the server (sslmode=verify-full). (The bootstrap unit may
# have fetched it already; fetching again is harmless.)
curl -fsS --retry 5 "https://truststore.pki.rds.amazonaws.com/${REGION}/${REGION}-bundle.pem" -o /etc/scaleladder/rds-ca.pem
chmod 0644 /etc/scaleladder/rds-ca.pem

# The app's own logins: db-app (read-write) and db-app-ro (read-only), never db-master.
DB_SECRET="$(secret "$DB_SECRET_ARN")" DB_READ_SECRET="$(secret "$DB_READ_SECRET_ARN")" \
REDIS_TOKEN="$(secret "$REDIS_SECRET_ARN")" python3 - > /etc/scaleladder/app.env.new <<'PY'
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
cat /etc/scaleladder/app.plain.env >> /etc/scaleladder/app.env.new
mv /etc/scaleladder/app.env.new /etc/scaleladder/app.env

run() {  # name, extra args...
  local name=$1; shift
  docker rm -f "$name" >/dev/null 2>&1 || true
  docker run -d --name "$name" --restart unless-stopped --read-only --tmpfs /tmp \
    --security-opt no-new-privileges --env-file /etc/scaleladder/app.env \
    -v /etc/scaleladder/rds-ca.pem:/etc/ssl/rds-ca.pem:ro "$@"
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
case "$REGISTRY_AUTH" in
  ecr) retry 5 ecr_login >/dev/null ;;
  secret) retry 5 secret_login >/dev/null ;;
  none) ;;
  *) echo "unknown REGISTRY_AUTH=$REGISTRY_AUTH" >&2; exit 1 ;;
esac
retry 5 docker pull "$IMAGE"
# The pulled image is all later starts need: drop the stored login (docker keeps it
# unencrypted in /root/.docker/config.json).
if [[ "$REGISTRY_AUTH" != none ]]; then docker logout "$REGISTRY" >/dev/null; fi
if [[ " $ROLES " == *" api "* ]]; then
  run api -e PORT="$APP_PORT" -p "127.0.0.1:${APP_PORT}:${APP_PORT}" "$IMAGE"
fi
if [[ " $ROLES " == *" worker "* ]]; then
  # shellcheck disable=SC2086 # WORKER_COMMAND is a word list validated by the config model
  run worker "$IMAGE" $WORKER_COMMAND
fi
# Recorded once the containers run on these credentials (scaleladder-refresh compares).
mkdir -p /var/lib/scaleladder
echo "$versions" > /var/lib/scaleladder/db-secret-versions
