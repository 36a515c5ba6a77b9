"""include_volumes on the real services: Cinder snapshots of a server's data volumes in the same
restore point, Cinder revert-to-snapshot (3.40) of them on revert, clear refusals before any write."""

from __future__ import annotations

import time

import pytest

from ansible_collections.savepoint.virt.plugins.module_utils._backends.openstack.volumes import SETTLE_SECONDS
from ansible_collections.savepoint.virt.plugins.module_utils._errors import SnapshotConflictError, UnsupportedError
from ansible_collections.savepoint.virt.plugins.module_utils._model import GuestRef

from contract.harness_openstack import unique
from deadlines import upper_bound
from services.openstack import IMAGE, OTHER_IMAGE

pytestmark = pytest.mark.openstack

VOLUMES = {'include_volumes': True}


class DataVolumes:
    """Data volumes made through openstacksdk directly; cleanup() removes their snapshots and them."""

    def __init__(self, sdk):
        self.sdk = sdk
        self.made = []

    def attach(self, server):
        volume = self.sdk.block_storage.create_volume(name=unique('ostest-data'), size=1)
        self.made.append((volume.id, server.id))
        self.sdk.block_storage.wait_for_status(volume, 'available', failures=['error'], interval=0.5, wait=60)
        self.sdk.compute.create_volume_attachment(server, volume=volume)
        self.sdk.block_storage.wait_for_status(volume, 'in-use', failures=['error'], interval=0.5, wait=60)
        return volume.id

    def detach(self, server, volume_id):
        self.sdk.compute.delete_volume_attachment(server, volume_id)
        self.sdk.block_storage.wait_for_status(self.sdk.block_storage.get_volume(volume_id), 'available',
                                               failures=['error'], interval=0.5, wait=60)

    def snapshots(self, volume_id):
        return list(self.sdk.block_storage.snapshots(details=True, volume_id=volume_id))

    def cleanup(self):
        block = self.sdk.block_storage
        for volume_id, server_id in self.made:
            volume = block.find_volume(volume_id, ignore_missing=True)
            if volume is None:
                continue
            for snap in self.snapshots(volume_id):
                block.delete_snapshot(snap, ignore_missing=True)
                block.wait_for_delete(snap, interval=0.5, wait=60)
            if volume.status == 'in-use':
                self.sdk.compute.delete_volume_attachment(server_id, volume_id, ignore_missing=True)
                block.wait_for_status(volume, 'available', failures=['error'], interval=0.5, wait=60)
            block.delete_volume(volume_id)
            block.wait_for_delete(volume, interval=0.5, wait=60)


@pytest.fixture
def volumes(servers, sdk):
    made = DataVolumes(sdk)
    yield made
    made.cleanup()


def image_id(sdk, name):
    return sdk.image.find_image(name, ignore_missing=False).id


def reverted_in_cinder_log(stack, volume_id, snapshot_id):
    text = (stack.log_dir / 'cinder-volume.log').read_text(errors='replace')
    return 'Volume %s reverted to snapshot %s successfully' % (volume_id, snapshot_id) in text


