"""What each resource was and became: snapshots, the per-call change tracker, histories."""
