#!/usr/bin/env bash
# For the parent pipeline's collect job (ci/gitlab/.gitlab-ci.yml): unpacks the artifacts of
# every cell job of the child pipeline that the bridge job `cells` started into the work
# tree, so that their store/cells/<id>/ folders land where collect reads them.
# GitLab gives a parent job no keyword for a child pipeline's artifacts, and the bridges API
# does not take the job token: TRTFORGE_API_TOKEN is a project access token with read_api.
# Needs curl, jq and unzip; CI_API_V4_URL, CI_PROJECT_ID and CI_PIPELINE_ID come from GitLab.
set -euo pipefail
: "${TRTFORGE_API_TOKEN:?set TRTFORGE_API_TOKEN (masked CI variable, read_api) to fetch the cells}"
api="$CI_API_V4_URL/projects/$CI_PROJECT_ID"
get() { curl -fsSL --header "PRIVATE-TOKEN: $TRTFORGE_API_TOKEN" "$@"; }

child="$(get "$api/pipelines/$CI_PIPELINE_ID/bridges" \
  | jq -r '.[] | select(.name == "cells") | .downstream_pipeline.id // empty')"
if [ -z "$child" ]; then
  echo "no child pipeline from the job cells: no cell results"
  exit 0
fi

zip="$(mktemp)"
trap 'rm -f "$zip"' EXIT
n=0
page=1
while :; do
  # Latest attempt of each job only (retried ones are left out by default).
  jobs="$(get "$api/pipelines/$child/jobs?per_page=100&page=$page")"
  [ "$(jq length <<<"$jobs")" -gt 0 ] || break
  for id in $(jq -r '.[] | select((.name | startswith("cell-")) and .artifacts_file != null) | .id' <<<"$jobs"); do
    get -o "$zip" "$api/jobs/$id/artifacts"
    # The archive holds the job's paths from the project root: store/cells/<id>/...
    unzip -qo "$zip"
    n=$((n + 1))
  done
  page=$((page + 1))
done
echo "fetched the artifacts of $n cell jobs of pipeline $child"
