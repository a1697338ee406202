"""The tamper-evident audit log: an RFC 6962 Merkle tree per account, signed checkpoints and proofs."""
