#!/usr/bin/env bash
# The changelog (antsibull-changelog), then ansible-lint, production profile, offline,
# on a copy of the collection.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
bash "$repo/tests/scripts/changelog.sh"
dest=$(bash "$repo/tests/scripts/collection_copy.sh")
cd "$dest"
ANSIBLE_COLLECTIONS_PATH=${dest%/ansible_collections/savepoint/virt} "$repo/.venv/bin/ansible-lint" "$@"
