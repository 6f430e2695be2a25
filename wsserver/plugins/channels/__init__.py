"""The channel manager: channels, users, topics and requests, across processes.

- ``manager``: ``ChannelManager``, the facade (broadcast, send to a channel
  or a user, topics, ``send_and_wait``, custom message handlers) over the
  parts below;
- ``channel``: ``Channel``, one connection's handle, and ``Identity``;
- ``view``: ``ChannelView``, the WebSocket endpoint;
- ``lifecycle``: a channel attached, opened, subscribed to topics, ended;
- ``inbound``: what the pages send (answers, custom messages and their
  handlers, chunks);
- ``send_and_wait``: asking a page and waiting for its answer, on any node;
- ``remote``: what the other nodes publish;
- ``delivery``: messages encoded once and queued on this node's channels;
- ``envelopes``: typed custom envelopes (``custom=True``,
  ``CustomServerMessage``);
- ``context``: the current channel, user and session as context variables
  inside handlers;
- ``history``: topic history: ``Position`` (epoch, offset), entries, the
  in-process store;
- ``feeds``: topics with history on this node: each message once and in
  order for every subscriber, replays, ``TopicListener``;
- ``presence``: topic presence: who follows a topic on every node, joins
  and leaves;
- ``nodes``: the link to the other nodes (the backend, background tasks);
- ``errors``: the error family and how errors travel between nodes;
- ``addresses``: the plugin name, channel ids, topics, backend subjects;
- ``settings``: ``ChannelSettings``, every limit and its default;
- ``assets``: ``channels.js`` as a versioned asset, and its script tag;
- ``registry``: who is connected to this process (users, sessions,
  channels, topics);
- ``backends``: the ``Backend`` interface and ``InProcessBackend`` (the
  default);
- ``redis_backend``: ``RedisBackend``, Redis pub/sub for many workers and
  hosts (redis-py, imported only when used);
- ``chunks``: messages larger than one WebSocket message, split and
  reassembled;
- ``queues``: the bounded per-connection send queue and its overflow policy;
- ``static/channels.js``: the browser side, registered as plugin ``ch`` on
  the runtime (``window.wsserverChannels``).

See ``docs/plugins/channels.md``.
"""

from __future__ import annotations

from .addresses import PLUGIN
from .assets import channels_asset, channels_script_tag
from .backends import (
    ENV_VAR,
    Backend,
    BackendUnavailable,
    ChannelError,
    Hub,
    InProcessBackend,
    backend_from_env,
    backend_from_url,
)
from .channel import Channel, Identity, TokenVerifier
from .chunks import ChunkError, Reassembler, make_chunks
from .context import current_channel, current_session, current_user
from .envelopes import CustomServerMessage
from .errors import (
    ChannelDisconnected,
    ChannelNotFound,
    HandlerError,
    HistoryLost,
    ReplyError,
    ReplyTimeout,
    TooManyWaits,
)
from .feeds import TopicListener, TopicMessage
from .history import HistoryEntry, Position
from .inbound import CustomHandler
from .manager import ChannelManager, managers
from .queues import OverflowPolicy, SendQueue
from .redis_backend import RedisBackend
from .registry import Registry
from .settings import DEFAULT_REQUEST_TIMEOUT
from .view import ChannelView

__all__ = [
    "DEFAULT_REQUEST_TIMEOUT",
    "ENV_VAR",
    "PLUGIN",
    "Backend",
    "BackendUnavailable",
    "Channel",
    "ChannelDisconnected",
    "ChannelError",
    "ChannelManager",
    "ChannelNotFound",
    "ChannelView",
    "ChunkError",
    "CustomHandler",
    "CustomServerMessage",
    "HandlerError",
    "HistoryEntry",
    "HistoryLost",
    "Hub",
    "Identity",
    "InProcessBackend",
    "OverflowPolicy",
    "Position",
    "Reassembler",
    "RedisBackend",
    "Registry",
    "ReplyError",
    "ReplyTimeout",
    "SendQueue",
    "TokenVerifier",
    "TooManyWaits",
    "TopicListener",
    "TopicMessage",
    "backend_from_env",
    "backend_from_url",
    "channels_asset",
    "channels_script_tag",
    "current_channel",
    "current_session",
    "current_user",
    "make_chunks",
    "managers",
]
