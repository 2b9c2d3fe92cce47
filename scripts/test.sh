#!/usr/bin/env bash
# The test command: installs and starts what the tests need, builds once, runs every test.
#
#   scripts/test.sh            # everything
#   scripts/test.sh -p gateway # extra arguments go to `cargo test`
#
# Needs: a Rust toolchain (cargo) and root or sudo for apt-get on a fresh Debian machine.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs) first" >&2; exit 1; }

echo "==> formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "==> building the workspace (binaries and tests, once)"
cargo build --workspace --bins --tests --quiet

echo "==> servers: PostgreSQL, Redis, RabbitMQ, nginx (installed and started when missing)"
target/debug/flashsale setup

echo "==> Kubernetes manifests"; scripts/k8s-validate.sh
echo "==> tests"
cargo test --workspace "$@"
