"""Who may see and change an order: a guest's second factor, locks after wrong answers, confirmed changes."""
