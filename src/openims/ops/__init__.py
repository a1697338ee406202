"""Operating the server: liveness and readiness probes, Prometheus metrics, and one log line per API request.

Kept free of imports on purpose: `audit.event` imports `ops.event_counts`, and a package `__init__` that pulled
in the rest of `ops` (which reaches the action table, and through it `audit.event`) would make a circle."""
