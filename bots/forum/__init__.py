"""The forum channel adapter."""
