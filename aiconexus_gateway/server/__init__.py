"""Tornado I/O layer: handlers that pump frames between sockets and the hub."""
