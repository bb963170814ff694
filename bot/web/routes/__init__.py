"""HTTP routes of the app's own surfaces (agents, engine callbacks, pages, health); channels bring theirs."""
