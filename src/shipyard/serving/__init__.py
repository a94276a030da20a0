"""Serving: model versions as inference endpoints (replicas, batching, canary, protocols)."""
