"""The domain layer: one package per feature with fixed file roles (model, service, schemas)."""