def test_include_volumes_snapshot_revert_and_delete(servers, sdk, runner, volumes, stack):
    server = servers.boot()
    data = [volumes.attach(server), volumes.attach(server)]
    ref = GuestRef(id=server.id)

    # Check mode writes nothing: no image, no volume snapshot.
    preview = runner.run('present', ref, 'with-data', check_mode=True, options=VOLUMES)
    assert preview['changed'] is True
    assert runner.snapshots(ref) == {} and [volumes.snapshots(v) for v in data] == [[], []]

    created = runner.run('present', ref, 'with-data', expires_in='1d', options=VOLUMES)
    snap = created['snapshot']
    details = snap['provider_details']
    assert details['include_volumes'] is True and details['boot_from_volume'] is False
    assert sorted(v['volume_id'] for v in details['volumes']) == sorted(data)
    assert all(v['status'] == 'available' and v['size_gb'] == 1 and v['size_bytes'] == 1024 ** 3
               for v in details['volumes'])
    assert details['volumes_size_bytes'] == 2 * 1024 ** 3
    volume_snaps = {v['volume_id']: v['snapshot_id'] for v in details['volumes']}
    assert sorted(details['volume_snapshots']) == sorted(volume_snaps.values())
    # Recorded in the image properties, and Cinder holds exactly one snapshot per data volume.
    props = sdk.image.get_image(snap['id']).properties
    assert props['savepoint_include_volumes'] == 'true'
    assert sorted(props['savepoint_volume_snapshots'].split(',')) == sorted(volume_snaps.values())
    for volume_id in data:
        assert [s.id for s in volumes.snapshots(volume_id)] == [volume_snaps[volume_id]]
        assert sdk.block_storage.get_snapshot(volume_snaps[volume_id]).metadata['savepoint_server_id'] == server.id

    # Same request again: exists, nothing new.
    again = runner.run('present', ref, 'with-data', options=VOLUMES)
    assert again['changed'] is False and again['results'][0]['action'] == 'exists'
    # Same name without include_volumes: a conflict, not "exists".
    with pytest.raises(SnapshotConflictError, match='include_volumes: false'):
        runner.run('present', ref, 'with-data')
    assert sorted(runner.snapshots(ref)) == ['with-data']
    assert [len(volumes.snapshots(v)) for v in data] == [1, 1]

    # The change: the server is rebuilt onto another image.
    sdk.compute.rebuild_server(server, image=image_id(sdk, OTHER_IMAGE))
    sdk.compute.wait_for_server(sdk.compute.get_server(server.id), status='ACTIVE', interval=0.5, wait=60)

    # Attached (in-use) volumes: refused in check mode and for real, before anything is written.
    for check_mode in (True, False):
        with pytest.raises(UnsupportedError, match='is in-use.*only detached.*detach it'):
            runner.run('reverted', ref, 'with-data', check_mode=check_mode)
    assert sdk.compute.get_server(server.id).image.id == image_id(sdk, OTHER_IMAGE)
    assert all(sdk.block_storage.get_volume(v).status == 'in-use' for v in data)
    assert not any(reverted_in_cinder_log(stack, v, volume_snaps[v]) for v in data)

    for volume_id in data:
        volumes.detach(server, volume_id)
    result = runner.run('reverted', ref, 'with-data', power_state='on')
    assert result['changed'] is True and result['action'] == 'reverted'
    after = sdk.compute.get_server(server.id)
    assert after.id == server.id and after.image.id == snap['id'] and after.status == 'ACTIVE'
    for volume_id in data:
        assert sdk.block_storage.get_volume(volume_id).status == 'available'
        # Cinder's volume manager ran the revert of exactly this volume to exactly this snapshot.
        assert reverted_in_cinder_log(stack, volume_id, volume_snaps[volume_id])
        assert sdk.block_storage.get_snapshot(volume_snaps[volume_id]).status == 'available'
    assert runner.snapshots(ref)['with-data'].current is True

    # Delete removes the image and its volume snapshots.
    deleted = runner.run('absent', ref, 'with-data')
    assert deleted['changed'] is True
    assert sdk.image.find_image(snap['id'], ignore_missing=True) is None
    assert [volumes.snapshots(v) for v in data] == [[], []]
    assert runner.snapshots(ref) == {}


def test_include_volumes_on_an_existing_snapshot_without_volumes_is_a_conflict(servers, sdk, runner, volumes):
    server = servers.boot()
    data = volumes.attach(server)
    ref = GuestRef(id=server.id)
    plain = runner.run('present', ref, 'plain')['snapshot']
    assert plain['provider_details']['include_volumes'] is False and plain['provider_details']['volumes'] == []
    for check_mode in (True, False):
        with pytest.raises(SnapshotConflictError, match='include_volumes: true, but the existing snapshot holds no'):
            runner.run('present', ref, 'plain', check_mode=check_mode, options=VOLUMES)
    assert volumes.snapshots(data) == []
    assert sorted(runner.snapshots(ref)) == ['plain']
    assert 'savepoint_volume_snapshots' not in sdk.image.get_image(plain['id']).properties or \
        sdk.image.get_image(plain['id']).properties['savepoint_volume_snapshots'] == ''


