"""Test-wide set-up: make the collection importable as ansible_collections.savepoint.virt."""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COLLECTIONS_ROOT = REPO / 'build' / 'collections'
LINK = COLLECTIONS_ROOT / 'ansible_collections' / 'savepoint' / 'virt'

if not LINK.exists():
    LINK.parent.mkdir(parents=True, exist_ok=True)
    try:
        LINK.symlink_to(REPO, target_is_directory=True)
    except FileExistsError:  # another xdist worker made it first
        pass
if str(COLLECTIONS_ROOT) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS_ROOT))
os.environ.setdefault('ANSIBLE_COLLECTIONS_PATH', str(COLLECTIONS_ROOT))
