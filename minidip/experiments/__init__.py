"""Experiments built on the library (tables and figures of the README); not part of its API."""
