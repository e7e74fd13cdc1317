"""Payload types, one module per touchpoint family."""
