"""Hostwinds servers: no Pulumi provider exists, so a dynamic provider over its HTTP API."""
