"""The safety suites use the shared tiny-guest fixtures of tests/conftest.py (qemu_conn, tiny_guests);
their guests are named sp-safety-* (TINY_GUEST_PREFIX in each test module)."""
