"""cinder volume driver of the test stack: FakeLoggingVolumeDriver whose
image <-> volume data paths do not touch any block device.

The stock fake driver inherits the LVM driver's image handling: a volume from
an image is downloaded, inspected through privsep (sudo + cinder-rootwrap) and
written to /dev/mapper/..., which fails here.
- clone_image() claims a successful clone, so cinder skips the download
  (volume from image, i.e. boot-from-volume servers).
- copy_image_to_volume(): used by re-image (rebuild of a volume-backed server,
  nova microversion >= 2.93).
- copy_volume_to_image() (volume upload-to-image) uploads ~1 KiB, so the
  image goes 'active' as with a real backend.
- revert_to_snapshot(): volume revert (microversion 3.40).
The fake volumes have no data: only API/DB state can be checked.

cinder-volume imports this module when it loads the driver, before it serves
any request, so the VolumeManager patch at the bottom is in place in time.
"""
import io

from cinder.tests import fake_driver
from cinder.volume import manager
from oslo_log import log as logging

LOG = logging.getLogger(__name__)
PAYLOAD = b"savepoint-fake-volume\n" * 48  # ~1 KiB of "volume" bytes


class FakeImageVolumeDriver(fake_driver.FakeLoggingVolumeDriver):
    def clone_image(self, context, volume, image_location, image_meta,
                    image_service):
        return None, True

    def copy_image_to_volume(self, context, volume, image_service, image_id,
                             disable_sparse=False):
        LOG.info("fake backend: image %s -> volume %s", image_id, volume.id)

    def copy_volume_to_image(self, context, volume, image_service,
                             image_meta):
        LOG.info("fake backend: volume %s -> image %s", volume.id,
                 image_meta["id"])
        image_service.update(context, image_meta["id"], {},
                             io.BytesIO(PAYLOAD))

    def revert_to_snapshot(self, context, volume, snapshot):
        LOG.info("fake backend: revert volume %s to snapshot %s", volume.id,
                 snapshot.id)


def _copy_volume_data(self, ctxt, src_vol, dest_vol, remote=None):
    # cinder's generic volume -> volume copy (its fallback e.g. when a volume
    # is re-imaged from a volume-snapshot image) attaches both volumes on this
    # host through os-brick + sudo.  Fake volumes have no data: skip it.
    LOG.info("fake backend: skip data copy %s -> %s", src_vol.id, dest_vol.id)


manager.VolumeManager._copy_volume_data = _copy_volume_data
