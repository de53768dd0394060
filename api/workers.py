"""The worker fleet over HTTP (waiting for the registry core)."""

from api.endpoint import Endpoint

ENDPOINTS: list[Endpoint] = []
