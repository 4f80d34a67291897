"""The demo store: fictional customers and their activity, generated through the real services."""
