"""The domain: proposals and their lifecycle, people and their channel identities."""
