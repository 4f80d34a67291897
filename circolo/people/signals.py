"""Signals other apps listen to without people importing them."""

from django.dispatch import Signal

# Sent inside the transaction after identities moved between members (a merge or its undo),
# with workspace_id and member_ids: apps whose rows hang on identities re-home them.
identities_moved = Signal()
