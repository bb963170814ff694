"""Fakes of third-party services that cannot be reached from tests, speaking their real protocols."""
