"""Shared state: a server process owns the objects; clients send it one operation at a time."""
