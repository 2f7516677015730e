"""Composition root: the ASGI app, CLI and middleware."""
