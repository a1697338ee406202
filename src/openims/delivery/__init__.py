"""Delivery of ActionTrail event batches to trail destinations (object storage, SLS, syslog, webhooks)."""
