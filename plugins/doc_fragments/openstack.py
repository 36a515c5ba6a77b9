# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json

from ansible_collections.savepoint.virt.plugins.module_utils._backends.openstack.connection import auth_suboptions

_AUTH_SUBOPTIONS = '    # suboptions: every key of the argument spec, added by ModuleDocFragment.__init__\n'


def _documented_auth_suboptions() -> str:
    """O(auth)'s keys from the table that builds the argument spec (connection.AUTH_KEYS), so that the
    documentation lists exactly the keys the module takes, and no key twice."""
    keys = {}
    for key, spec in auth_suboptions().items():
        entry = {k: v for k, v in spec.items() if k in ('type', 'elements')}
        entry['description'] = [
            ('Secret C(%s) of the keystoneauth plugin that takes it, never written to any output; see O(auth).'
             if spec['no_log'] else 'Setting C(%s) of the keystoneauth plugin that takes it; see O(auth).') % key]
        keys[key] = entry
    return '    suboptions: %s\n' % json.dumps(keys, sort_keys=True)


class ModuleDocFragment:
    # OpenStack connection options (as in openstack.cloud and AWX's OpenStack credential) and server lookup.
    DOCUMENTATION = r'''
options:
  cloud:
    description:
      - Name of a cloud in C(clouds.yaml). openstacksdk finds the file as usual, the environment
        variable E(OS_CLIENT_CONFIG_FILE) first (this is how AWX's OpenStack credential hands it over).
      - Or a dict of cloud settings as one cloud of C(clouds.yaml) holds them (C(auth), C(auth_type),
        C(region_name), C(verify), ...), as with C(openstack.cloud); then O(auth), O(auth_type) and
        O(region_name) cannot be given beside it. Values under secret key names in it (C(password),
        C(token), C(application_credential_secret), ...) are masked in the task's output; prefer O(auth)
        for secrets, whose secret keys are C(no_log) already (Ansible's invocation log on the target is
        written before a module can mask the values of a dict).
      - If not set, the environment variable E(OS_CLOUD) is used; without either, openstacksdk takes the
        E(OS_*) environment variables, or the only cloud of C(clouds.yaml), and O(auth).
      - An empty string is an error.
    type: raw
  auth:
    description:
      - Settings of the auth plugin (O(auth_type)). Overrides the same keys of O(cloud).
      - The keys are the options of the auth plugins keystoneauth ships; an unknown key is an error.
      - For the default V(password) plugin C(auth_url) (the Keystone URL, for example
        V(https://keystone.example.com:5000/v3); shown in messages without any C(user:password@) part),
        C(username) or C(user_id), C(password), C(project_name) or C(project_id) (or, to scope to something else, C(domain_name),
        C(domain_id), C(system_scope) such as V(all) or C(trust_id)), C(user_domain_name)
        or C(user_domain_id), C(project_domain_name) or C(project_domain_id), and C(default_domain_name)
        or C(default_domain_id) for user and project when neither names one. Keystone v2 calls the project
        C(tenant_name) or C(tenant_id).
      - Plugin V(token) takes an existing Keystone C(token); plugin V(v3applicationcredential) takes
        C(application_credential_id) or C(application_credential_name) and C(application_credential_secret);
        the V(admin_token), V(none) and V(http_basic) plugins take the service C(endpoint).
      - Only the secret keys (C(password), C(token), C(application_credential_secret), C(client_secret),
        C(oauth2_client_secret), C(access_token), C(passcode), C(code)) are C(no_log); C(auth_url), user and
        project names show in messages so that a failure says which cloud and project it was.
    type: dict
    # suboptions: every key of the argument spec, added by ModuleDocFragment.__init__
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
      - Verify the TLS certificates of the endpoints. When given, overrides C(verify) of the cloud in
        C(clouds.yaml).
      - If not set, C(clouds.yaml) decides (for example AWX's OpenStack credential with "Verify SSL" off
        sets C(verify) to V(false) there); openstacksdk verifies when it says nothing.
      - A certificate that cannot be verified fails the task with C(error=certificate_verify_failed).
    type: bool
  ca_cert:
    description:
      - Path of a CA bundle to verify the endpoints with.
    type: str
    aliases: [cacert]
  client_cert:
    description:
      - Path of a client certificate (PEM) for endpoints that require one (mutual TLS).
    type: str
    aliases: [cert]
  client_key:
    description:
      - Path of the private key of O(client_cert), when the certificate file does not hold it.
      - Needs O(client_cert).
    type: str
    aliases: [key]
  api_timeout:
    description:
      - Seconds one API request may take (the socket timeout). Waiting for snapshots and rebuilds is
        bounded by the task's C(timeout) instead.
      - Unset, the cloud's C(api_timeout) in C(clouds.yaml) applies, else 120 seconds, so that a service
        that stops answering fails the task instead of hanging it.
    type: int
  sdk_log_path:
    description:
      - Path of a file on the host the module runs on that openstacksdk's log is appended to.
      - Unset means no log is written.
    type: str
  sdk_log_level:
    description:
      - Level of the openstacksdk log written to O(sdk_log_path).
      - V(DEBUG) logs every request and answer; keystoneauth masks passwords and tokens in it, but the log
        holds project and resource details, so keep the file private.
    type: str
    choices: [INFO, DEBUG]
    default: INFO
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
      - For OpenStack, O(uuid) means the same (Nova server ids are UUIDs), and so does C(uuid) or C(id) in
        an entry of O(guests).
      - Mutually exclusive with O(name), O(uuid) and O(guests).
    type: str
requirements:
  - openstacksdk (C(pip install openstacksdk)) where the module runs
'''

    def __init__(self) -> None:
        # ansible-core reads a fragment from an instance; the class text stays a literal (ansible-test lints it)
        self.DOCUMENTATION = self.DOCUMENTATION.replace(_AUTH_SUBOPTIONS, _documented_auth_suboptions(), 1)

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
