"""nova virt driver of the test stack: nova's fake driver + a real upload.

- snapshot() (createImage of an image-backed server) uploads ~1 KiB, so the
  image goes 'active'; the stock fake driver leaves it 'queued' forever.
- Base class FakeDriverWithoutFakeNodes: one node named after [DEFAULT] host
  whose UUID is persisted in $state_path/compute_id, so nova-compute can be
  restarted (with plain FakeDriver nova 34 refuses: "No local node identity
  found, but this is not our first startup on this host").

nova imports 'nova.virt.' + compute_driver, so the module registers itself as
nova.virt.stack_fake (nova.conf: compute_driver = stack_fake.SnapshotFakeDriver).
Import it after nova's own start-up imports, i.e. from nova_compute.py.
"""
import io
import sys

from nova.image import glance
from nova.virt import fake

PAYLOAD = b"savepoint-fake-disk\n" * 52  # ~1 KiB of "disk" bytes


class SnapshotFakeDriver(fake.FakeDriverWithoutFakeNodes):
    def snapshot(self, context, instance, image_id, update_task_state):
        # Stock part: checks the instance exists, sets IMAGE_UPLOADING.
        super().snapshot(context, instance, image_id, update_task_state)
        glance.API().update(
            context, image_id,
            {"disk_format": "raw", "container_format": "bare"},
            data=io.BytesIO(PAYLOAD), purge_props=False)


sys.modules["nova.virt.stack_fake"] = sys.modules[__name__]
