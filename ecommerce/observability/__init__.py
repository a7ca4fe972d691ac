"""Logging, metrics and tracing: one home for each."""
