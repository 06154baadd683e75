"""The slack channel adapter."""
