#!/usr/bin/env bash
# Writes .env beside docker-compose.yml with generated secrets, once: the services refuse to
# start with an empty, short or well-known TOKEN_SECRET or INTERNAL_KEY, and docker-compose
# refuses the file without them. An existing .env is kept (its secrets are yours); pass
# --force to replace it.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -e .env && "${1:-}" != "--force" ]]; then
    echo ".env exists: kept (scripts/compose-env.sh --force writes a new one)"
    exit 0
fi
secret() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
umask 077
cat > .env <<ENV
# Written by scripts/compose-env.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ). Keep it out of git.
TOKEN_SECRET=$(secret)
INTERNAL_KEY=$(secret)
INFLUX_TOKEN=$(secret)
# The group of the Docker socket, which Telegraf reads the containers' CPU and memory through.
DOCKER_GID=$(stat -c %g /var/run/docker.sock 2>/dev/null || echo 999)
ENV
echo "wrote .env (TOKEN_SECRET, INTERNAL_KEY, INFLUX_TOKEN: 32 random bytes each; DOCKER_GID)"
