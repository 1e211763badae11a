"""The `penguinmails` command."""
