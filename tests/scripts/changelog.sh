#!/usr/bin/env bash
# The changelog: every fragment in changelogs/fragments/ is valid, changelogs/changelog.yaml
# is valid, and CHANGELOG.md is exactly what antsibull-changelog generates from it (so
# nobody edits it by hand and a release never forgets to regenerate it).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=$repo/.venv/bin
cd "$repo"
"$bin/antsibull-changelog" lint
"$bin/antsibull-changelog" lint-changelog-yaml changelogs/changelog.yaml
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r galaxy.yml changelogs CHANGELOG.md "$work/"
(cd "$work" && "$bin/antsibull-changelog" generate)
if ! diff -u CHANGELOG.md "$work/CHANGELOG.md"; then
    echo "CHANGELOG.md is not what changelogs/changelog.yaml generates: run 'antsibull-changelog generate'" >&2
    exit 1
fi
echo "changelog: fragments, changelog.yaml and CHANGELOG.md are consistent"
