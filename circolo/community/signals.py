"""Signals other apps listen to without the community importing them."""

from django.dispatch import Signal

# Sent inside the transaction when a moderator removes a post (flags upheld) or shows it
# again, with workspace_id, post_id, author_id and moderator_id.
post_removed = Signal()
post_restored = Signal()
