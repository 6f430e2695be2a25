/*!
 * wsserver browser runtime: one file, no build step, no dependencies.
 *
 * Served by wsserver at <prefix>/runtime.<content hash>.js and loaded with
 *   <script src="..." data-url="/ws" data-reconnect-attempts="8"
 *           data-reconnect-base-ms="500" data-reconnect-max-ms="15000"
 *           data-connect-timeout-ms="10000"></script>
 * (wsserver.plugins.runtime.assets.script_tag renders it).
 *
 * What it does: connects to the WebSocket URL, reconnects after a drop with
 * exponential backoff and jitter (a bounded number of attempts, then the
 * "offline" state until an `online` or `visibilitychange` event), detects
 * dead connections with an application-level heartbeat (browsers hide
 * WebSocket pings from pages), reports its status on <html
 * data-wsserver-status> and with `wsserver:status` events, and carries the
 * message layer every plugin shares: JSON text frames {"p": plugin, "k":
 * kind, ...fields}, handlers registered by (plugin, kind).
 *
 * The one global is `window.wsserver`.  The only code this file evaluates
 * is what the server sends in a js/exec message (execute_js): with an
 * indirect eval, so that it runs in the global scope and never sees this
 * file's variables.  The wire protocol is in docs/plugins/js.md.
 */
