#!/usr/bin/env bash
# The version matrix: the fast set (unit tests, provider contract on libvirt's test
# driver, the tarball build) and a playbook that runs the modules, on the LOWEST
# ansible-core that meta/runtime.yml's requires_ansible admits and on the NEWEST release,
# each on a Python its controller supports. The main venv (make test) covers 2.19.
# Each pair gets its own venv under .cache/matrix/, built here and reused while its
# inputs stay the same. A Python that cannot be found is a failure, never a skip.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"

# ansible-core series : Python. 2.16's controller runs on 3.10-3.12 (3.10 is the lowest
# Python a 2.16 controller accepts); 2.20+ need Python >= 3.12.
MATRIX=${SAVEPOINT_MATRIX:-"2.16:3.10 2.21:3.13"}
# The same selection as make test-fast (unit tests and the libvirt test driver).
FAST='not (qemu or vmware or openstack or ee or browser or playbook)'

floor=$(sed -n "s/^requires_ansible: *['\"]>=\([0-9]*\.[0-9]*\)\.[0-9]*['\"].*/\1/p" meta/runtime.yml)
lowest=${MATRIX%%:*}
if [ "$floor" != "$lowest" ]; then
    echo "matrix: meta/runtime.yml requires_ansible admits ansible-core $floor but the matrix starts at $lowest" >&2
    exit 1
fi

find_python() {  # a real interpreter of version $1 (pyenv's shims for other versions exit 127)
    local v=$1 cand
    if command -v pyenv >/dev/null; then
        for cand in "$(pyenv root)"/versions/"$v".*/bin/python"$v"; do
            [ -x "$cand" ] && "$cand" -c '' 2>/dev/null && { echo "$cand"; return 0; }
        done
    fi
    for cand in "python$v" "/usr/bin/python$v"; do
        command -v "$cand" >/dev/null && "$cand" -c '' 2>/dev/null && { command -v "$cand"; return 0; }
    done
    return 1
}

mkdir -p .cache/matrix
for pair in $MATRIX; do
    core=${pair%%:*}
    pyver=${pair##*:}
    next=${core%.*}.$((${core#*.} + 1))
    py=$(find_python "$pyver") || {
        echo "matrix: no Python $pyver found (pyenv install $pyver, or put python$pyver on PATH)" >&2
        exit 1
    }
    venv=$repo/.cache/matrix/core$core-py$pyver
    spec="ansible-core>=$core,<$next"
    # what goes into a venv: rebuilt when any of it changes (this script included)
    inputs=$(printf '%s\n' "$py" "$spec" "$(cat requirements.txt)" "$(cat "$0")" | sha256sum | cut -c1-16)
    (
        flock 9  # other checkouts on this machine share .cache
        if [ "$(cat "$venv/.inputs" 2>/dev/null)" != "$inputs" ]; then
            echo "matrix: building $venv ($spec on $("$py" -V 2>&1))"
            rm -rf "$venv"
            "$py" -m venv "$venv"
            "$venv/bin/python" -m pip install -q --upgrade pip
            # the collection's own Python deps (libvirt-python & co.), the test runner, and
            # what test modules the fast set collects import at module level (ansible-runner,
            # bindep for the EE checks, pillow for the report screenshot), though it deselects them
            "$venv/bin/python" -m pip install -q "$spec" -r requirements.txt pytest pytest-xdist ansible-runner \
                bindep pillow
            echo "$inputs" > "$venv/.inputs"
        fi
    ) 9>"$venv.lock"
    found=$("$venv/bin/python" -c 'import ansible.release, platform; print(ansible.release.__version__, platform.python_version())')
    echo "matrix: ansible-core / Python: $found; pytest -m \"$FAST\""
    "$venv/bin/python" -m pytest -q -p no:cacheprovider -m "$FAST"
    echo "matrix: ansible-core $core / Python $pyver: modules run through ansible-playbook"
    ANSIBLE_COLLECTIONS_PATH=$repo/build/collections ANSIBLE_PYTHON_INTERPRETER=$venv/bin/python \
        ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false ANSIBLE_NOCOLOR=1 \
        "$venv/bin/ansible-playbook" tests/release/matrix/smoke.yml
done
echo "matrix: passed on $MATRIX"
