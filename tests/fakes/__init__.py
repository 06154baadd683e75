"""Fake external services: real aiohttp applications on port 0 that speak the real wire formats."""
