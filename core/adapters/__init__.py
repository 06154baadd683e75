"""Adapters for the core's ports: SQLAlchemy, Redis, the forum clients, the scheduler."""
