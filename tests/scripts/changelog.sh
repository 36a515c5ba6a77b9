#!/usr/bin/env bash
# The changelog: every fragment in changelogs/fragments/ is valid, changelogs/changelog.yaml
# is valid, CHANGELOG.md is exactly what antsibull-changelog generates from it (so nobody
# edits it by hand and a release never forgets to regenerate it), and the fragments not
# released yet make a valid release of galaxy.yml's version that names every module, role
# and playbook the collection ships (tried on a copy; nothing here is changed).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=$repo/.venv/bin
export PATH=$bin:$PATH
cd "$repo"
antsibull-changelog lint
antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

released=$("$bin/python" -c 'import sys, yaml; print(len(yaml.safe_load(open(sys.argv[1]))["releases"] or {}))' \
    changelogs/changelog.yaml)
if [ "$released" -gt 0 ]; then
    cp -r galaxy.yml changelogs CHANGELOG.md "$work/"
    (cd "$work" && antsibull-changelog generate)
    if ! diff -u CHANGELOG.md "$work/CHANGELOG.md"; then
        echo "CHANGELOG.md is not what changelogs/changelog.yaml generates: run 'antsibull-changelog generate'" >&2
        exit 1
    fi
else
    # antsibull-changelog generates nothing before the first release: CHANGELOG.md says so
    grep -q '^No release has been published yet' CHANGELOG.md || {
        echo "changelogs/changelog.yaml records no release, but CHANGELOG.md does not say so" >&2
        exit 1
    }
fi

# The next release, tried on a copy in an ansible_collections tree (new modules are found
# through ansible-doc, by their version_added).
copy=$work/release/ansible_collections/savepoint/virt
mkdir -p "$copy"
cp -r galaxy.yml changelogs plugins meta roles playbooks "$copy/"
version=$(sed -n "s/^version: *['\"]\{0,1\}\([^'\"]*\)['\"]\{0,1\} *$/\1/p" galaxy.yml)
(cd "$copy" && ANSIBLE_COLLECTIONS_PATH=$work/release antsibull-changelog release --date 2000-01-01 >/dev/null)
missing=()
for path in plugins/modules/*.py roles/* playbooks/*.yml; do
    name=$(basename "$path" .py)
    name=${name%.yml}
    grep -q "savepoint\\\\.virt\\\\.${name//_/\\\\_} " "$copy/CHANGELOG.md" || missing+=("$path")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "the release of $version from changelogs/fragments/ would not name: ${missing[*]}" >&2
    exit 1
fi
grep -q "^## v${version//./\\\\.}\$" "$copy/CHANGELOG.md" || {
    echo "the release from changelogs/fragments/ is not $version (galaxy.yml)" >&2
    exit 1
}
echo "changelog: fragments, changelog.yaml and CHANGELOG.md are consistent; the fragments make a valid $version release"
