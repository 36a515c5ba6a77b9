"""Test helper run by the guard playbooks on the controller: write or check a no-OS
guest's disk pattern (its "file"), the way a change and a health check would.

    disk.py write GUEST 0xcd     the change
    disk.py healthy GUEST        exit 1 when the disk holds the "broken" pattern 0xee
"""

import sys
from pathlib import Path

import libvirt

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from services.libvirt import TinyGuest  # noqa: E402  (tests/ on the path first)

BROKEN = 0xee


def main() -> int:
    action, name = sys.argv[1], sys.argv[2]
    conn = libvirt.open('qemu:///system')
    guest = TinyGuest(conn, name)
    guest.dom = conn.lookupByName(name)
    if action == 'write':
        guest.write_pattern(int(sys.argv[3], 16))
        return 0
    if guest.has_pattern(BROKEN):
        print('%s: health page broken (disk holds 0x%02x)' % (name, BROKEN))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
