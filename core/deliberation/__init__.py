"""Deliberation: opinions on proposals, their replies and 공감, and statement voting (쟁점 투표)."""
