"""The app's side of the Rasa engine: the client, the typed wire contract of its replies, NLG."""
