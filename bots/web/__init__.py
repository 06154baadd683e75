"""The web channel adapter."""
