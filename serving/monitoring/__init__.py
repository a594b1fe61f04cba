"""Monitoring: how fresh, and how faithful, what the store serves is."""
