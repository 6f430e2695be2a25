"""Every number RFC 6455 and RFC 7692 give a name to, as enums.

RFC 6455 section 5.2 defines the opcodes, section 7.4 the close status codes,
and section 11.7 the registry in which IANA keeps them.  Nothing here has any
behaviour beyond classifying a number: the rules that use these live where the
bytes are parsed.
"""

from __future__ import annotations

import enum

__all__ = [
    "CloseCode",
    "HandshakeFailure",
    "Opcode",
    "is_valid_received_close_code",
]


class Opcode(enum.IntEnum):
    """Frame opcodes (RFC 6455 section 5.2, "Opcode: 4 bits")."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    # 0x3-0x7 are reserved for further non-control frames.
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA
    # 0xB-0xF are reserved for further control frames.

    @property
    def is_control(self) -> bool:
        """Control frames have the most significant opcode bit set (section 5.5)."""
        return self >= 0x8


class CloseCode(enum.IntEnum):
    """Close status codes (RFC 6455 section 7.4.1, and the IANA registry).

    The codes marked *local only* "MUST NOT be set as a status code in a Close
    control frame by an endpoint": they describe what an endpoint saw, never
    what it sent.
    """

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    # 1004 is reserved, "the specific meaning might be defined in the future".
    NO_STATUS_RECEIVED = 1005  # local only
    ABNORMAL_CLOSURE = 1006  # local only
    INVALID_PAYLOAD_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015  # local only


#: Codes in the 1000-2999 range that may travel in a Close frame.  1012-1014
#: were registered with IANA after the RFC; 1004 stays reserved, and 1005,
#: 1006 and 1015 are local only.
_SENDABLE_PROTOCOL_CODES = frozenset(
    {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}
)


def is_valid_received_close_code(code: int) -> bool:
    """Tell whether a code received in a Close frame is allowed on the wire.

    RFC 6455 section 7.4.2: codes below 1000 are not used; 1000-2999 are the
    protocol's own (only the registered, sendable ones are valid); 3000-3999
    are for libraries and frameworks; 4000-4999 are private use.  Anything
    else, and the local-only 1005, 1006 and 1015, fail the connection with
    1002.
    """
    return code in _SENDABLE_PROTOCOL_CODES or 3000 <= code <= 4999


class HandshakeFailure(enum.Enum):
    """How a server's answer to a client's opening handshake failed it.

    The rules are RFC 6455 section 4.1's ("the client MUST _Fail the
    WebSocket Connection_") and RFC 7692 section 7's; each member is one
    exception of the client (``wsserver.client``).
    """

    #: Not an HTTP/1.1 response, a head over the limits, or the connection
    #: closed before the response ended.
    INVALID_MESSAGE = "invalid HTTP response"
    #: Section 4.1, step 1: "If the status code received from the server is
    #: not 101, the client handles the response per HTTP procedures".
    INVALID_STATUS = "status other than 101"
    #: Steps 2 and 3: ``Upgrade: websocket`` and ``Connection: Upgrade``.
    INVALID_UPGRADE = "missing Upgrade or Connection header"
    #: Step 4: ``Sec-WebSocket-Accept`` missing or not the key's digest.
    INVALID_ACCEPT = "wrong Sec-WebSocket-Accept"
    #: Step 5 and RFC 7692 section 7: an extension not offered, or
    #: permessage-deflate parameters the offer does not allow.
    INVALID_EXTENSION = "extension not offered or invalid"
    #: Step 6: a subprotocol not offered.
    INVALID_SUBPROTOCOL = "subprotocol not offered"
