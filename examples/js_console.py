"""JS console: type JavaScript on the server, see every connected page's answer.

    wsserver run examples.js_console:app

then open http://127.0.0.1:8000/ in one browser tab or several.  Two ways to
run an expression in every connected page:

- the server's terminal, when its standard input is a TTY: type an
  expression, press Enter, and each page's answer is printed;
- HTTP, from anywhere: ``POST /eval`` with the expression as the body
  (``text/plain``), or as JSON ``{"expr": "...", "timeout": 5}``::

      curl -s --data 'document.title' http://127.0.0.1:8000/eval
      {"pages":1,"results":[{"session":"…","ok":true,"value":"wsserver JS console"}]}

  An expression that throws gives ``{"ok": false, "error": {"name":
  "TypeError", "message": "..."}}`` for that page.

Each expression runs with ``execute_js(session, expr, wait_for_result=True,
timeout=...)``: in the page's global scope, its promise awaited, its value
sent back as JSON.
"""

from __future__ import annotations

import asyncio
import html
import json
import math
import os
import sys
from typing import Any

from wsserver import App, HTMLResponse, JSONResponse, Request, Response
from wsserver.plugins.js import JavascriptExecutionError, execute_js
from wsserver.plugins.runtime import RuntimeView, Session, install, script_tag

#: Seconds each page has to answer, unless the request says otherwise.
DEFAULT_TIMEOUT = 5.0
#: The longest timeout a request may ask for.
MAX_TIMEOUT = 60.0

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>wsserver JS console</title>
<style>
  body {{ font: 16px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 40rem; }}
  code {{ background: #eee; padding: 0 .2em; }}
  #status::after {{ content: "starting"; font-weight: bold; }}
  html[data-wsserver-status="connecting"] #status::after {{ content: "connecting"; }}
  html[data-wsserver-status="open"] #status::after {{ content: "connected"; color: green; }}
  html[data-wsserver-status="reconnecting"] #status::after {{
    content: "reconnecting"; color: darkorange; }}
  html[data-wsserver-status="offline"] #status::after {{ content: "offline"; color: red; }}
</style>
</head>
<body>
<h1>wsserver JS console</h1>
<p>Status: <span id="status"></span></p>
<p>Expressions typed in the server's terminal, or posted to <code>/eval</code>,
run in this page, and the answer goes back to the server.</p>
<pre>curl -s --data 'document.title' {origin}/eval</pre>
{script}
</body>
</html>
"""


class Console:
    """The connected pages, and the terminal reader."""

    def __init__(self) -> None:
        self.pages: dict[str, Session] = {}
        self._reading_stdin = False
        self._buffer = b""
        self._tasks: set[asyncio.Task[None]] = set()

    async def evaluate(self, expr: str, timeout: float = DEFAULT_TIMEOUT) -> list[dict[str, Any]]:
        """Run ``expr`` in every connected page; one result per page."""
        sessions = list(self.pages.values())
        outcomes = await asyncio.gather(
            *(execute_js(s, expr, timeout=timeout, wait_for_result=True) for s in sessions),
            return_exceptions=True,
        )
        results: list[dict[str, Any]] = []
        for session, outcome in zip(sessions, outcomes, strict=True):
            if isinstance(outcome, JavascriptExecutionError):
                error = {"name": outcome.name or type(outcome).__name__, "message": outcome.message}
                results.append({"session": session.id, "ok": False, "error": error})
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                results.append({"session": session.id, "ok": True, "value": outcome})
        return results

    # -- the terminal ------------------------------------------------------

    def start_stdin_reader(self) -> None:
        """Read expressions from the terminal, once, if stdin is a TTY."""
        if self._reading_stdin or not sys.stdin.isatty():
            return
        self._reading_stdin = True
        # A reader callback rather than a thread blocked in input(): nothing
        # is left waiting on the terminal when the server stops.
        asyncio.get_running_loop().add_reader(sys.stdin.fileno(), self._stdin_readable)
        print("js console: type an expression and press Enter to run it in every page")
        self._prompt()

    def _stdin_readable(self) -> None:
        fd = sys.stdin.fileno()
        data = os.read(fd, 65536)
        if not data:
            asyncio.get_running_loop().remove_reader(fd)
            return
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            expr = line.decode("utf-8", "replace").strip()
            if not expr:
                self._prompt()
                continue
            task = asyncio.create_task(self._print_answers(expr))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _print_answers(self, expr: str) -> None:
        results = await self.evaluate(expr)
        if not results:
            print("(no page connected)")
        for result in results:
            if result["ok"]:
                answer = json.dumps(result["value"], ensure_ascii=False)
            else:
                answer = f"{result['error']['name']}: {result['error']['message']}"
            print(f"[{result['session'][:8]}] {answer}")
        self._prompt()

    @staticmethod
    def _prompt() -> None:
        print("js> ", end="", flush=True)


console = Console()


class ConsolePage(RuntimeView):
    """Each connected page joins the console while it is open."""

    async def on_session_start(self, session: Session) -> None:
        console.pages[session.id] = session
        console.start_stdin_reader()

    async def on_session_end(self, session: Session) -> None:
        console.pages.pop(session.id, None)


app = App()
install(app)
app.add_websocket_route("/ws", ConsolePage)


@app.route("/")
async def home(request: Request) -> Response:
    """The page: the runtime and a status line."""
    origin = html.escape(f"{request.url.scheme}://{request.url.netloc}")
    return HTMLResponse(PAGE.format(origin=origin, script=script_tag("/ws")))


def _bad_request(message: str) -> Response:
    return JSONResponse({"error": message}, status_code=400)


@app.route("/eval", methods=("POST",))
async def evaluate(request: Request) -> Response:
    """Run the posted expression in every page; answer with their results."""
    timeout = DEFAULT_TIMEOUT
    if request.headers.get("content-type", "").split(";")[0].strip() == "application/json":
        try:
            body = request.json()
        except ValueError as exc:
            return _bad_request(f"invalid JSON: {exc}")
        if not isinstance(body, dict) or not isinstance(body.get("expr"), str):
            return _bad_request('expected {"expr": "<JavaScript>", "timeout": <seconds>}')
        expr: str = body["expr"]
        timeout = body.get("timeout", DEFAULT_TIMEOUT)
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 0 < timeout <= MAX_TIMEOUT
            or not math.isfinite(timeout)
        ):
            return _bad_request(f"timeout must be a number of seconds in (0, {MAX_TIMEOUT:g}]")
    else:
        try:
            expr = request.text()
        except (UnicodeDecodeError, LookupError):
            return _bad_request("the body is not text")
    if not expr.strip():
        return _bad_request("empty expression")
    results = await console.evaluate(expr, float(timeout))
    return JSONResponse({"pages": len(results), "results": results})
