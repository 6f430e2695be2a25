"""Counting how many payload bytes the reader unmasks, and in how many calls.

The reader unmasks through two names in ``wsserver.protocol.reader``:
``apply_mask`` (small frames, pieces of text or compressed messages) and
``PayloadBuffer`` (large single-frame binary messages).  A test patches both
with one ``CountingMask`` to count every byte whichever path it takes.
"""

from __future__ import annotations

import pytest

from wsserver.protocol import masking
from wsserver.protocol import reader as reader_module

BytesLike = bytes | bytearray | memoryview


class CountingMask:
    def __init__(self) -> None:
        self.calls = 0
        self.bytes = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> CountingMask:
        monkeypatch.setattr(reader_module, "apply_mask", self)
        monkeypatch.setattr(reader_module, "PayloadBuffer", self.payload_buffer)
        return self

    def __call__(self, data: BytesLike, mask: BytesLike) -> bytes:
        self.calls += 1
        self.bytes += len(data)
        return masking.apply_mask(data, mask)

    def payload_buffer(self, length: int, mask: BytesLike) -> CountingPayloadBuffer:
        return CountingPayloadBuffer(self, masking.PayloadBuffer(length, mask))


class CountingPayloadBuffer:
    def __init__(self, counter: CountingMask, real: masking.PayloadBufferType) -> None:
        self.counter = counter
        self.real = real

    @property
    def remaining(self) -> int:
        return self.real.remaining

    def unmask(self, data: BytesLike) -> None:
        self.counter.calls += 1
        self.counter.bytes += len(data)
        self.real.unmask(data)

    def take(self) -> bytes:
        return self.real.take()
