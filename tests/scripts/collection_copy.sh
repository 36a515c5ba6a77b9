#!/usr/bin/env bash
# A real copy of the collection in an ansible_collections tree, for ansible-test
# and ansible-lint: symlinks are refused, and inside this git checkout (whose
# .gitignore hides build/) ansible-test would see no files. Prints its path.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
# One copy per checkout: two checkouts linting at once must not rsync --delete each other's files.
root=${SAVEPOINT_COPY_ROOT:-${TMPDIR:-/tmp}/savepoint-virt-collection-$(printf %s "$repo" | cksum | cut -d" " -f1)}
dest=$root/ansible_collections/savepoint/virt
# rsync is not on a fresh Debian image; lint.sh and sanity.sh both come here first.
command -v rsync >/dev/null || {
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends rsync >/dev/null 2>&1 ||
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends rsync >/dev/null; }
}
mkdir -p "$dest"
rsync -a --delete \
    --exclude /.git --exclude /.venv --exclude /build --exclude /.cache --exclude /dist \
    --exclude /tests/output --exclude __pycache__ --exclude .pytest_cache \
    "$repo/" "$dest/"
echo "$dest"
