"""Schedules over HTTP (waiting for the schedules core)."""

from api.endpoint import Endpoint

ENDPOINTS: list[Endpoint] = []
