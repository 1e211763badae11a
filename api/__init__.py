"""The HTTP layer: routers, auth, error mapping. Thin: every decision lives in `domain`."""
