#!/usr/bin/env bash
# Checks CI configuration files against their schemas, offline, with the validators that
# scripts/setup.sh installs into ./.venv:
#   github-workflow  check-jsonschema, GitHub Actions workflow schema (vendored in the package)
#   gitlab-ci        check-jsonschema, GitLab CI schema (vendored in the package)
#   k8s              kubernetes-validate --strict (schemas bundled in the package; unknown
#                    fields are errors), every document of a multi-document file, against
#                    Kubernetes $TRTFORGE_K8S_VERSION (default 1.30)
# Usage: scripts/validate-ci.sh KIND FILE...
# Prints "ok FILE" or "FAIL FILE" and the validator's errors for each file; exits 1 when any
# file is invalid, 2 on a usage error or when the validators are not installed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/.venv/bin"
usage="usage: scripts/validate-ci.sh github-workflow|gitlab-ci|k8s FILE..."
if [ $# -lt 2 ]; then
  echo "$usage" >&2
  exit 2
fi
kind="$1"
shift
case "$kind" in
  github-workflow|gitlab-ci) tool="$bin/check-jsonschema" ;;
  k8s) tool="$bin/kubernetes-validate" ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
if [ ! -x "$tool" ]; then
  echo "$tool is missing: run scripts/setup.sh" >&2
  exit 2
fi
k8s_version="${TRTFORGE_K8S_VERSION:-1.30}"

# One file; its errors on stdout, status 0 when valid.
check() {
  # YAML whatever the file's name (a generated child pipeline may have none).
  case "$kind" in
    github-workflow)
      "$tool" --builtin-schema vendor.github-workflows --force-filetype yaml "$1" ;;
    gitlab-ci)
      # The transform reads GitLab's !reference tags instead of failing on them.
      "$tool" --builtin-schema vendor.gitlab-ci --force-filetype yaml --data-transform gitlab-ci "$1" ;;
    k8s)
      # kubernetes-validate passes a document whose kind it has no schema for, and a file
      # with no documents, with at most a WARN line: --quiet leaves only WARN, ERROR and
      # FATAL lines, so any output is a failure here.
      local out
      out="$("$tool" --strict --quiet -k "$k8s_version" "$1" 2>&1)" || { echo "$out"; return 1; }
      if [ -n "$out" ]; then
        echo "$out"
        return 1
      fi
      if ! "$bin/python" -c 'import sys, yaml; sys.exit(not any(yaml.safe_load_all(open(sys.argv[1]))))' "$1"; then
        echo "no Kubernetes resources in $1"
        return 1
      fi ;;
  esac
}

rc=0
for f in "$@"; do
  if out="$(check "$f" 2>&1)"; then
    echo "ok $f"
  else
    echo "FAIL $f"
    printf '%s\n' "$out" | sed 's/^/  /'
    rc=1
  fi
done
exit "$rc"
