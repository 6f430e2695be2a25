"""The channel manager: channels, users, topics and requests, across processes.

- ``manager``: ``ChannelManager`` (broadcast, send to a channel or a user,
  topics, ``send_and_wait``, custom message handlers), ``Channel``,
  ``ChannelView`` (the WebSocket endpoint) and the browser module's asset;
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
from .chunks import ChunkError, Reassembler, make_chunks
from .manager import (
    DEFAULT_REQUEST_TIMEOUT,
    PLUGIN,
    Channel,
    ChannelDisconnected,
    ChannelManager,
    ChannelNotFound,
    ChannelView,
    CustomHandler,
    HandlerError,
    Identity,
    ReplyError,
    ReplyTimeout,
    channels_asset,
    channels_script_tag,
    managers,
)
from .queues import OverflowPolicy, SendQueue
from .redis_backend import RedisBackend
from .registry import Registry

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
    "HandlerError",
    "Hub",
    "Identity",
    "InProcessBackend",
    "OverflowPolicy",
    "Reassembler",
    "RedisBackend",
    "Registry",
    "ReplyError",
    "ReplyTimeout",
    "SendQueue",
    "backend_from_env",
    "backend_from_url",
    "channels_asset",
    "channels_script_tag",
    "make_chunks",
    "managers",
]
