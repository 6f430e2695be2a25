/*!
 * wsserver channels: the browser side of wsserver.plugins.channels.
 *
 * Loaded after the runtime (runtime.js), served versioned like it:
 *   <script src=".../runtime.<hash>.js" data-url="/ws"></script>
 *   <script src=".../channels.<hash>.js"></script>
 * (ChannelManager.install serves both; channels_script_tag renders the tag.)
 *
 * It registers the plugin "ch" on window.wsserver and adds one global,
 * window.wsserverChannels, a frozen object:
 *   channel, user, node       this connection's channel (from ch/init)
 *   ready()                   a promise of the channel id, once open
 *   on(fn)                    fn(data, {topic, epoch, offset}) for every server
 *                             message (epoch and offset: topics with history)
 *   onTopic(topic, fn)        the same, for one topic's messages
 *   onCustom(kind, fn)        fn(data, {kind, topic}) for the server's custom
 *                             messages of one kind (send_message(...,
 *                             custom=True)); on(fn) listeners do not get them
 *   onLost(fn)                fn({topic, reason, epoch, offset}) when a topic's
 *                             missed messages could not be recovered
 *   onPresence(fn)            fn({topic, event, channel, user}) when a channel
 *                             joins ("join") or leaves ("leave") a topic with
 *                             presence that this page follows
 *   position(topic)           {epoch, offset} last seen in a topic with history
 *   forget(topic)             stop remembering a topic's position
 *   onRequest(fn)             the one handler of the server's send_and_wait:
 *                             what it returns (or resolves to) is the answer
 *   send(kind, data)          a custom message; true if sent
 *   request(kind, data, {timeoutMs})
 *                             a custom message whose handler's return value
 *                             comes back: a promise
 *   updateToken(token)        a new token for this connection's identity,
 *                             checked by the server; a promise of {user}
 * on, onTopic, onCustom and onRequest return a function that removes the handler.
 *
 * Topics with history: every message carries its epoch and offset; this
 * module remembers the last one per topic, drops a message it has already
 * seen, and on each new connection sends the positions back in ch/ready, so
 * that when the application subscribes the new channel to the topic again,
 * the server replays what was missed (or says ch/lost: onLost, and a
 * "wsserver:lost" event).
 *
 * Messages larger than the connection's limit travel as ch/chunk messages
 * with an index and a count, both ways; the receiver reassembles them in
 * order, within limits, and drops a message whose chunks do not all arrive
 * in time.  Everything the server sends is data: nothing here evaluates
 * code.  The wire protocol is in docs/plugins/channels.md.
 */
