"""JS execution futures: run JavaScript in a connected page from Python.

::

    value = await execute_js(session, "document.title", wait_for_result=True)
    await execute_js(session, "console.log('hi')")          # fire and forget
    width = await get_js_result(session, "var r = el.getBoundingClientRect()", "r.width")

The code travels to the browser runtime in a ``js/exec`` message and runs
there with an *indirect* ``eval``: in the page's global scope, in sloppy mode
unless the code starts with ``"use strict"``, and its value is the value of
its last expression statement (so ``"1 + 1"`` gives 2).  A promise or any
thenable is awaited before the answer is sent.  The answer is a ``js/result``
message carrying either the value (as JSON) or the error's name and message.

Only the server sends code; the browser never sends code for the server to
run, and the server runs nothing the browser sends.

Failure modes, all ``JavascriptExecutionError``:

- the code throws (or its promise rejects): ``name`` and ``message`` are the
  JavaScript error's;
- no answer in ``timeout`` seconds: ``JavascriptExecutionTimedOut``;
- the connection ends: every pending call of that connection fails at once;
- the value is not JSON-serialisable, or its answer would exceed the
  connection's message limit: the browser answers with an error instead
  (``TypeError``, ``ResultTooLarge``).

Timeouts are seconds in Python; the wire carries milliseconds, in a field
named ``timeout_ms``.
"""

from __future__ import annotations

import itertools
import logging
import math
import weakref
from typing import Any

from ...server.metric_sources import MetricSource, add_metric_source
from .messages import Envelope, MalformedMessage
from .replies import PendingReplies
from .session import Session, SessionClosed

__all__ = [
    "PLUGIN",
    "JSBridge",
    "JavascriptExecutionError",
    "JavascriptExecutionTimedOut",
    "execute_js",
    "get_js_result",
]

# The module lived at wsserver.plugins.js (which still re-exports it); its log
# lines keep that name, which logging configurations use.
logger = logging.getLogger("wsserver.plugins.js")

#: The plugin name on the wire.
PLUGIN = "js"

#: The live bridges, for the metrics (read at scrape time only).
_BRIDGES: weakref.WeakSet[JSBridge] = weakref.WeakSet()
#: Calls of every bridge that timed out, for the metrics.
_timeouts = 0
# How much of a browser-supplied error text is kept: enough to debug, not
# enough to bloat logs.
_MAX_ERROR_TEXT = 4096


class JavascriptExecutionError(Exception):
    """JavaScript code failed, or its answer will never come.

    Attributes:
        name: the JavaScript error's ``name`` (``"TypeError"``...), or
            ``None`` when the failure is not a JavaScript exception (a
            disconnect, a timeout).
        message: the JavaScript error's ``message``, or a description.
        stack: the JavaScript stack trace, when the browser gave one.
    """

    def __init__(self, message: str, *, name: str | None = None, stack: str | None = None):
        super().__init__(f"{name}: {message}" if name else message)
        self.name = name
        self.message = message
        self.stack = stack


class JavascriptExecutionTimedOut(JavascriptExecutionError):
    """No answer arrived within the timeout."""


def _check_timeout(timeout: float | None) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not (timeout > 0 and math.isfinite(timeout)):
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    return float(timeout)


