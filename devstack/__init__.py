"""The local stack: every service as its own process, and the embedded PostgreSQL that
local stacks and the tests start when no DATABASE_URL is set (``devstack.embedded``).
Part of a checkout, never of the installed package."""
