"""Network access on a caller's behalf, held to one address policy (egress)."""