(function () {
  "use strict";

  var rt = window.wsserver;
  if (!rt || typeof rt.on !== "function") {
    console.error("wsserver channels: load the runtime (runtime.js) before channels.js");
    return;
  }
  if (Object.prototype.hasOwnProperty.call(window, "wsserverChannels")) {
    console.warn("wsserver channels: loaded twice; the second copy does nothing");
    return;
  }

  var PLUGIN = "ch";
  var DEFAULT_TIMEOUT_MS = 30000;
  var MAX_ID_LENGTH = 64;
  // Bytes a chunk message takes besides its data, with room to spare.
  var CHUNK_OVERHEAD = 128;
  var encoder = new TextEncoder();

  var info = { channel: null, user: null, node: null };
  var limits = { maxChunkedSize: 8388608, maxChunks: 1024, chunkTimeoutMs: 10000 };
  var listeners = new Set();
  var lostListeners = new Set();
  var presenceListeners = new Set();
  var positions = new Map(); // topic -> {epoch, offset}, topics with history
  var topicListeners = new Map(); // topic -> Set of functions
  var customListeners = new Map(); // custom kind -> Set of functions
  var unhandledKinds = new Set(); // custom kinds already reported without a handler
  var requestHandler = null;
  var pending = new Map(); // rchan -> {resolve, reject, timer}
  var assemblies = new Map(); // chunk id -> {n, parts, got, size, timer}
  var readyWaiters = [];
  var nextRequest = 1;
  var nextChunk = 1;

  function utf8Length(text) {
    return encoder.encode(text).length;
  }

  function namedError(name, message) {
    var error = new Error(message);
    error.name = name;
    return error;
  }

  function describe(err) {
    var name = "Error";
    var message;
    try {
      if (err !== null && typeof err === "object") {
        if (typeof err.name === "string" && err.name) name = err.name;
        message = typeof err.message === "string" ? err.message : String(err);
      } else {
        message = String(err);
      }
    } catch (again) {
      message = "[an error that cannot be described]";
    }
    return { name: name.slice(0, 200), message: message.slice(0, 4096) };
  }

  // -- sending, with chunking -------------------------------------------------

  // Cut `text` into slices whose JSON-escaped UTF-8 size is at most `budget`,
  // never between the two halves of a surrogate pair.
  function split(text, budget) {
    var pieces = [];
    var position = 0;
    while (position < text.length) {
      var end = Math.min(text.length, position + budget);
      for (;;) {
        var code = text.charCodeAt(end - 1);
        if (end < text.length && end - position > 1 && code >= 0xd800 && code <= 0xdbff) end -= 1;
        var piece = text.slice(position, end);
        var size = utf8Length(JSON.stringify(piece)) - 2;
        if (size <= budget || end - position <= 1) break;
        end = position + Math.max(1, Math.min(end - position - 1, Math.floor(((end - position) * budget) / size * 0.97)));
      }
      pieces.push(piece);
      position = end;
    }
    return pieces;
  }

  // Send one ch message through `send` (the runtime's, or a handler context's,
  // which keeps an answer on the connection the question came on).
  function sendVia(send, kind, fields) {
    var body = Object.assign({ p: PLUGIN, k: kind }, fields);
    var text = JSON.stringify(body); // TypeError for what JSON cannot hold
    var limit = rt.maxMessageSize;
    // At most 3 UTF-8 bytes per UTF-16 unit: encode only when it may matter.
    var size = text.length * 3 <= limit ? 0 : utf8Length(text);
    if (size <= limit) return send(PLUGIN, kind, fields);
    if (size > limits.maxChunkedSize) {
      throw namedError(
        "MessageTooLarge",
        "message of " + size + " bytes exceeds the limit of " + limits.maxChunkedSize + " bytes",
      );
    }
    var id = "c" + nextChunk++;
    var pieces = split(text, limit - CHUNK_OVERHEAD);
    if (pieces.length > limits.maxChunks) {
      throw namedError("MessageTooLarge", "message needs more than " + limits.maxChunks + " chunks");
    }
    for (var i = 0; i < pieces.length; i++) {
      if (!send(PLUGIN, "chunk", { id: id, i: i, n: pieces.length, data: pieces[i] })) return false;
    }
    return true;
  }

  function rtSend(plugin, kind, fields) {
    return rt.send(plugin, kind, fields);
  }

  // -- receiving -------------------------------------------------------------

  function isPosition(message) {
    return typeof message.ep === "string" && Number.isInteger(message.off) && message.off >= 0;
  }

  // Whether a topic message is new (and remember it); a repeat is dropped.
  function advance(topic, message) {
    if (topic === null || !isPosition(message)) return true;
    var known = positions.get(topic);
    if (known !== undefined && known.epoch === message.ep && message.off <= known.offset) return false;
    positions.set(topic, { epoch: message.ep, offset: message.off });
    return true;
  }

  function deliver(message) {
    var topic = typeof message.topic === "string" ? message.topic : null;
    if (!advance(topic, message)) return;
    var meta = Object.freeze(
      isPosition(message)
        ? { topic: topic, epoch: message.ep, offset: message.off }
        : { topic: topic },
    );
    var targets;
    if (typeof message.kind === "string") {
      // A custom envelope: for its kind's handlers only.
      meta = Object.freeze({ kind: message.kind, topic: topic });
      targets = Array.from(customListeners.get(message.kind) || []);
      if (targets.length === 0 && !unhandledKinds.has(message.kind)) {
        unhandledKinds.add(message.kind);
        console.warn("wsserver channels: no onCustom handler for kind", message.kind);
      }
    } else {
      targets = Array.from(listeners);
      if (topic !== null && topicListeners.has(topic)) {
        targets = targets.concat(Array.from(topicListeners.get(topic)));
      }
    }
    targets.forEach(function (fn) {
      try {
        var result = fn(message.data, meta);
        if (result && typeof result.then === "function") {
          result.then(undefined, function (err) {
            console.error("wsserver channels: message handler failed:", err);
          });
        }
      } catch (err) {
        console.error("wsserver channels: message handler failed:", err); // the others still run
      }
    });
  }

  function answer(context, rchan, outcome) {
    var fields = outcome.ok
      ? { response_for: rchan, ok: true, data: outcome.value === undefined ? null : outcome.value }
      : { response_for: rchan, ok: false, error: outcome.error };
    try {
      sendVia(context.send, "reply", fields);
    } catch (err) {
      // Not JSON-serialisable, or too large: answer with the error instead.
      sendVia(context.send, "reply", { response_for: rchan, ok: false, error: describe(err) });
    }
  }

  function serveRequest(message, context) {
    var rchan = message.rchan;
    Promise.resolve()
      .then(function () {
        if (requestHandler === null) throw namedError("NoHandler", "the page has no request handler");
        var meta = typeof message.kind === "string" ? { rchan: rchan, kind: message.kind } : { rchan: rchan };
        return requestHandler(message.data, Object.freeze(meta));
      })
      .then(
        function (value) {
          answer(context, rchan, { ok: true, value: value });
        },
        function (err) {
          answer(context, rchan, { ok: false, error: describe(err) });
        },
      );
  }

  function onMsg(message, context) {
    if (typeof message.rchan === "string") serveRequest(message, context);
    else deliver(message);
  }

  function onRes(message) {
    var waiter = pending.get(message.response_for);
    if (waiter === undefined) return; // timed out meanwhile
    pending.delete(message.response_for);
    clearTimeout(waiter.timer);
    if (message.ok === true) {
      waiter.resolve(message.data === undefined ? null : message.data);
    } else {
      var error = message.error || {};
      waiter.reject(namedError(String(error.name || "Error"), String(error.message || "")));
    }
  }

  function onInit(message) {
    info = Object.freeze({ channel: String(message.channel), user: message.user, node: message.node });
    if (typeof message.max_chunked_size === "number") limits.maxChunkedSize = message.max_chunked_size;
    if (typeof message.max_chunks === "number") limits.maxChunks = message.max_chunks;
    if (typeof message.chunk_timeout_ms === "number") limits.chunkTimeoutMs = message.chunk_timeout_ms;
    document.documentElement.setAttribute("data-wsserver-channel", info.channel);
    var waiters = readyWaiters;
    readyWaiters = [];
    waiters.forEach(function (resolve) {
      resolve(info.channel);
    });
    window.dispatchEvent(new CustomEvent("wsserver:channel", { detail: info }));
  }

  function onPos(message) {
    if (typeof message.topic === "string" && isPosition(message)) {
      positions.set(message.topic, { epoch: message.ep, offset: message.off });
    }
  }

  function onLost(message) {
    if (typeof message.topic !== "string") return;
    var detail = { topic: message.topic, reason: String(message.reason || "lost"), epoch: null, offset: null };
    if (isPosition(message)) {
      positions.set(message.topic, { epoch: message.ep, offset: message.off });
      detail.epoch = message.ep;
      detail.offset = message.off;
    }
    detail = Object.freeze(detail);
    lostListeners.forEach(function (fn) {
      try {
        fn(detail);
      } catch (err) {
        console.error("wsserver channels: lost handler failed:", err);
      }
    });
    window.dispatchEvent(new CustomEvent("wsserver:lost", { detail: detail }));
  }

  function onPresence(message) {
    if (typeof message.topic !== "string" || typeof message.channel !== "string") return;
    var detail = Object.freeze({
      topic: message.topic,
      event: message.event === "leave" ? "leave" : "join",
      channel: message.channel,
      user: typeof message.user === "string" ? message.user : null,
    });
    presenceListeners.forEach(function (fn) {
      try {
        fn(detail);
      } catch (err) {
        console.error("wsserver channels: presence handler failed:", err);
      }
    });
    window.dispatchEvent(new CustomEvent("wsserver:presence", { detail: detail }));
  }

  // The server moved this channel to another user (a token update).
  function onIdentity(message) {
    info = Object.freeze({ channel: info.channel, user: message.user, node: info.node });
    window.dispatchEvent(new CustomEvent("wsserver:identity", { detail: info }));
  }

  var kinds = {
    init: onInit,
    msg: onMsg,
    res: onRes,
    pos: onPos,
    lost: onLost,
    presence: onPresence,
    identity: onIdentity,
  };

  function dropAssembly(id) {
    var assembly = assemblies.get(id);
    if (assembly !== undefined) {
      clearTimeout(assembly.timer);
      assemblies.delete(id);
    }
  }

  function onChunk(message, context) {
    var id = message.id;
    var i = message.i;
    var n = message.n;
    if (
      typeof id !== "string" || id.length === 0 || id.length > MAX_ID_LENGTH ||
      !Number.isInteger(n) || n < 1 || n > limits.maxChunks ||
      !Number.isInteger(i) || i < 0 || i >= n || typeof message.data !== "string"
    ) {
      console.warn("wsserver channels: malformed chunk ignored");
      return;
    }
    var assembly = assemblies.get(id);
    if (assembly === undefined) {
      assembly = { n: n, parts: new Array(n), got: 0, size: 0, timer: null };
      assembly.timer = setTimeout(function () {
        assemblies.delete(id);
        console.warn("wsserver channels: chunked message " + id + " incomplete: dropped");
      }, limits.chunkTimeoutMs);
      assemblies.set(id, assembly);
    }
    if (assembly.n !== n || assembly.parts[i] !== undefined) {
      console.warn("wsserver channels: inconsistent chunk of " + id + ": message dropped");
      dropAssembly(id);
      return;
    }
    assembly.size += utf8Length(message.data);
    if (assembly.size > limits.maxChunkedSize) {
      console.warn("wsserver channels: chunked message " + id + " too large: dropped");
      dropAssembly(id);
      return;
    }
    assembly.parts[i] = message.data;
    assembly.got += 1;
    if (assembly.got < n) return;
    dropAssembly(id);
    var inner;
    try {
      inner = JSON.parse(assembly.parts.join(""));
    } catch (err) {
      console.warn("wsserver channels: chunked message " + id + " is not JSON: dropped");
      return;
    }
    var handler = inner && inner.p === PLUGIN ? kinds[inner.k] : undefined;
    if (handler === undefined) {
      console.warn("wsserver channels: chunked message of an unexpected kind dropped");
      return;
    }
    handler(inner, context);
  }

  // The server holds the channel's messages until this module says it can
  // handle them: on every new connection, and now if one is open already
  // (the runtime may have connected while this file was loading).
  // With the positions reached in topics with history, for the server to
  // replay what this page missed when it subscribes the new channel again.
  function sayReady() {
    var pos = {};
    positions.forEach(function (position, topic) {
      pos[topic] = { ep: position.epoch, off: position.offset };
    });
    rt.send(PLUGIN, "ready", positions.size ? { pos: pos } : {});
  }

  // A new connection is a new channel: what waited on the old one fails now.
  window.addEventListener("wsserver:status", function (event) {
    if (event.detail.status === "open") {
      sayReady();
      return;
    }
    if (info.channel !== null) info = Object.freeze({ channel: null, user: null, node: null });
    document.documentElement.removeAttribute("data-wsserver-channel");
    assemblies.forEach(function (assembly) {
      clearTimeout(assembly.timer);
    });
    assemblies.clear();
    var waiting = Array.from(pending.values());
    pending.clear();
    waiting.forEach(function (waiter) {
      clearTimeout(waiter.timer);
      waiter.reject(namedError("Disconnected", "the connection closed before the answer"));
    });
  });

  rt.on(PLUGIN, "init", onInit);
  rt.on(PLUGIN, "msg", onMsg);
  rt.on(PLUGIN, "res", onRes);
  rt.on(PLUGIN, "chunk", onChunk);
  rt.on(PLUGIN, "pos", onPos);
  rt.on(PLUGIN, "lost", onLost);
  rt.on(PLUGIN, "presence", onPresence);
  rt.on(PLUGIN, "identity", onIdentity);
  if (rt.status === "open") sayReady();

  // -- the API -----------------------------------------------------------------

  function checkFunction(fn) {
    if (typeof fn !== "function") throw new TypeError("wsserver channels: expected a function");
  }

  function remover(set, fn) {
    return function off() {
      set.delete(fn);
    };
  }

  // Send a message with a reply channel; a promise of its ch/res answer.
  function ask(kind, fields, options) {
    var timeoutMs = options && typeof options.timeoutMs === "number" ? options.timeoutMs : DEFAULT_TIMEOUT_MS;
    return new Promise(function (resolve, reject) {
      if (info.channel === null) {
        reject(namedError("Disconnected", "the channel is not open"));
        return;
      }
      var rchan = "r" + nextRequest++;
      var waiter = { resolve: resolve, reject: reject, timer: null };
      waiter.timer = setTimeout(function () {
        pending.delete(rchan);
        reject(namedError("TimeoutError", "no answer within " + timeoutMs + " ms"));
      }, timeoutMs);
      pending.set(rchan, waiter);
      var sent;
      try {
        sent = sendVia(rtSend, kind, Object.assign({}, fields, { rchan: rchan }));
      } catch (err) {
        sent = err;
      }
      if (sent !== true) {
        pending.delete(rchan);
        clearTimeout(waiter.timer);
        reject(sent instanceof Error ? sent : namedError("Disconnected", "not connected"));
      }
    });
  }

  var api = Object.freeze({
    get channel() {
      return info.channel;
    },
    get user() {
      return info.user;
    },
    get node() {
      return info.node;
    },
    /** A promise of the channel id, resolved at once if the channel is open. */
    ready: function () {
      if (info.channel !== null) return Promise.resolve(info.channel);
      return new Promise(function (resolve) {
        readyWaiters.push(resolve);
      });
    },
    /** fn({topic, reason, epoch, offset}) when missed messages cannot be recovered. */
    onLost: function (fn) {
      checkFunction(fn);
      lostListeners.add(fn);
      return remover(lostListeners, fn);
    },
    /** fn({topic, event, channel, user}) for joins and leaves of topics with presence. */
    onPresence: function (fn) {
      checkFunction(fn);
      presenceListeners.add(fn);
      return remover(presenceListeners, fn);
    },
    /** {epoch, offset} last seen in a topic with history, or null. */
    position: function (topic) {
      var known = positions.get(String(topic));
      return known === undefined ? null : Object.freeze({ epoch: known.epoch, offset: known.offset });
    },
    /** Stop remembering a topic's position (after leaving it). */
    forget: function (topic) {
      positions.delete(String(topic));
    },
    /** fn(data, {topic, epoch, offset}) for every message from the server; returns an off function. */
    on: function (fn) {
      checkFunction(fn);
      listeners.add(fn);
      return remover(listeners, fn);
    },
    /** fn(data, {topic}) for the messages of one topic; returns an off function. */
    onTopic: function (topic, fn) {
      checkFunction(fn);
      var set = topicListeners.get(String(topic));
      if (set === undefined) topicListeners.set(String(topic), (set = new Set()));
      set.add(fn);
      return remover(set, fn);
    },
    /** fn(data, {kind, topic}) for the server's custom messages of one kind; returns an off function. */
    onCustom: function (kind, fn) {
      checkFunction(fn);
      var set = customListeners.get(String(kind));
      if (set === undefined) customListeners.set(String(kind), (set = new Set()));
      set.add(fn);
      return remover(set, fn);
    },
    /** The one handler of the server's send_and_wait; returns an off function. */
    onRequest: function (fn) {
      checkFunction(fn);
      requestHandler = fn;
      return function off() {
        if (requestHandler === fn) requestHandler = null;
      };
    },
    /** Send a custom message; false when not connected. */
    send: function (kind, data) {
      if (info.channel === null) return false;
      return sendVia(rtSend, "custom", { kind: String(kind), data: data === undefined ? null : data });
    },
    /** Send a custom message and get its handler's answer (a promise). */
    request: function (kind, data, options) {
      return ask("custom", { kind: String(kind), data: data === undefined ? null : data }, options);
    },
    /**
     * A new token for this connection's identity (a refreshed login): the
     * server's verify_token checks it; a promise of {user}, rejected with the
     * refusal.  The connection stays open either way.
     */
    updateToken: function (token, options) {
      return ask("token", { token: String(token) }, options);
    },
  });
  Object.defineProperty(window, "wsserverChannels", { value: api, enumerable: true });
})();
