"""The HTTP service: app factory, routes, auth, problem+json mapping, CLI."""
