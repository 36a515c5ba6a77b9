"""Gunicorn app factory for the OpenStack WSGI modules of the test stack.

Every OpenStack WSGI module parses sys.argv with oslo.config when imported;
under gunicorn sys.argv holds gunicorn's own options.  app() replaces it
before the import:

    gunicorn 'stack_wsgi:app("cinder.wsgi.api", "--config-file", "/x/cinder.conf")'
"""
import importlib
import sys


def app(module, *argv):
    sys.argv = [module.rsplit(".", 1)[-1], *argv]
    application = importlib.import_module(module).application
    # Configure all SQLAlchemy mappers before the first request: neutron 29
    # reads the Port.port_forwardings backref in GET /v2.0/ports, and that
    # backref only exists once the mappers are configured.  Without this a
    # worker whose first DB query is GET ports answers 500 (AttributeError).
    from sqlalchemy import orm

    orm.configure_mappers()
    return application
