"""Polls, surveys, consent, topic subscriptions and campaign pushes.

``core.campaigns.feature.install(core, quiet=…)`` wires the feature and returns its service
(kept as ``core.campaigns``). This package's own module stays empty so that the conversations
layer can import the campaign commands and model without the service's database code.
"""
