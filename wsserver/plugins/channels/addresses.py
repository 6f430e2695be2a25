"""Where the channel manager's messages go: names on the wire and on the backend.

- ``PLUGIN``: the plugin name of every ``ch/...`` message between the server
  and the page;
- channel ids: ``<node id>.<random>``, so that any node knows which node
  holds a channel (``node_of``);
- topics: names the application chooses, 1 to ``MAX_TOPIC_LENGTH``
  characters;
- the backend's subjects (see ``backends.py``): every node listens on
  ``ALL_NODES`` and on its own ``node_subject``; a node holding a channel of
  a user listens on ``user_subject``, and one holding a subscriber of a
  topic on ``topic_subject``.
"""

from __future__ import annotations

import secrets

__all__ = [
    "ALL_NODES",
    "MAX_TOPIC_LENGTH",
    "PLUGIN",
    "check_topic",
    "new_channel_id",
    "node_of",
    "node_subject",
    "topic_subject",
    "user_subject",
]

#: The plugin name on the wire.
PLUGIN = "ch"
#: The longest topic name, in characters.
MAX_TOPIC_LENGTH = 256
#: The subject every node listens on (broadcasts).
ALL_NODES = "all"
# Random bytes of a channel id: 96 bits, unguessable and unique.
_CHANNEL_ID_BYTES = 12


def new_channel_id(node_id: str) -> str:
    """A new channel id on node ``node_id``."""
    return f"{node_id}.{secrets.token_urlsafe(_CHANNEL_ID_BYTES)}"


def node_of(channel_id: str) -> str | None:
    """The node a channel id names, or ``None`` if it is no channel id."""
    node, dot, rest = channel_id.partition(".")
    return node if dot and node and rest else None


def check_topic(topic: object) -> str:
    """``topic``, if it is a valid topic name.

    Raises:
        ValueError: not a string of 1 to ``MAX_TOPIC_LENGTH`` characters.
    """
    if not isinstance(topic, str) or not 0 < len(topic) <= MAX_TOPIC_LENGTH:
        raise ValueError(f"a topic must be a string of 1 to {MAX_TOPIC_LENGTH} characters")
    return topic


def node_subject(node_id: str) -> str:
    """The subject one node listens on (messages for its channels, requests, answers)."""
    return f"node:{node_id}"


def user_subject(user_id: str) -> str:
    """The subject of the nodes holding a channel of ``user_id``."""
    return f"user:{user_id}"


def topic_subject(topic: str) -> str:
    """The subject of the nodes holding a subscriber of ``topic``."""
    return f"topic:{topic}"
