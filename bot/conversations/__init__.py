"""The conversation core: messages, the conversation model, the store, the router and its ports."""
