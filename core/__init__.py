"""Gongnon's core: the domain, the application handlers and the ports the outside implements."""
