"""Helpers shared by several test modules (tests/ is on sys.path under pytest: `from helpers.x import y`)."""
