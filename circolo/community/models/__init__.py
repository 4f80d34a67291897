"""The community's tables, split by purpose; every model is re-exported here."""

from .events import Event, Rsvp
from .forum import Flag, Post, PostRevision, Reaction, Space, Thread
from .members import Bookmark, CommunityProfile, Draft, Follow, MemberVisit, ThreadView
from .notifications import Notification
from .polls import Poll, PollOption, PollVote
from .safety import Sanction, WatchedWord
from .team import ScheduledThread, Upload

__all__ = [
    "Bookmark",
    "CommunityProfile",
    "Draft",
    "Event",
    "Flag",
    "Follow",
    "MemberVisit",
    "Notification",
    "Poll",
    "PollOption",
    "PollVote",
    "Post",
    "PostRevision",
    "Reaction",
    "Rsvp",
    "Sanction",
    "ScheduledThread",
    "Space",
    "Thread",
    "ThreadView",
    "Upload",
    "WatchedWord",
]
