"""Parley test suite."""
