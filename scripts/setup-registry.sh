#!/usr/bin/env bash
# Installs what tests/bundle.rs pushes and pulls bundles with: Debian's docker-registry (the
# CNCF distribution registry, started by the test on a loopback port and stopped after) and
# skopeo. Idempotent: nothing happens when both are on PATH. Needs apt (root, or sudo).
# Outside CI a failed install is a note (the registry test then skips); under CI=true it fails.
set -euo pipefail
have() { command -v "$1" >/dev/null 2>&1; }
if have docker-registry && have skopeo; then
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  sudo="sudo"
fi
# No service start during install (there may be no init system); the test starts its own.
if ! { $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker-registry skopeo \
       || { $sudo apt-get update -q && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker-registry skopeo; }; } >&2; then
  if [ "${CI:-}" = true ]; then
    echo "error: could not install docker-registry and skopeo with apt (needed by tests/bundle.rs under CI)" >&2
    exit 1
  fi
  echo "note: docker-registry/skopeo not installed; the registry test will skip" >&2
fi
