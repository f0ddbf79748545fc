"""Deliberately broken carrier plugins, for the host's plugin-isolation tests."""
