"""Deliberation: opinions on proposals, their replies and 공감, and statement voting (쟁점 투표).

``core.deliberation.feature.install(core)`` adds the daily summary of new opinions to the one
scheduler. This package's own module stays empty so that the conversations layer can import the
deliberation commands and model without the database code.
"""
