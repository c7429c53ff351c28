"""Database and server URLs carry passwords: show them everywhere with the password replaced."""

from __future__ import annotations

import re

_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][\w+.-]*://)(?P<user>[^:/@\s]+):(?P<password>[^@/\s]*)@")


def redact_url(text: str) -> str:
    """`postgresql://user:secret@host/db` -> `postgresql://user:***@host/db`; other text unchanged."""
    return _CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
