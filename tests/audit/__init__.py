"""Audit tests: witnesses, full-log verification, bundles and the `parley audit` command."""
