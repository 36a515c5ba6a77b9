"""nova virt driver of the test stack: nova's fake driver + a real upload.

- snapshot() (createImage of an image-backed server) uploads ~1 KiB, so the
  image goes 'active'; the stock fake driver leaves it 'queued' forever.
- Base class FakeDriverWithoutFakeNodes: one node named after [DEFAULT] host
  whose UUID is persisted in $state_path/compute_id, so nova-compute can be
  restarted (with plain FakeDriver nova 34 refuses: "No local node identity
  found, but this is not our first startup on this host").
- A snapshot whose image name contains "slowsnap-<seconds>s" (e.g.
  "wl-slowsnap-90s-ours-0") waits that long before its upload, while the image
  stays 'queued' and the server in image_uploading: benchmarks/wait_latency.py
  measures long waits with it. No test names its snapshots that way, so the
  tests are not slowed; the wait is a green sleep (nova-compute is eventlet),
  so other servers' actions go on meanwhile.
- init_host() re-adopts the servers of this host from the database: the stock
  fake driver keeps its guests in memory only, so after a nova-compute restart
  (the faults suite kills it) every earlier server would be unknown to it and
  could no longer be snapshotted, rebuilt or stopped -- a real hypervisor keeps
  its guests running across a nova-compute restart.

nova imports 'nova.virt.' + compute_driver, so the module registers itself as
nova.virt.stack_fake (nova.conf: compute_driver = stack_fake.SnapshotFakeDriver).
Import it after nova's own start-up imports, i.e. from nova_compute.py.
"""
import io
import re
import sys
import time

from nova.image import glance
from nova.virt import fake

PAYLOAD = b"savepoint-fake-disk\n" * 52  # ~1 KiB of "disk" bytes
SLOW_SNAPSHOT = re.compile(r"slowsnap-(\d+(?:\.\d+)?)s")
#: a typo must not hang a nova-compute worker for hours
MAX_SLOW_SECONDS = 900.0


def snapshot_delay(image_name):
    """Seconds a snapshot of that image name waits before its upload (0 unless it asks)."""
    found = SLOW_SNAPSHOT.search(image_name or "")
    return min(float(found.group(1)), MAX_SLOW_SECONDS) if found else 0.0


class SnapshotFakeDriver(fake.FakeDriverWithoutFakeNodes):
    def init_host(self, host):
        super().init_host(host)
        from nova import context as nova_context
        from nova import objects
        from nova.compute import power_state

        for inst in objects.InstanceList.get_by_host(nova_context.get_admin_context(), host):
            if inst.uuid not in self.instances:
                state = inst.power_state if inst.power_state is not None else power_state.RUNNING
                self.instances[inst.uuid] = fake.FakeInstance(inst.name, state, inst.uuid)

    def snapshot(self, context, instance, image_id, update_task_state):
        # Stock part: checks the instance exists, sets IMAGE_UPLOADING.
        super().snapshot(context, instance, image_id, update_task_state)
        delay = snapshot_delay(glance.API().get(context, image_id).get("name"))
        if delay:
            time.sleep(delay)
        glance.API().update(
            context, image_id,
            {"disk_format": "raw", "container_format": "bare"},
            data=io.BytesIO(PAYLOAD), purge_props=False)


sys.modules["nova.virt.stack_fake"] = sys.modules[__name__]
