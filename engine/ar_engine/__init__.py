"""Rasa-side plugin code for autoresponder (custom input channel, NLU components)."""
