"""Sends sign-in codes to a file outbox (one JSON line per message).

Development and tests read codes from it; a deployment relays it to its own
mail or SMS gateway. Lines are fsynced so a code is never "sent" and then lost.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

from urne.platform.files import FILE_MODE, private_folder
from urne.platform.logging import log_fields

log = logging.getLogger(__name__)


class FileOutboxSender:
    """One file per channel: ``email.jsonl``, ``sms.jsonl``."""

    def __init__(self, outbox_dir: Path, echo_codes: bool, channel: str = "email"):
        self.path = outbox_dir / f"{channel}.jsonl"
        self.echo_codes = echo_codes  # development only: print the code in the log
        self._lock = threading.Lock()
        private_folder(outbox_dir)  # 0700; the file is made 0600 by its first code

    def send(self, to: str, code: str, expires_in: int) -> None:
        line = json.dumps({"to": to, "subject": "Your urne sign-in code", "code": code,
                           "expires_in": expires_in,
                           "at": datetime.now(UTC).isoformat()}) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        with self._lock, open(fd, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        if self.echo_codes:
            log.info("sign-in code written to the development outbox",
                     extra=log_fields(to=to, code=code, outbox=str(self.path)))
