"""Where a customer's page is, for a viewer who may not see the customer's identifiers.

A customer known by no customer id is filed under a personal identifier
(`email:an@example.com`). An analyst sees it masked on the page, so its address must not
show it either (nor the browser's history, nor an access log): for a masked viewer the
page's address holds `~` and the identifier sealed with AES-SIV under a key of this
installation. AES-SIV is deterministic, so a customer keeps one address (bookmarks, links
shared between analysts), and authenticated, so a forged or altered address opens nothing.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

SEALED = "~"
_CONTEXT = [b"rapport customer page address"]


class PageAddresses:
    def __init__(self, key: bytes) -> None:
        """`key`: 64 bytes (AES-256-SIV)."""
        self._siv = AESSIV(key)

    def sealed(self, customer_id: str) -> str:
        box = self._siv.encrypt(customer_id.encode(), _CONTEXT)
        return SEALED + base64.urlsafe_b64encode(box).decode().rstrip("=")

    def customer(self, address: str) -> str | None:
        """The identifier an address names: a sealed one opened (None when it does not
        open), any other as it is (a viewer may type any identifier they know)."""
        if not address.startswith(SEALED):
            return address
        text = address[len(SEALED) :]
        try:
            box = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            return self._siv.decrypt(box, _CONTEXT).decode()
        except (binascii.Error, ValueError, InvalidTag, UnicodeDecodeError):
            return None
