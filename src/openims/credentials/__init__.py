"""Credentials and their rules: password hashing policy, TOTP codes, AccessKey last use."""
