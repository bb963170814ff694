"""Agent accounts: people and integrations with a role, their passwords, API tokens, sessions and the audit log."""
