"""What an SMTP server the tests start (aiosmtpd) was given."""

from __future__ import annotations

import email
import re
from dataclasses import dataclass, field
from email.message import Message
from typing import Any


@dataclass
class Mailbox:
    """An aiosmtpd handler: keeps what it is given, refuses nobody@."""

    messages: list[tuple[str, list[str], Message]] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              email.message_from_bytes(envelope.content)))
        return "250 OK"

    def code_for(self, to: str) -> str | None:
        """The last sign-in code sent to ``to``, if any."""
        for _, rcpt, message in reversed(self.messages):
            if to in rcpt:
                found = re.search(r"\b(\d{6})\b", message.get_payload(decode=True).decode())
                return found.group(1) if found else None
        return None
