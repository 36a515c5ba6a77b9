"""One tiny real Linux guest (services.linux_guest.LinuxGuest) per molecule scenario.

The collection's own molecule scenarios (extensions/molecule/guard_*, prune_foreign) call this
from their create and destroy playbooks, with the controller's Python:

    python tests/services/molecule_guest.py start DIR [--prefix P] [--python]
    python tests/services/molecule_guest.py stop DIR

start boots a guest (unique domain name P-<8 hex>, SSH and HTTP forwarded to free 127.0.0.1
ports) and writes DIR/guest.json (name, ports, key, health URL) and DIR/known_hosts (its host
key). The name is written before the guest is defined, so a stop after a create that died half
way still finds the domain. stop destroys the guest named in DIR/guest.json (domain, snapshot
metadata, disk, run directory) and removes the file; without the file it does nothing
(molecule runs destroy first). Both raise -- exit non-zero with the reason -- on failure.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Dict, List

# run as a script, its own directory comes first on sys.path, and tests/services/libvirt.py would
# shadow the libvirt binding: import from tests/ instead
sys.path[0] = str(Path(__file__).resolve().parents[1])

from services.linux_guest import BOOT_TIMEOUT, LinuxGuest, _connect  # noqa: E402

STATE = 'guest.json'


def _write(path: Path, data: Dict[str, object]) -> None:
    tmp = path.with_suffix('.tmp')
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + '\n')
    tmp.replace(path)


def start(directory: Path, prefix: str, with_python: bool, timeout: float) -> Dict[str, object]:
    directory.mkdir(parents=True, exist_ok=True)
    state = directory / STATE
    if state.exists():
        raise RuntimeError('%s exists: guest %s was not destroyed; run molecule destroy first'
                           % (state, json.loads(state.read_text()).get('name')))
    guest = LinuxGuest(prefix=prefix, with_python=with_python)
    _write(state, {'name': guest.name, 'run_dir': str(guest.run_dir), 'started': False})
    guest.start(timeout=timeout)  # destroys the guest itself when it does not come up
    data: Dict[str, object] = {
        'name': guest.name, 'uuid': guest.uuid, 'run_dir': str(guest.run_dir), 'started': True,
        'address': '127.0.0.1', 'ssh_port': guest.ssh_port, 'http_port': guest.http_port,
        'health_url': guest.health_url, 'key_file': str(guest.key_file),
        'known_hosts': str(directory / 'known_hosts'), 'python': with_python,
    }
    shutil.copyfile(guest.known_hosts, directory / 'known_hosts')
    _write(state, data)
    return data


def stop(directory: Path) -> List[str]:
    state = directory / STATE
    if not state.exists():
        return []
    data = json.loads(state.read_text())
    guest = LinuxGuest()
    guest.name, guest.run_dir = str(data['name']), Path(str(data['run_dir']))
    guest._conn = _connect()
    guest.destroy()  # looks the domain up by name; nothing to do when it was never defined
    state.unlink()
    (directory / 'known_hosts').unlink(missing_ok=True)
    return [guest.name]


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description='Boot or destroy the Linux guest of a molecule scenario.')
    parser.add_argument('action', choices=['start', 'stop'])
    parser.add_argument('directory', type=Path)
    parser.add_argument('--prefix', default='sp-mol')
    parser.add_argument('--python', action='store_true', help='the guest variant with Python 3')
    # boot deadline for an emulated guest on a busy machine (LINUX_GUEST_BOOT_TIMEOUT raises it)
    parser.add_argument('--timeout', type=float, default=max(BOOT_TIMEOUT, 600.0))
    args = parser.parse_args(argv)
    if args.action == 'start':
        print(json.dumps(start(args.directory, args.prefix, args.python, args.timeout)))
    else:
        print(json.dumps({'destroyed': stop(args.directory)}))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
