# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""OpenStack backend (openstacksdk): server snapshots as Glance images, revert by rebuild.

A restore point is the image Nova's createImage makes of a server. It carries
image properties written by this collection:

``savepoint_server_id``, ``savepoint_snapshot_name``, ``savepoint_parent_id``,
``savepoint_power_state``, ``savepoint_description``, ``savepoint_owner``,
``savepoint_created_by``, ``savepoint_expires_at`` (all given to createImage) and,
written once the image is active, ``savepoint_image_id`` = the image's own id.

Nova copies every property of a server's base image into each new snapshot,
so a server rebuilt from one of these images hands the same keys down to later
snapshots taken by hand. Only an image whose ``savepoint_image_id`` is its own
id is therefore read as made by this collection; any other image of the
server is listed as it is, without owner, expiry or parent.

Which snapshot is current is kept in the server's metadata
(``savepoint_current`` = image id, ``savepoint_current_base`` = the server's
image at that moment): a snapshot is current when it was the last one this
collection created or reverted to and the server has not been rebuilt since;
otherwise the snapshot the server's image is, if any. A create moves the pointer
at its first poll, while Glance still saves the image, and puts it back when the
snapshot fails (image killed or removed, deadline, Cinder error).

The package, one job per file:

- ``errors.py``: SDK import on first use; SDK/keystoneauth failures as engine errors, scrubbed
- ``connection.py``: connection options, openstacksdk config, the session
- ``images.py``: Glance properties, ownership, snapshot records
- ``volumes.py``: include_volumes (Cinder snapshots and revert-to-snapshot)
- ``rebuild.py``: revert by rebuild, boot-from-volume re-image, power afterwards
- ``steps.py``: the typed asynchronous steps and their polling
- ``lease.py``: the per-server lease of ``_locking.py`` (server metadata ``savepoint_lease``)
- ``backend.py``: ``OpenStackBackend``, the engine's contract
"""

from __future__ import annotations

from .backend import OpenStackBackend

__all__ = ['OpenStackBackend']
