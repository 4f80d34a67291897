"""The loyalty program's reactions to the activity stream (run once per activity)."""

from __future__ import annotations

from collections.abc import Sequence

from circolo.activity.handlers import HandledActivity, activity_handler
from circolo.loyalty.actions import ACTION_KINDS, actions_earn
from circolo.loyalty.orders import orders_react

# Order events that change what an order earns (placed only is not a purchase yet).
ORDER_KINDS = frozenset({"order_paid", "order_fulfilled", "order_cancelled", "refund"})


@activity_handler(kinds=ORDER_KINDS)
def loyalty_orders(*, workspace_id: int, activities: Sequence[HandledActivity]) -> None:
    refs = set()
    for activity in activities:
        props = activity.properties
        if isinstance(props.get("store"), int) and props.get("order"):
            refs.add((props["store"], str(props["order"])))
    orders_react(workspace_id=workspace_id, refs=refs)


@activity_handler(kinds=ACTION_KINDS)
def loyalty_actions(*, workspace_id: int, activities: Sequence[HandledActivity]) -> None:
    actions_earn(workspace_id=workspace_id, activities=activities)
