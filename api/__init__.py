"""The HTTP API and dashboard of ms8-jobs: sends jobs, shows them, acts on them.

Runs no job: every operation goes through the queue core (``shared.queue``), and the
only connection to workers and the scheduler is the database.
"""
