#!/usr/bin/env bash
# ansible-test sanity, offline: the collection is copied to an ansible_collections
# tree, ansible-test's pip bootstrap is served from pip's own wheel (its usual
# download host is not reachable here), and every CPython that pyenv has is tested.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
py=$repo/.venv/bin/python
command -v shellcheck >/dev/null || {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck >/dev/null ||
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck >/dev/null; }
}

pip_version=$("$py" - <<'PY'
import pathlib, re, ansible_test
text = (pathlib.Path(ansible_test.__file__).parent / '_internal/python_requirements.py').read_text()
print(re.search(r"pip='([0-9.]+)'", text).group(1))
PY
)
cache=$HOME/.ansible/test/cache
mkdir -p "$cache"
if [ ! -f "$cache/get_pip_${pip_version//./_}.py" ]; then
    "$py" -m pip download -q --no-deps --only-binary=:all: -d "$cache" "pip==$pip_version"
    cat > "$cache/get_pip_${pip_version//./_}.py" <<'PY'
"""Offline stand-in for get-pip.py: install pip from the wheel cached beside this file."""
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
version = os.path.basename(__file__)[len('get_pip_'):-len('.py')].replace('_', '.')
sys.path.insert(0, os.path.join(here, 'pip-%s-py3-none-any.whl' % version))

from pip._internal.cli.main import main  # noqa: E402

args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
sys.exit(main(['install', '--upgrade', '--force-reinstall', '--no-index', '--find-links', here] + args))
PY
fi

# pyenv's shims for versions that are not selected exit 127; put the real interpreters first.
pybin=$HOME/.pybin
mkdir -p "$pybin"
if command -v pyenv >/dev/null; then
    for v in $(pyenv versions --bare | grep -E '^3\.(8|9|1[0-3])\.[0-9]+$'); do
        ln -sfn "$(pyenv root)/versions/$v/bin/python${v%.*}" "$pybin/python${v%.*}"
    done
fi
export PATH="$pybin:$repo/.venv/bin:$PATH"

dest=$(bash "$repo/tests/scripts/collection_copy.sh")
cd "$dest"
ansible-test sanity --color no --requirements "$@"
echo "ansible-test sanity: passed"