(function () {
  "use strict";

  if (Object.prototype.hasOwnProperty.call(window, "wsserver")) {
    console.warn("wsserver: the runtime is loaded twice; the second copy does nothing");
    return;
  }

  var PROTOCOL_VERSION = 1;
  var RUNTIME = "rt";
  var JS = "js";
  // Close codes that say the server refuses what this page sends or is:
  // reconnecting would only repeat the failure, so go offline at once.
  var NO_RETRY = new Set([1002, 1003, 1007, 1008, 1009, 1010]);
  // 1012 (Service Restart): the server is being replaced and a new one
  // already listens (a rolling restart), so reconnect now rather than back
  // off: within a random spread of half the base delay, so that every page
  // does not arrive in the same millisecond.
  var SERVICE_RESTART = 1012;
  // Our close code when the page drops a connection that stopped answering
  // (close() accepts only 1000 and 3000-4999 from scripts).
  var DROP_CODE = 4000;
  var NAME_RE = /^[a-z][a-z0-9_.-]{0,31}$/;
  var DEFAULT_MAX_MESSAGE_SIZE = 1048576;
  var MAX_ERROR_TEXT = 4096;
  var TIMED_OUT = Object.freeze({ timedOut: true });
  // An indirect eval: the code runs in the global scope, in sloppy mode
  // unless it says "use strict" itself, and cannot see this closure.
  var globalEval = eval;
  var encoder = new TextEncoder();

  // -- settings, from the <script> element's data- attributes ---------------

  var script = document.currentScript;
  var data = script && script.dataset ? script.dataset : {};

  function intSetting(text, fallback) {
    var value = Number(text);
    return text !== undefined && text !== "" && Number.isFinite(value) && value >= 0
      ? Math.floor(value)
      : fallback;
  }

  function resolveUrl(raw) {
    var url = new URL(raw, window.location.href);
    if (url.protocol === "http:") url.protocol = "ws:";
    else if (url.protocol === "https:") url.protocol = "wss:";
    url.hash = "";
    return url.href;
  }

  var config = {
    url: data.url || "/ws",
    attempts: intSetting(data.reconnectAttempts, 8),
    baseMs: intSetting(data.reconnectBaseMs, 500),
    maxMs: intSetting(data.reconnectMaxMs, 15000),
    connectTimeoutMs: intSetting(data.connectTimeoutMs, 10000),
  };
  try {
    config.url = resolveUrl(config.url);
  } catch (err) {
    console.error("wsserver: invalid data-url", config.url, err);
  }

  // -- state ------------------------------------------------------------------

  var handlers = new Map(); // "plugin kind" -> handler
  var internal = new Set(); // keys of the runtime's own handlers
  var warned = new Set(); // unknown kinds already warned about
  var socket = null; // the current WebSocket, or null
  var session = null; // {id} once init arrived on the current socket
  var status = null;
  var attempts = 0; // failed attempts since the last init
  var everOpened = false;
  var stopped = false; // closed by the page: no reconnecting
  var maxMessageSize = DEFAULT_MAX_MESSAGE_SIZE;
  var retryTimer = null;
  var connectTimer = null;
  var pingTimer = null;
  var pongTimer = null;
  var pingSeq = 0;
  var awaitingPong = null;

  // -- helpers ------------------------------------------------------------------

  function key(plugin, kind) {
    return plugin + " " + kind; // names never hold spaces
  }

  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  function checkName(name, what) {
    if (typeof name !== "string" || !NAME_RE.test(name)) {
      throw new TypeError("wsserver: invalid " + what + " name " + String(name));
    }
  }

  function cut(text, limit) {
    text = String(text);
    limit = limit || MAX_ERROR_TEXT;
    return text.length > limit ? text.slice(0, limit) + "..." : text;
  }

  function safeString(value) {
    try {
      return String(value);
    } catch (err) {
      return "[value that cannot be converted to a string]";
    }
  }

  function setStatus(next, detail) {
    var previous = status;
    status = next;
    document.documentElement.setAttribute("data-wsserver-status", next);
    var info = Object.assign({ status: next, previous: previous }, detail || {});
    window.dispatchEvent(new CustomEvent("wsserver:status", { detail: info }));
  }

  // -- the message layer --------------------------------------------------------

  // Encode a message; throws TypeError for bad names or values JSON cannot
  // hold, and an error named "MessageTooLarge" over the server's limit.
  function encode(plugin, kind, fields) {
    checkName(plugin, "plugin");
    checkName(kind, "kind");
    // A null-prototype object: a field called "__proto__" stays a field.
    var body = Object.create(null);
    body.p = plugin;
    body.k = kind;
    if (fields !== undefined && fields !== null) {
      if (!isObject(fields)) throw new TypeError("wsserver: fields must be an object");
      Object.keys(fields).forEach(function (name) {
        if (name === "p" || name === "k") {
          throw new TypeError("wsserver: the field names 'p' and 'k' are reserved");
        }
        body[name] = fields[name];
      });
    }
    var text = JSON.stringify(body);
    // At most 3 UTF-8 bytes per UTF-16 unit: encode only when it may matter.
    if (text.length * 3 > maxMessageSize) {
      var size = encoder.encode(text).length;
      if (size > maxMessageSize) {
        var error = new RangeError(
          "message of " + size + " bytes exceeds the limit of " + maxMessageSize + " bytes",
        );
        error.name = "MessageTooLarge";
        throw error;
      }
    }
    return text;
  }

  // Send on `ws` only if it is still the current, initialised connection:
  // an answer must never reach a later connection (another session).
  function sendOn(ws, plugin, kind, fields) {
    var text = encode(plugin, kind, fields);
    if (ws === null || ws !== socket || session === null || ws.readyState !== WebSocket.OPEN) {
      return false;
    }
    ws.send(text);
    return true;
  }

  function register(plugin, kind, handler, isInternal) {
    checkName(plugin, "plugin");
    checkName(kind, "kind");
    if (typeof handler !== "function") throw new TypeError("wsserver: handler must be a function");
    if (!isInternal && plugin === RUNTIME) {
      throw new Error("wsserver: the plugin name 'rt' is the runtime's own");
    }
    var k = key(plugin, kind);
    if (handlers.has(k)) throw new Error("wsserver: a handler for " + plugin + "/" + kind + " exists");
    handlers.set(k, handler);
    if (isInternal) internal.add(k);
    return function off() {
      if (handlers.get(k) === handler) handlers.delete(k);
    };
  }

  function reportUnknown(message) {
    var k = key(message.p, message.k);
    if (!warned.has(k)) {
      warned.add(k);
      console.warn("wsserver: no handler for message kind " + message.p + "/" + message.k + "; ignored");
    }
    window.dispatchEvent(
      new CustomEvent("wsserver:unknown", {
        detail: { plugin: message.p, kind: message.k, message: message },
      }),
    );
  }

  function receive(ws, text) {
    if (typeof text !== "string") {
      console.warn("wsserver: binary message ignored");
      return;
    }
    var message;
    try {
      message = JSON.parse(text);
    } catch (err) {
      console.warn("wsserver: message that is not JSON ignored");
      return;
    }
    if (!isObject(message) || typeof message.p !== "string" || typeof message.k !== "string") {
      console.warn("wsserver: message without string p and k ignored", message);
      return;
    }
    var handler = handlers.get(key(message.p, message.k));
    if (handler === undefined) {
      reportUnknown(message);
      return;
    }
    // Replies through the context go to the connection the message came on.
    var context = Object.freeze({
      send: function (plugin, kind, fields) {
        return sendOn(ws, plugin, kind, fields);
      },
    });
    var where = "wsserver: handler for " + message.p + "/" + message.k + " failed:";
    try {
      var result = handler(message, context);
      if (result && typeof result.then === "function") {
        result.then(undefined, function (err) {
          console.error(where, err);
        });
      }
    } catch (err) {
      console.error(where, err); // one plugin's bug must not stop the others
    }
  }

  // -- connecting, reconnecting, heartbeat ----------------------------------------

  function detach(ws) {
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
  }

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (socket !== null || stopped) return;
    var ws;
    try {
      ws = new WebSocket(config.url);
    } catch (err) {
      console.error("wsserver: cannot connect to", config.url, err);
      setStatus("offline", { reason: safeString(err) });
      return;
    }
    socket = ws;
    if (status !== "reconnecting") {
      setStatus(everOpened ? "reconnecting" : "connecting", { url: config.url });
    }
    if (config.connectTimeoutMs > 0) {
      // A connection attempt into a black hole can hang for minutes.
      connectTimer = setTimeout(function () {
        drop(ws, "connect timeout");
      }, config.connectTimeoutMs);
    }
    ws.onmessage = function (event) {
      if (ws === socket) receive(ws, event.data);
    };
    ws.onclose = function (event) {
      if (ws === socket) lost(event.code, event.reason);
    };
  }

  function lost(code, reason) {
    var ws = socket;
    socket = null;
    session = null;
    clearTimeout(connectTimer);
    connectTimer = null;
    stopHeartbeat();
    if (ws !== null) detach(ws);
    if (stopped) return;
    if (NO_RETRY.has(code)) {
      setStatus("offline", { code: code, reason: reason });
      return;
    }
    if (code === SERVICE_RESTART) {
      // Not an attempt that failed: the backoff starts afresh, and applies
      // if this reconnection fails (a single process still restarting).
      attempts = 0;
      var delay = Math.round((Math.random() * config.baseMs) / 2);
      setStatus("reconnecting", { attempt: 0, delayMs: delay, code: code, reason: reason });
      retryTimer = setTimeout(connect, delay);
      return;
    }
    scheduleRetry(code, reason);
  }

  function scheduleRetry(code, reason) {
    if (attempts >= config.attempts) {
      setStatus("offline", { code: code, reason: reason, attempts: attempts });
      return;
    }
    // Exponential backoff with "equal jitter": between half and all of the
    // capped delay, so that pages dropped together do not return together.
    var cap = Math.min(config.maxMs, config.baseMs * Math.pow(2, attempts));
    var delay = Math.round(cap / 2 + (Math.random() * cap) / 2);
    attempts += 1;
    setStatus("reconnecting", { attempt: attempts, delayMs: delay, code: code, reason: reason });
    retryTimer = setTimeout(connect, delay);
  }

  // Give up on `ws` now, without waiting for a close handshake that a dead
  // connection would never finish.
  function drop(ws, why) {
    if (ws !== socket) return;
    detach(ws);
    try {
      ws.close(DROP_CODE, why);
    } catch (err) {
      // Closing a broken socket may throw; it is abandoned either way.
    }
    lost(1006, why);
  }

  function startHeartbeat(intervalMs, timeoutMs) {
    stopHeartbeat();
    if (!(typeof intervalMs === "number" && intervalMs > 0)) return;
    if (!(typeof timeoutMs === "number" && timeoutMs > 0)) timeoutMs = 10000;
    var ws = socket;
    pingTimer = setInterval(function () {
      if (ws !== socket || awaitingPong !== null) return;
      pingSeq += 1;
      awaitingPong = pingSeq;
      sendOn(ws, RUNTIME, "ping", { n: pingSeq });
      pongTimer = setTimeout(function () {
        console.warn("wsserver: no pong within " + timeoutMs + " ms; reconnecting");
        drop(ws, "heartbeat timeout");
      }, timeoutMs);
    }, intervalMs);
  }

  function stopHeartbeat() {
    clearInterval(pingTimer);
    clearTimeout(pongTimer);
    pingTimer = pongTimer = null;
    awaitingPong = null;
  }

  function resume() {
    if (stopped || socket !== null) return;
    if (status === "offline" || retryTimer !== null) {
      attempts = 0;
      connect();
    }
  }

  register(
    RUNTIME,
    "init",
    function (message) {
      if (message.v !== PROTOCOL_VERSION) {
        console.warn("wsserver: the server speaks protocol", message.v, "and this runtime", PROTOCOL_VERSION);
      }
      clearTimeout(connectTimer);
      connectTimer = null;
      attempts = 0;
      everOpened = true;
      var limit = message.max_message_size;
      maxMessageSize =
        typeof limit === "number" && limit >= 1 ? Math.floor(limit) : DEFAULT_MAX_MESSAGE_SIZE;
      session = { id: String(message.sid) };
      startHeartbeat(message.ping_interval_ms, message.ping_timeout_ms);
      setStatus("open", { sessionId: session.id });
    },
    true,
  );

  register(
    RUNTIME,
    "pong",
    function (message) {
      if (awaitingPong !== null && message.n === awaitingPong) {
        clearTimeout(pongTimer);
        pongTimer = null;
        awaitingPong = null;
      }
    },
    true,
  );

  // -- JS execution (the "js" plugin) --------------------------------------------

  function isThenable(value) {
    return (
      value !== null &&
      (typeof value === "object" || typeof value === "function") &&
      typeof value.then === "function"
    );
  }

  function describeError(err) {
    var name = "Error";
    var message;
    var stack = null;
    try {
      if (err !== null && (typeof err === "object" || typeof err === "function")) {
        if (typeof err.name === "string" && err.name) name = err.name;
        message = typeof err.message === "string" ? err.message : safeString(err);
        if (typeof err.stack === "string") stack = err.stack;
      } else {
        message = safeString(err);
      }
    } catch (again) {
      message = "[an error that cannot be described]";
    }
    return { name: cut(name, 200), message: cut(message), stack: stack === null ? null : cut(stack) };
  }

  function answer(context, id, outcome) {
    var fields = outcome.ok
      ? { id: id, ok: true, value: outcome.value }
      : { id: id, ok: false, error: outcome.error };
    try {
      context.send(JS, "result", fields);
      return;
    } catch (err) {
      var tooLarge = err && err.name === "MessageTooLarge";
      var reason = describeError(err);
      var error = tooLarge
        ? { name: "ResultTooLarge", message: "the result is too large: " + reason.message }
        : { name: reason.name, message: "the result is not JSON-serialisable: " + reason.message };
      // Smaller and smaller error answers, so that the server is told even
      // under a tiny message limit (else it would wait for its timeout).
      var attemptsLeft = [
        error,
        { name: error.name, message: cut(error.message, 100) },
        { name: error.name, message: "" },
      ];
      for (var i = 0; i < attemptsLeft.length; i += 1) {
        try {
          context.send(JS, "result", { id: id, ok: false, error: attemptsLeft[i] });
          return;
        } catch (again) {
          // try the next, smaller answer
        }
      }
      console.error("wsserver: cannot answer execute_js call", id, err);
    }
  }

  register(
    JS,
    "exec",
    function (message, context) {
      var reply = message.reply === true;
      var id = message.id;
      var timeoutMs = message.timeout_ms;
      var timer = null;
      var deadline = null;
      if (typeof timeoutMs === "number" && timeoutMs > 0) {
        // Stop waiting when the server does (it has raised its timeout).
        deadline = new Promise(function (resolve, reject) {
          timer = setTimeout(function () {
            reject(TIMED_OUT);
          }, timeoutMs);
        });
        deadline.catch(function () {}); // never an unhandled rejection
      }
      function settle(value) {
        if (!isThenable(value)) return value;
        var promise = Promise.resolve(value); // adopts any thenable
        return deadline === null ? promise : Promise.race([promise, deadline]);
      }
      return (async function () {
        var outcome;
        try {
          var value = await settle(globalEval(String(message.code)));
          if (typeof message.expr === "string") value = await settle(globalEval(message.expr));
          outcome = { ok: true, value: value };
        } catch (err) {
          if (err === TIMED_OUT) return;
          outcome = { ok: false, error: describeError(err) };
        } finally {
          clearTimeout(timer);
        }
        if (reply) {
          answer(context, id, outcome);
        } else if (!outcome.ok) {
          console.error("wsserver: execute_js code failed:", outcome.error.name + ": " + outcome.error.message);
        }
      })();
    },
    true,
  );

  // -- page lifecycle -----------------------------------------------------------

  window.addEventListener("online", resume);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") resume();
  });
  // Entering the back/forward cache: close, so that the page is eligible and
  // the server does not keep a session for a frozen page; restart on return.
  window.addEventListener("pagehide", function (event) {
    if (event.persisted) closeByPage("page hidden");
  });
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) openByPage();
  });

  function closeByPage(reason) {
    stopped = true;
    clearTimeout(retryTimer);
    retryTimer = null;
    var ws = socket;
    if (ws !== null) {
      lost(1000, reason);
      try {
        ws.close(1000, reason);
      } catch (err) {
        // already closing
      }
    }
    setStatus("offline", { reason: reason });
  }

  function openByPage() {
    stopped = false;
    attempts = 0;
    if (socket === null) connect();
  }

  // -- the one global -------------------------------------------------------------

  var api = Object.freeze({
    protocol: PROTOCOL_VERSION,
    get status() {
      return status;
    },
    get sessionId() {
      return session === null ? null : session.id;
    },
    get maxMessageSize() {
      return maxMessageSize;
    },
    get url() {
      return config.url;
    },
    /** Register handler(message, context) for (plugin, kind); returns an unregister function. */
    on: function (plugin, kind, handler) {
      return register(plugin, kind, handler, false);
    },
    /** Remove the handler of (plugin, kind); the runtime's own stay. */
    off: function (plugin, kind) {
      var k = key(plugin, kind);
      if (internal.has(k)) throw new Error("wsserver: cannot remove the runtime's own handler");
      return handlers.delete(k);
    },
    /** Send {p: plugin, k: kind, ...fields}; false when not connected. */
    send: function (plugin, kind, fields) {
      return sendOn(socket, plugin, kind, fields);
    },
    /** Connect now (after close(), or to leave the offline state). */
    connect: openByPage,
    /** Close and stay closed until connect(). */
    close: function () {
      closeByPage("closed by the page");
    },
  });
  Object.defineProperty(window, "wsserver", { value: api, enumerable: true });

  connect();
})();
