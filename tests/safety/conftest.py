"""Fixtures of the safety suites: tiny real libvirt guests (no OS), made and removed per test."""

from __future__ import annotations

import sys

import libvirt
import pytest

from services.libvirt import TinyGuest, ensure_daemon


@pytest.fixture(scope='module')
def qemu_conn():
    ensure_daemon(sys.executable)
    conn = libvirt.open('qemu:///system')
    yield conn
    conn.close()


@pytest.fixture
def tiny_guests(qemu_conn):
    made = []

    def make(**kw):
        guest = TinyGuest(qemu_conn, name='sp-safety-%s' % __import__('uuid').uuid4().hex[:8]).create(**kw)
        made.append(guest)
        return guest
    yield make
    for guest in made:
        guest.destroy()
