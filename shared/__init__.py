"""Queue core shared by the api, worker and scheduler processes."""
