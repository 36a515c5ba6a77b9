"""nova-compute launcher that makes nova.virt.stack_fake importable.

    python nova_compute.py --config-file nova.conf
"""
import sys

import nova.cmd.compute  # first: nova's process-wide set-up happens on import
import stack_nova_driver  # noqa: F401  pylint: disable=unused-import  # importing it registers nova.virt.stack_fake

if __name__ == "__main__":
    sys.argv[0] = "nova-compute"
    sys.exit(nova.cmd.compute.main())
