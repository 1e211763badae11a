"""Plumbing shared by every layer: errors, encryption at rest, pagination, time."""
