"""Headless Chromium (Debian package ``chromium``) for tests that look at a page.

ensure() installs the package with apt-get when it is missing (CI is a fresh
machine); when that fails the caller's test fails. The browser never goes on
the network: only file:// pages, background networking and updates off, a fresh
profile per call.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import List

APT_LOCK = '/tmp/savepoint-apt.lock'
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage',
         '--hide-scrollbars']


def ensure(timeout: float = 900) -> str:
    found = shutil.which('chromium')
    if found:
        return found
    install = ['flock', APT_LOCK, 'apt-get', 'install', '-y', '--no-install-recommends', 'chromium']
    proc = subprocess.run(install, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        update = subprocess.run(['flock', APT_LOCK, 'apt-get', 'update'], capture_output=True, text=True,
                                timeout=timeout, check=False)
        proc = subprocess.run(install, capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            raise RuntimeError('cannot install chromium: %s%s' % (update.stderr[-1000:], proc.stderr[-2000:]))
    found = shutil.which('chromium')
    if not found:
        raise RuntimeError('chromium installed but not on PATH')
    return found


def _run(extra: List[str], url: str, timeout: float) -> subprocess.CompletedProcess:
    if not url.startswith('file:///'):
        raise ValueError('only local pages: %s' % url)
    with tempfile.TemporaryDirectory(prefix='sp-chromium-') as profile:
        cmd = [ensure()] + FLAGS + ['--user-data-dir=%s' % profile] + extra + [url]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)


def dump_dom(page: Path, timeout: float = 120) -> str:
    """The DOM after the page's scripts ran, as HTML."""
    return dump_dom_url(page.resolve().as_uri(), timeout)


def dump_dom_url(url: str, timeout: float = 120) -> str:
    return _run(['--dump-dom'], url, timeout).stdout


def screenshot(page: Path, png: Path, width: int = 1600, height: int = 900, timeout: float = 120) -> Path:
    _run(['--screenshot=%s' % png, '--window-size=%d,%d' % (width, height)], page.resolve().as_uri(), timeout)
    if not png.exists():
        raise RuntimeError('chromium wrote no screenshot to %s' % png)
    return png
