"""Alembic migrations, shipped inside the package so an installed wheel can migrate.

``core.adapters.db.migrate`` (used by ``gongnon migrate`` and at start-up) reads ``alembic.ini``
beside this file; the ``alembic`` command line can use it too:
``alembic -c core/adapters/migrations/alembic.ini revision --autogenerate -m "..."``.
"""