def _text(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text[:_MAX_ERROR_TEXT]


class JSBridge:
    """The JS execution futures of one session.

    One bridge per session (``JSBridge.of(session)``); it registers the
    ``js/result`` handler and a close callback.  Calls are correlated by an
    integer id that counts up per connection, so ids never repeat within
    one.

    Args:
        session: the session to run code in.
    """

    def __init__(self, session: Session) -> None:
        if PLUGIN in session.plugins:
            raise ValueError("this session already has a JSBridge: use JSBridge.of(session)")
        self.session = session
        self._ids = itertools.count(1)
        self._replies: PendingReplies[int] = PendingReplies(
            logger=logger, label=f"conn {session.connection_id}: JS answer", level=logging.INFO
        )
        session.plugins[PLUGIN] = self
        _BRIDGES.add(self)
        session.on(PLUGIN, "result", self._on_result)
        session.add_close_callback(self._on_close)

    @classmethod
    def of(cls, session: Session) -> JSBridge:
        """The session's bridge, created on first use."""
        bridge = session.plugins.get(PLUGIN)
        if isinstance(bridge, JSBridge):
            return bridge
        return cls(session)

    @property
    def pending_count(self) -> int:
        """Calls waiting for an answer."""
        return self._replies.pending_count

    @property
    def unknown_answers(self) -> int:
        """Answers received for ids not (or no longer) pending."""
        return self._replies.unknown_answers

    async def execute_js(
        self, code: str, timeout: float | None = None, wait_for_result: bool = False
    ) -> Any:
        """Run ``code`` in the page.

        Args:
            code: JavaScript source, run with an indirect ``eval``.
            timeout: seconds to wait for the answer (only with
                ``wait_for_result``); ``None`` waits until the connection
                ends.
            wait_for_result: wait for the code to finish (promises awaited)
                and return its value; otherwise return once it is sent.

        Returns:
            The value (JSON-decoded; ``undefined`` becomes ``None``) when
            waiting, else ``None``.

        Raises:
            ValueError: ``timeout`` without ``wait_for_result``, or a
                non-positive timeout.
            MessageTooLarge: the code exceeds the message limit.
            JavascriptExecutionError: the code threw, or the connection is
                gone.
            JavascriptExecutionTimedOut: no answer within ``timeout``.
        """
        if not isinstance(code, str):
            raise TypeError("code must be a str")
        if timeout is not None and not wait_for_result:
            raise ValueError("timeout is only meaningful with wait_for_result=True")
        timeout = _check_timeout(timeout)
        if not wait_for_result:
            await self._send(code=code, reply=False, timeout_ms=None)
            return None
        return await self._call(timeout, code=code)

    async def get_js_result(self, code: str, variable: str, timeout: float | None = None) -> Any:
        """Run ``code``, then evaluate ``variable`` and return its value.

        ``code`` runs first (its promise awaited, if it gives one), then
        ``variable``, any expression, in a second indirect ``eval`` (its
        promise awaited too).  Both run in the global scope, so names that
        ``code`` declares with ``var`` or assigns on ``window`` are visible
        to ``variable``; ``let`` and ``const`` declarations are not (each
        eval has its own lexical scope).

        Raises:
            See ``execute_js``.
        """
        if not isinstance(code, str):
            raise TypeError("code must be a str")
        if not isinstance(variable, str):
            raise TypeError("variable must be a str")
        if not variable.strip():
            raise ValueError("variable must be a JavaScript expression")
        return await self._call(_check_timeout(timeout), code=code, expr=variable)

    # -- bookkeeping ---------------------------------------------------------

    async def _send(self, **fields: Any) -> None:
        try:
            await self.session.send(PLUGIN, "exec", **fields)
        except SessionClosed as exc:
            raise JavascriptExecutionError(f"the connection is closed: {exc}") from exc

    async def _call(self, timeout: float | None, **fields: Any) -> Any:
        if self.session.closed:
            raise JavascriptExecutionError("the connection is closed")
        call_id = next(self._ids)
        timeout_ms = None if timeout is None else max(1, math.ceil(timeout * 1000))

        async def send() -> None:
            await self._send(id=call_id, reply=True, timeout_ms=timeout_ms, **fields)

        def timed_out() -> JavascriptExecutionTimedOut:
            global _timeouts
            _timeouts += 1
            return JavascriptExecutionTimedOut(f"no answer from the browser within {timeout:g} s")

        return await self._replies.request(call_id, send, timeout=timeout, on_timeout=timed_out)

    def _on_result(self, message: Envelope) -> None:
        call_id = message.require("id", int)
        ok = message.require("ok", bool)
        if not self._replies.expects(call_id):
            # A late answer (the call timed out or was cancelled), or a bug.
            self._replies.ignore(call_id)
            return
        if ok:
            self._replies.resolve(call_id, message.get("value"))
            return
        error = message.require("error", dict)
        name = error.get("name")
        stack = error.get("stack")
        if not isinstance(name, str) or not name:
            raise MalformedMessage("js/result: error.name must be a non-empty string")
        self._replies.reject(
            call_id,
            JavascriptExecutionError(
                _text(error.get("message", "")),
                name=name[:200],
                stack=_text(stack) if isinstance(stack, str) else None,
            ),
        )

    def _on_close(self, session: Session) -> None:
        code = session.close_code
        self._replies.fail_all(
            lambda: JavascriptExecutionError(
                f"the connection closed (code {code}) before the browser answered"
            )
        )


async def execute_js(
    session: Session, code: str, timeout: float | None = None, wait_for_result: bool = False
) -> Any:
    """``JSBridge.of(session).execute_js(...)``; see ``JSBridge.execute_js``."""
    return await JSBridge.of(session).execute_js(code, timeout, wait_for_result)


async def get_js_result(
    session: Session, code: str, variable: str, timeout: float | None = None
) -> Any:
    """``JSBridge.of(session).get_js_result(...)``; see ``JSBridge.get_js_result``."""
    return await JSBridge.of(session).get_js_result(code, variable, timeout)


# In the metrics when they are on (docs/operations.md).
add_metric_source(
    MetricSource(
        "wsserver_js_pending_calls",
        "gauge",
        "JS calls (execute_js with wait_for_result, get_js_result) waiting for the browser",
        lambda: sum(bridge.pending_count for bridge in list(_BRIDGES)),
    )
)
add_metric_source(
    MetricSource(
        "wsserver_js_call_timeouts",
        "counter",
        "JS calls the browser did not answer within their timeout",
        lambda: _timeouts,
    )
)
