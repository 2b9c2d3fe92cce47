#!/usr/bin/env bash
# The main job: the sync vs async comparison, natively (no Docker).
#
#   scripts/compare.sh                 # the study's protocol on both modes, both scenarios
#   scripts/compare.sh --quick         # a short smoke profile
#   scripts/compare.sh --help          # every option of `flashsale compare`
#
# Needs: a Rust toolchain (cargo) and root or sudo for apt-get on a fresh Debian machine;
# PostgreSQL, Redis, RabbitMQ, nginx and k6 are installed and started when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs) first" >&2; exit 1; }

echo "==> building the release binaries (once)"
cargo build --release --workspace --bins --quiet
target/release/flashsale setup
exec target/release/flashsale compare "$@"
