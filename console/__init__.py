"""The web console at /console: server-rendered pages over the same domain services as the API,
signed in with an API key kept in an encrypted, signed, expiring session cookie."""
