"""Verified customer identity for the web chat: the shop's backend signs the logged-in customer's id.

The shop computes `HMAC-SHA256(identity secret, customer id)` as lowercase hex on its own server (the
way Intercom's and Chatwoot's identity verification work) and puts id and hash on the page; the widget
passes both along and this module checks them. A wrong or missing hash makes the visitor a guest; it
never links anyone.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

# Longest customer id accepted (the CRM's ids are 16 characters; a shop's own may be longer).
MAX_ID_CHARS = 128


def identity_hash(secret: str, customer_id: str) -> str:
    """What the shop's backend computes for a customer: HMAC-SHA256 over the id, hex."""
    return hmac.new(secret.encode(), customer_id.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Claim:
    """What a page said about its visitor: `customer_id` None for a visitor who is not logged in."""

    customer_id: str | None
    valid: bool


class IdentityVerifier:
    """Checks the id and hash a page passes to the widget."""

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def check(self, raw: Any) -> Claim:
        """Read an `identity` object of a frame: {"customer_id": …, "hash": …}, or null for nobody."""
        if raw is None:
            return Claim(None, True)
        if not isinstance(raw, dict):
            return Claim(None, False)
        customer_id, supplied = raw.get("customer_id"), raw.get("hash")
        if customer_id is None and supplied is None:
            return Claim(None, True)
        if not isinstance(customer_id, str) or not isinstance(supplied, str):
            return Claim(None, False)
        customer_id = customer_id.strip()
        if not customer_id or len(customer_id) > MAX_ID_CHARS or not customer_id.isprintable():
            return Claim(None, False)
        supplied = supplied.strip().lower()
        if not supplied.isascii():  # compare_digest takes ASCII strings only; a real hash is hex
            return Claim(None, False)
        if not hmac.compare_digest(identity_hash(self._secret, customer_id), supplied):
            return Claim(None, False)
        return Claim(customer_id, True)
