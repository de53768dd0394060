"""A stand-in for the MS8 microservices: deterministic analytics per user-role, with
latency, failures and outages per source that can be changed while it runs.

The local stack, the tests and the benchmark collect analytics from it exactly as they
would from the real services: one ``GET /{source}/user-roles/{id}`` per source and
user-role, answered with JSON. See ``stub.app`` for the routes.
"""
