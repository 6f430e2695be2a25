"""Tests for the named numbers of RFC 6455: opcodes (section 5.2) and close codes (section 7.4)."""

from __future__ import annotations

import pytest

from wsserver.protocol.codes import CloseCode, Opcode, is_valid_received_close_code

# --------------------------------------------------------------------------
# Section 5.2: opcodes
# --------------------------------------------------------------------------

#: Section 5.2, "Opcode: 4 bits", as the RFC lists them.
RFC_OPCODES = {
    "CONTINUATION": 0x0,  # "%x0 denotes a continuation frame"
    "TEXT": 0x1,  # "%x1 denotes a text frame"
    "BINARY": 0x2,  # "%x2 denotes a binary frame"
    "CLOSE": 0x8,  # "%x8 denotes a connection close"
    "PING": 0x9,  # "%x9 denotes a ping"
    "PONG": 0xA,  # "%xA denotes a pong"
}


def test_section_5_2_opcode_values() -> None:
    assert {member.name: member.value for member in Opcode} == RFC_OPCODES


@pytest.mark.parametrize("value", [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_section_5_2_reserved_opcodes_have_no_member(value: int) -> None:
    # "%x3-7 are reserved for further non-control frames", "%xB-F are
    # reserved for further control frames".
    with pytest.raises(ValueError):
        Opcode(value)


@pytest.mark.parametrize("opcode", list(Opcode), ids=lambda o: o.name)
def test_section_5_5_control_frames_have_the_high_opcode_bit(opcode: Opcode) -> None:
    # "Control frames are identified by opcodes where the most significant
    # bit of the opcode is 1."
    assert opcode.is_control is bool(opcode.value & 0x8)
    assert opcode.is_control is (opcode.name in {"CLOSE", "PING", "PONG"})


# --------------------------------------------------------------------------
# Section 7.4: close status codes
# --------------------------------------------------------------------------

#: Section 7.4.1 and the IANA "WebSocket Close Code Number Registry"
#: (section 11.7), which added 1012-1014 after the RFC.
RFC_CLOSE_CODES = {
    "NORMAL_CLOSURE": 1000,
    "GOING_AWAY": 1001,
    "PROTOCOL_ERROR": 1002,
    "UNSUPPORTED_DATA": 1003,
    "NO_STATUS_RECEIVED": 1005,
    "ABNORMAL_CLOSURE": 1006,
    "INVALID_PAYLOAD_DATA": 1007,
    "POLICY_VIOLATION": 1008,
    "MESSAGE_TOO_BIG": 1009,
    "MANDATORY_EXTENSION": 1010,
    "INTERNAL_ERROR": 1011,
    "SERVICE_RESTART": 1012,
    "TRY_AGAIN_LATER": 1013,
    "BAD_GATEWAY": 1014,
    "TLS_HANDSHAKE": 1015,
}


def test_section_7_4_1_close_code_values() -> None:
    assert {member.name: member.value for member in CloseCode} == RFC_CLOSE_CODES


def rfc_allows_on_the_wire(code: int) -> bool:
    """The rules of sections 7.4.1 and 7.4.2, one range at a time, as the RFC words them."""
    if code < 1000:
        # "0-999: Status codes in the range 0-999 are not used."
        return False
    if code <= 2999:
        # "1000-2999: Status codes in the range 1000-2999 are reserved for
        # definition by this protocol": only the defined ones may be sent.
        if code == 1004:
            # "Reserved.  The specific meaning might be defined in the future."
            return False
        if code in (1005, 1006, 1015):
            # "MUST NOT be set as a status code in a Close control frame by
            # an endpoint."
            return False
        # 1000-1003 and 1007-1011 are defined by section 7.4.1, 1012-1014
        # by the IANA registry; 1016-2999 are unassigned.
        return 1000 <= code <= 1003 or 1007 <= code <= 1014
    if code <= 3999:
        # "3000-3999: ... used by libraries, frameworks, and applications."
        return True
    # "4000-4999: ... reserved for private use"; nothing is defined beyond.
    return code <= 4999


def test_section_7_4_2_table_spot_checks() -> None:
    # The reference table above, checked against the ranges the brief
    # states in one line, so that a slip in either shows.
    valid = {*range(1000, 1004), *range(1007, 1015), *range(3000, 5000)}
    assert [c for c in range(70_001) if rfc_allows_on_the_wire(c)] == sorted(valid)


def test_section_7_4_2_every_code_from_0_to_70000() -> None:
    wrong = [
        code
        for code in range(70_001)
        if is_valid_received_close_code(code) is not rfc_allows_on_the_wire(code)
    ]
    assert wrong == []


@pytest.mark.parametrize(
    "code",
    [CloseCode.NO_STATUS_RECEIVED, CloseCode.ABNORMAL_CLOSURE, CloseCode.TLS_HANDSHAKE],
    ids=lambda c: c.name,
)
def test_section_7_4_1_local_only_codes_are_invalid_on_the_wire(code: CloseCode) -> None:
    assert not is_valid_received_close_code(code)


@pytest.mark.parametrize("code", [-1, -1000, 1 << 16, 1 << 64])
def test_out_of_range_numbers_are_invalid(code: int) -> None:
    assert not is_valid_received_close_code(code)
