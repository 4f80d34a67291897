"""The loyalty program's tables, split by purpose; every model is re-exported here."""

from .earning import Dispute, ExpiryWarning, LineEarning, OrderEarning
from .ledger import Account, Entry, Movement, Reason
from .program import Badge, MemberBadge, MemberTier, Program, RewardsProfile, RuleSet, Tier
from .referrals import Ambassador, Referral, ReferralClick, ReferralCode
from .rewards import PoolCode, Redemption, Reward

__all__ = [
    "Account",
    "Ambassador",
    "Badge",
    "Dispute",
    "Entry",
    "ExpiryWarning",
    "LineEarning",
    "MemberBadge",
    "MemberTier",
    "Movement",
    "OrderEarning",
    "PoolCode",
    "Program",
    "Reason",
    "Redemption",
    "Referral",
    "ReferralClick",
    "ReferralCode",
    "Reward",
    "RewardsProfile",
    "RuleSet",
    "Tier",
]
