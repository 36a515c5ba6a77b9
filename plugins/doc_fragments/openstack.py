# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment:
    # OpenStack connection options (as in openstack.cloud and AWX's OpenStack credential) and server lookup.
    DOCUMENTATION = r'''
options:
  cloud:
    description:
      - Name of a cloud in C(clouds.yaml). openstacksdk finds the file as usual, the environment
        variable E(OS_CLIENT_CONFIG_FILE) first (this is how AWX's OpenStack credential hands it over).
      - If not set, the environment variable E(OS_CLOUD) is used; without either, openstacksdk reads
        the E(OS_*) environment variables and O(auth).
    type: str
  auth:
    description:
      - Settings of the auth plugin, for the default C(password) plugin C(auth_url), C(username),
        C(password), C(project_name) and the domain names. Overrides the same keys of O(cloud).
      - Never written to any output or error message.
    type: dict
  auth_type:
    description:
      - Name of the Keystone auth plugin, for example V(password), V(token) or V(v3applicationcredential).
    type: str
  region_name:
    description:
      - Region of the cloud.
    type: str
  interface:
    description:
      - Which endpoints of the service catalog to use.
    type: str
    choices: [public, internal, admin]
    default: public
    aliases: [endpoint_type]
  validate_certs:
    description:
      - Verify the TLS certificates of the endpoints. Overrides C(verify) of the cloud in C(clouds.yaml).
      - If not set, V(true).
      - A certificate that cannot be verified fails the task with C(error=certificate_verify_failed).
    type: bool
  ca_cert:
    description:
      - Path of a CA bundle to verify the endpoints with.
    type: str
    aliases: [cacert]
  api_timeout:
    description:
      - Seconds one API request may take (the socket timeout). Waiting for snapshots and rebuilds is
        bounded by the task's C(timeout) instead.
    type: int
  boot_from_volume_revert:
    description:
      - How a revert of a boot-from-volume server is done.
      - V(refuse) fails such a revert before anything is changed (snapshots of these servers can still be
        taken, listed and deleted).
      - V(reimage) rebuilds the server (compute API microversion 2.93 or newer) onto a 1-byte carrier image
        whose C(block_device_mapping) names the snapshot's Cinder snapshot of the root volume; Cinder then
        copies that snapshot onto the root volume (same server, same root volume). The carrier image
        (C(savepoint-restore-<snapshot id>)) is deleted afterwards. Nova waits only
        C(reimage_timeout_per_gb) seconds (20 by default, a setting of the compute hosts) for the copy and
        puts the server in ERROR if it takes longer; the task then fails. Use it where root volumes are
        small or the copy is fast, or where that Nova setting was raised.
      - Snapshots that also hold Cinder snapshots of other attached volumes are refused with V(reimage) too,
        as only the root volume would be reverted.
    type: str
    choices: [refuse, reimage]
    default: refuse
  server_id:
    description:
      - Id of the OpenStack server. O(name) may also be a server id.
      - Mutually exclusive with O(name) and O(guests).
    type: str
requirements:
  - openstacksdk (C(pip install openstacksdk)) where the module runs
'''

    # Provider-only create options of the snapshot modules (not of the info modules).
    SNAPSHOT_OPTIONS = r'''
options:
  include_volumes:
    description:
      - OpenStack only, with O(state=present). Also take a Cinder snapshot of every volume attached to the
        server (its data volumes; image-backed servers only) as part of the same restore point. The snapshot
        ids are recorded in the image property C(savepoint_volume_snapshots) and reported in
        C(snapshot.provider_details.volumes) with their sizes; deleting the restore point deletes them too.
      - A revert to such a snapshot also reverts each of those volumes with Cinder revert-to-snapshot (volume
        API microversion 3.40) and rebuilds the server. Cinder reverts only detached (C(available)) volumes
        and only to a volume's latest snapshot (by its creation time, to the second). The revert is refused
        before anything is changed, saying why, when a volume is still attached (detach it first, attach it
        again afterwards; this collection does not detach volumes behind the guest's back) or when the
        snapshot is not the volume's latest.
      - An existing snapshot of the same name taken with a different O(include_volumes) is a conflict, never
        reported as existing.
      - Refused for boot-from-volume servers (their snapshots already hold every attached volume).
    type: bool
    default: false
'''
