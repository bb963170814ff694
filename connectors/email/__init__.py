"""The email channel: a support mailbox read over IMAP (aioimaplib), answered over SMTP (aiosmtplib).

Modules: `parse` (bytes to the customer's new words), `loops` (RFC 3834 rules and the rate limit),
`imap` (the IMAP client), `reader` (the mailbox loop), `processor` (one mail to one committed answer),
`compose` (threaded replies), `outbox` (the Redis outbox and its SMTP worker), `connector` (wiring).
"""

from __future__ import annotations
