"""Real libvirt/QEMU for tests and the demo: start the daemon, make tiny guests
with no OS, and read/write disk patterns through QEMU so a revert can be proven.

Raises on every failure: a test that needs the real service must fail, not skip.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import List, Optional

import libvirt
import libvirt_qemu

HERE = Path(__file__).resolve().parent / 'libvirt'
URI = 'qemu:///system'
IMAGES = Path('/var/lib/libvirt/images')
QEMU_LOGS = Path('/var/log/libvirt/qemu')
# qemu-io through the monitor must address the device's qdev path: writing
# through the block node name is refused ("Permission conflict").
QDEV = 'virtio-disk0/virtio-backend'

DOMAIN_XML = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='{image}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    {agent}
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>"""
# A guest-agent channel with no agent behind it: libvirt knows the channel, but
# nothing answers, which is what "quiesce unavailable" looks like on a real host.
AGENT_CHANNEL = ("<channel type='unix'><source mode='bind'/>"
                 "<target type='virtio' name='org.qemu.guest_agent.0'/></channel>")


#: whether ensure_daemon() started the daemon in this process (so the test session stops it again)
STARTED_HERE = {'daemon': False}


def ensure_daemon(python: Optional[str] = None) -> None:
    """Start libvirtd (installing it if needed); raise with its output when it cannot."""
    env = dict(os.environ)
    if python:
        env['LIBVIRT_UP_PYTHON'] = python
    proc = subprocess.run(['bash', str(HERE / 'up.sh')], env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError('libvirt daemon could not be started:\n%s%s' % (proc.stdout, proc.stderr))
    if 'libvirt-up: starting ' in proc.stderr:
        STARTED_HERE['daemon'] = True


def stop_daemon() -> None:
    subprocess.run(['bash', str(HERE / 'up.sh'), 'stop'], check=False, capture_output=True)


class TinyGuest:
    """A 64 MiB guest with one 64 MiB qcow2 disk and no OS: SeaBIOS idles, snapshots work."""

    def __init__(self, conn: 'libvirt.virConnect', name: Optional[str] = None, agent_channel: bool = False):
        self.conn = conn
        self.name = name or 'sp-test-%s' % uuid.uuid4().hex[:8]
        self.image = IMAGES / ('%s.qcow2' % self.name)
        self.agent_channel = agent_channel
        self.dom = None

    def create(self, start: bool = True) -> 'TinyGuest':
        IMAGES.mkdir(parents=True, exist_ok=True)
        subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', str(self.image), '64M'], check=True)
        xml = DOMAIN_XML.format(name=self.name, image=self.image, agent=AGENT_CHANNEL if self.agent_channel else '')
        self.dom = self.conn.defineXML(xml)
        if start:
            self.dom.create()
        return self

    @property
    def state(self) -> str:
        return {1: 'running', 3: 'paused', 5: 'off'}.get(self.dom.state()[0], str(self.dom.state()[0]))

    def _log(self) -> Path:
        return QEMU_LOGS / ('%s.log' % self.name)

    def _qemu_io(self, command: str) -> str:
        """Run qemu-io on the live disk; its output lands in the guest's log file."""
        log = self._log()
        before = log.stat().st_size if log.exists() else 0
        libvirt_qemu.qemuMonitorCommand(self.dom, 'qemu-io -d %s "%s"' % (QDEV, command),
                                        libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with open(log, 'rb') as handle:
                handle.seek(before)
                text = handle.read().decode(errors='replace')
            if 'bytes at offset' in text or 'Pattern verification failed' in text:
                return text
            time.sleep(0.05)
        raise RuntimeError('qemu-io printed nothing for %r in %s' % (command, log))

    def _qemu_io_offline(self, command: str, read_only: bool) -> str:
        args = ['qemu-io', '-f', 'qcow2'] + (['-r'] if read_only else []) + ['-c', command, str(self.image)]
        return subprocess.run(args, check=True, capture_output=True, text=True).stdout

    def write_pattern(self, pattern: int, offset: int = 0, length: int = 4096) -> None:
        command = 'write -P 0x%02x %d %d' % (pattern, offset, length)
        out = self._qemu_io(command) if self.state != 'off' else self._qemu_io_offline(command, False)
        if 'wrote %d/%d bytes' % (length, length) not in out:
            raise RuntimeError('write of pattern 0x%02x failed: %s' % (pattern, out))

    def has_pattern(self, pattern: int, offset: int = 0, length: int = 4096) -> bool:
        """True when the disk holds the pattern (qemu-io exits 0 either way: read its words)."""
        command = 'read -P 0x%02x %d %d' % (pattern, offset, length)
        out = self._qemu_io(command) if self.state != 'off' else self._qemu_io_offline(command, True)
        if 'Pattern verification failed' in out:
            return False
        if 'read %d/%d bytes' % (length, length) in out:
            return True
        raise RuntimeError('cannot tell from qemu-io output: %s' % out)

    def destroy(self) -> None:
        """Remove the guest, its snapshot metadata, its disk and any overlays."""
        if self.dom is not None:
            try:
                if self.dom.isActive():
                    self.dom.destroy()
                self.dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
            except libvirt.libvirtError:
                pass
        for path in IMAGES.glob('%s.*' % self.name):
            path.unlink()
        log = self._log()
        if log.exists():
            log.unlink()


class TinyGuests:
    """The tiny guests one test makes (``guests()``, ``guests(start=False)``, ``guests(agent_channel=True)``),
    each named ``<prefix>-<random>``; ``destroy()`` removes every one of them, even when one removal fails."""

    def __init__(self, conn: 'libvirt.virConnect', prefix: str = 'sp-test'):
        self.conn = conn
        self.prefix = prefix
        self.made: List[TinyGuest] = []

    def __call__(self, start: bool = True, agent_channel: bool = False) -> TinyGuest:
        guest = TinyGuest(self.conn, name='%s-%s' % (self.prefix, uuid.uuid4().hex[:8]), agent_channel=agent_channel)
        self.made.append(guest)
        return guest.create(start=start)

    def destroy(self) -> None:
        errors = []
        for guest in self.made:
            try:
                guest.destroy()
            except Exception as exc:  # pylint: disable=broad-except  # remove the others, then report
                errors.append('%s: %s' % (guest.name, exc))
        self.made = []
        if errors:
            raise RuntimeError('could not remove test guests: %s' % '; '.join(errors))
