"""The model registry: registered models, numbered versions, aliases, approvals and lineage."""