def test_revert_to_a_volume_snapshot_that_is_not_the_latest_is_refused(servers, sdk, runner, volumes, stack):
    server = servers.boot()
    data = volumes.attach(server)
    ref = GuestRef(id=server.id)
    first = runner.run('present', ref, 'first', options=VOLUMES)['snapshot']
    time.sleep(1.2)  # Cinder's "latest" is by created_at, to the second
    second = runner.run('present', ref, 'second', options=VOLUMES)['snapshot']
    first_vs = first['provider_details']['volumes'][0]['snapshot_id']
    second_vs = second['provider_details']['volumes'][0]['snapshot_id']
    volumes.detach(server, data)
    sdk.compute.rebuild_server(server, image=image_id(sdk, OTHER_IMAGE))
    sdk.compute.wait_for_server(sdk.compute.get_server(server.id), status='ACTIVE', interval=0.5, wait=60)

    for check_mode in (True, False):
        with pytest.raises(UnsupportedError, match='not the latest snapshot of volume %s.*%s' % (data, second_vs)):
            runner.run('reverted', ref, 'first', check_mode=check_mode)
    assert sdk.compute.get_server(server.id).image.id == image_id(sdk, OTHER_IMAGE)
    assert sdk.block_storage.get_volume(data).status == 'available'
    assert not reverted_in_cinder_log(stack, data, first_vs)

    # Once the newer restore point is deleted, the older one is the volume's latest again.
    runner.run('absent', ref, 'second')
    assert [s.id for s in volumes.snapshots(data)] == [first_vs]
    runner.run('reverted', ref, 'first')
    assert sdk.compute.get_server(server.id).image.id == first['id']
    assert reverted_in_cinder_log(stack, data, first_vs)
    assert sdk.block_storage.get_volume(data).status == 'available'


def test_include_volumes_is_refused_for_boot_from_volume_servers(servers, sdk, runner, stack):
    server = servers.boot(boot_from_volume=True)
    ref = GuestRef(id=server.id)
    for check_mode in (True, False):
        with pytest.raises(UnsupportedError, match='boots from volume.*include_volumes'):
            runner.run('present', ref, 'bfv', check_mode=check_mode, options=VOLUMES)
    assert runner.snapshots(ref) == {}
    root = stack.root_volume_id(server)
    assert list(sdk.block_storage.snapshots(volume_id=root)) == []


def test_include_volumes_without_attached_volumes_is_recorded(servers, sdk, runner):
    server = servers.boot()
    ref = GuestRef(id=server.id)
    snap = runner.run('present', ref, 'none-attached', options=VOLUMES)['snapshot']
    assert snap['provider_details']['include_volumes'] is True and snap['provider_details']['volumes'] == []
    assert runner.run('present', ref, 'none-attached', options=VOLUMES)['changed'] is False
    with pytest.raises(SnapshotConflictError, match='include_volumes'):
        runner.run('present', ref, 'none-attached')
    runner.run('reverted', ref, 'none-attached')
    assert sdk.compute.get_server(server.id).image.id == snap['id']
    assert sdk.compute.get_server(server.id).image.id != image_id(sdk, IMAGE)


def test_unfinished_create_with_volumes_leaves_no_volume_snapshot(servers, sdk, volumes, stack):
    """nova-compute gone: the image never becomes active; at the deadline the volume snapshots taken
    for it are deleted with it, so no half-made restore point remains."""
    from ansible_collections.savepoint.virt.plugins.module_utils._errors import WaitTimeoutError
    from contract.harness_openstack import Runner

    server = servers.boot()
    data = volumes.attach(server)
    ref = GuestRef(id=server.id)
    short = Runner(timeout=6)
    stack.stop_service('nova-compute')
    try:
        started = time.monotonic()
        with pytest.raises(WaitTimeoutError) as err:
            short.run('present', ref, 'never-finished', options=VOLUMES)
        took = time.monotonic() - started
        # the deadline, then the clean-up, which waits for the volume snapshots at most SETTLE_SECONDS
        assert short.timeout <= took < upper_bound(short.timeout) + SETTLE_SECONDS, took
        assert 'was deleted, so no half-made restore point remains' in err.value.provider_message
        assert 'could not be deleted' not in err.value.provider_message
        deadline = time.monotonic() + upper_bound(SETTLE_SECONDS)
        while volumes.snapshots(data) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert volumes.snapshots(data) == []
        assert short.snapshots(ref) == {}
    finally:
        stack.start_service('nova-compute')
