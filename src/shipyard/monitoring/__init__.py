"""Monitoring: alert rules on endpoints' traffic and input drift, channels, and their history."""
