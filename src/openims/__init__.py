"""OpenIMS: a self-hosted Identity Management Service with a complete ActionTrail audit trail."""

__version__ = "0.1.0"
