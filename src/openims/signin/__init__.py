"""Console sign-in: RAM users and the root identity, lockouts, MFA tickets, who may still sign in."""
