"""Fixtures for the launcher tests: a tiny classification config, its data and hooks, and helpers."""
