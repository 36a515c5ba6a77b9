"""Idempotent set-up of the test stack through the APIs (openstacksdk).

    bootstrap.py identity        projects, users, roles, services, endpoints
    bootstrap.py resources       flavor 'tiny', 2 public images, volume type
    bootstrap.py ready EPOCH1 EPOCH2
                                 exit 0 once nova-compute has reported since
                                 EPOCH1, cinder-volume since EPOCH2, and the
                                 compute node has a placement resource provider

Reads OS_CLIENT_CONFIG_FILE (cloud 'stack-admin') and OS_STACK_PASSWORD.
"""
import datetime
import os
import sys

import openstack

PASSWORD = os.environ.get("OS_STACK_PASSWORD", "secret")
REGION = "RegionOne"
SERVICE_USERS = ("glance", "nova", "placement", "cinder", "neutron")
ENDPOINTS = {  # service name: (type, url)
    "glance": ("image", "http://127.0.0.1:9292"),
    "placement": ("placement", "http://127.0.0.1:8778"),
    "nova": ("compute", "http://127.0.0.1:8774/v2.1"),
    "cinderv3": ("volumev3", "http://127.0.0.1:8776/v3/%(project_id)s"),
    "neutron": ("network", "http://127.0.0.1:9696"),
}
FLAVOR = {"name": "tiny", "id": "1", "ram": 64, "vcpus": 1, "disk": 1}
# Two small public raw images: boot from one, rebuild onto the other.
IMAGES = {"tiny-test-image": b"savepoint-test-image\n" * 50,
          "tiny-test-image-2": b"savepoint-test-image-2\n" * 40}
VOLUME_TYPE = "fake"


def admin():
    return openstack.connect(cloud="stack-admin")


def identity():
    c = admin()
    domain = c.identity.find_domain("default", ignore_missing=False)
    project = {}
    for name in ("service", "demo"):
        project[name] = (
            c.identity.find_project(name, domain_id=domain.id)
            or c.identity.create_project(name=name, domain_id=domain.id))
    role = {name: (c.identity.find_role(name)
                   or c.identity.create_role(name=name))
            for name in ("admin", "member", "reader", "service")}

    def user(name, home):
        return (c.identity.find_user(name, domain_id=domain.id)
                or c.identity.create_user(name=name, password=PASSWORD,
                                          domain_id=domain.id,
                                          default_project_id=home.id))

    for name in SERVICE_USERS:  # admin + service in project 'service'
        u = user(name, project["service"])
        for r in ("admin", "service"):
            c.identity.assign_project_role_to_user(project["service"], u,
                                                   role[r])
    demo = user("demo", project["demo"])  # a plain member
    c.identity.assign_project_role_to_user(project["demo"], demo,
                                           role["member"])
    for sname, (stype, url) in ENDPOINTS.items():
        svc = next((s for s in c.identity.services() if s.type == stype),
                   None) or c.identity.create_service(name=sname, type=stype,
                                                      is_enabled=True)
        have = {e.interface for e in c.identity.endpoints(service_id=svc.id)}
        for iface in ("public", "internal", "admin"):
            if iface not in have:
                c.identity.create_endpoint(service_id=svc.id, url=url,
                                           interface=iface, region_id=REGION)
    print("identity: ok")


def resources():
    c = admin()
    if c.compute.find_flavor(FLAVOR["name"]) is None:
        c.compute.create_flavor(**FLAVOR)
    for name, data in IMAGES.items():
        img = c.image.find_image(name)
        if img is not None and img.status != "active":
            c.image.delete_image(img)
            img = None
        if img is None:
            c.image.create_image(name=name, data=data, disk_format="raw",
                                 container_format="bare",
                                 visibility="public", wait=True)
    if c.block_storage.find_type(VOLUME_TYPE) is None:
        c.block_storage.create_type(
            name=VOLUME_TYPE, is_public=True,
            extra_specs={"volume_backend_name": VOLUME_TYPE})
    print("resources: ok")


def _since(service, since):
    ts = service.updated_at
    if not ts:
        return False
    ts = datetime.datetime.fromisoformat(ts.replace("Z", "")[:19])
    return ts >= since


def _utc(epoch):
    return datetime.datetime.fromtimestamp(
        int(epoch), datetime.timezone.utc).replace(tzinfo=None)


def ready(compute_since="0", volume_since="0"):
    """A heartbeat from before a restart still shows 'up' for
    service_down_time (60 s): require one newer than the process start."""
    c = admin()
    compute = [s for s in c.compute.services() if s.binary == "nova-compute"
               and s.state == "up" and _since(s, _utc(compute_since))]
    volume = [s for s in c.block_storage.services()
              if s.binary == "cinder-volume"
              and s.state == "up" and _since(s, _utc(volume_since))]
    providers = list(c.placement.resource_providers())
    print("nova-compute up=%d cinder-volume up=%d providers=%d"
          % (len(compute), len(volume), len(providers)))
    return 0 if compute and volume and providers else 1


if __name__ == "__main__":
    command = {"identity": identity, "resources": resources,
               "ready": ready}[sys.argv[1]]
    sys.exit(command(*sys.argv[2:]))
