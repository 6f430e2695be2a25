/*!
 * wsserver component view: the browser side of wsserver.plugins.components.
 *
 * Loaded after the runtime (runtime.js), on a page rendered by a
 * ComponentApp:
 *   <div id="cv-root" data-cv-page="<page id>" data-cv-seq="0">...</div>
 *   <script src=".../runtime.<hash>.js" data-url="/_wsserver/cv"></script>
 *   <script src=".../components.<hash>.js" data-reload-ms="1500"></script>
 *
 * What it does: maps every keyed node of the server-rendered page (data-k
 * attributes; text nodes by position) and binds the listeners the server
 * asked for (data-cv-on); attaches the page when the runtime's connection
 * opens (again after every reconnect: that is the resume); applies patch
 * batches (cv/patch) in one animation frame through the key -> node map;
 * sends events (cv/ev) with the values it extracts; intercepts links and
 * forms to navigate without reloads (cv/nav), and back/forward.
 *
 * Everything the server sends is data: text goes in with textContent or a
 * text node's data, attributes with setAttribute, styles with
 * style.setProperty.  There is no innerHTML, no eval, no Function, no
 * string timer here; event-handler attributes (on*) and script URLs are
 * refused even if a patch asks for them.  The wire protocol is in
 * docs/plugins/components.md.  No global is added: handlers are registered
 * on window.wsserver under the plugin name "cv".
 */
(function () {
  "use strict";

  var rt = window.wsserver;
  if (!rt || typeof rt.on !== "function") {
    console.error("wsserver components: load the runtime (runtime.js) before components.js");
    return;
  }
  var container = document.getElementById("cv-root");
  if (container === null || !container.hasAttribute("data-cv-page")) {
    console.error("wsserver components: no #cv-root[data-cv-page] element on this page");
    return;
  }
  if (container.hasAttribute("data-cv-state")) {
    console.warn("wsserver components: loaded twice; the second copy does nothing");
    return;
  }
  var pageId = container.getAttribute("data-cv-page");
  if (!pageId) return; // a static page: rendered, not live

  var PLUGIN = "cv";
  var SVG_NS = "http://www.w3.org/2000/svg";
  var script = document.currentScript;
  var reloadMs = script && script.dataset ? Number(script.dataset.reloadMs) : NaN;
  if (!(reloadMs >= 0)) reloadMs = 1500;
  var MAX_LIVE = 2048;
  var UPLOAD = "cv:upload";
  var LOOP_GUARD_MS = 10000;

  // The same rules as wsserver/plugins/components/html.py, checked again
  // here: a patch is data, and data never becomes code.
  var TAG_RE = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;
  var ATTR_RE = /^[A-Za-z_:][A-Za-z0-9_:.-]{0,63}$/;
  var STYLE_NAME_RE = /^(?:--[A-Za-z0-9_-]{1,62}|-?[a-z][a-z0-9-]{0,62})$/;
  var STYLE_VALUE_BAD_RE = /[;{}<>]|expression\s*\(|javascript:|vbscript:/i;
  var FORBIDDEN_TAGS = new Set(
    (
      "script style base meta link title head html body object embed applet frame frameset " +
      "noscript noembed noframes xmp plaintext listing template animate set animatemotion " +
      "animatetransform handler listener"
    ).split(" "),
  );
  var FORBIDDEN_ATTRS = new Set(["srcdoc", "style", "data-k", "xmlns", "is"]);
  var URL_ATTRS = new Set(
    (
      "href src action formaction xlink:href poster cite background data codebase longdesc " +
      "manifest ping profile usemap lowsrc dynsrc classid archive icon itemtype"
    ).split(" "),
  );
  var SRCSET_ATTRS = new Set(["srcset", "imagesrcset"]);
  var SAFE_SCHEMES = new Set(["http", "https", "mailto", "tel", "sms", "ftp", "blob"]);
  var URL_IGNORED_RE =
    /[\u0000-\u0020\u007f-\u009f\u00a0\u00ad\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\ufeff]/g;
  var SCHEME_RE = /^([A-Za-z][A-Za-z0-9+.\-]*):/;
  var IMAGE_DATA_RE = /^data:image\/(?:png|gif|jpeg|jpg|webp|avif|bmp)[;,]/i;

  // -- state ----------------------------------------------------------------

  var nodes = new Map(); // key -> Node
  var keyOf = new WeakMap(); // Node -> key
  var listeners = new WeakMap(); // Element -> Map(event type -> binding)
  var seq = Number(container.getAttribute("data-cv-seq")) || 0;
  var queue = []; // batches waiting for the next animation frame
  var frame = null; // {raf: id} or {timeout: id}
  var currentUrl = location.pathname + location.search;
  var pendingForm = null; // the last form submitted through cv/nav
  var expired = false;
  var misparsed = false; // the parsed page is not the server's tree

  function Inconsistent(message) {
    this.name = "Inconsistent";
    this.message = message;
  }

  function setState(state) {
    container.setAttribute("data-cv-state", state);
  }

  function announce(kind, detail) {
    window.dispatchEvent(
      new CustomEvent("wsserver:cv", { detail: Object.assign({ kind: kind, seq: seq }, detail || {}) }),
    );
  }

  // -- safety checks ------------------------------------------------------------

  function safeUrl(value, attribute) {
    var squeezed = String(value).replace(URL_IGNORED_RE, "");
    var match = SCHEME_RE.exec(squeezed);
    if (match === null) return true;
    var scheme = match[1].toLowerCase();
    if (SAFE_SCHEMES.has(scheme)) return true;
    return (
      scheme === "data" && (attribute === "src" || attribute === "poster") && IMAGE_DATA_RE.test(squeezed)
    );
  }

  function safeSrcset(value) {
    return String(value)
      .split(",")
      .every(function (candidate) {
        var url = candidate.trim().split(" ")[0];
        return !url || safeUrl(url, "src");
      });
  }

  function attributeAllowed(name) {
    if (typeof name !== "string" || !ATTR_RE.test(name)) return false;
    var lower = name.toLowerCase();
    return !(
      lower.indexOf("on") === 0 ||
      FORBIDDEN_ATTRS.has(lower) ||
      (lower.indexOf("data-cv-") === 0 && lower !== "data-cv-reload") ||
      lower.indexOf("xmlns:") === 0
    );
  }

  // -- the key -> node map ------------------------------------------------------

  function register(key, node) {
    var existing = nodes.get(key);
    if (existing !== undefined && existing !== node) throw new Inconsistent("duplicate key " + key);
    nodes.set(key, node);
    keyOf.set(node, key);
  }

  function need(key) {
    var node = nodes.get(key);
    if (node === undefined) throw new Inconsistent("no node keyed " + key);
    return node;
  }

  function forget(node) {
    var key = keyOf.get(node);
    if (key !== undefined && nodes.get(key) === node) nodes.delete(key);
    var bound = listeners.get(node);
    if (bound !== undefined) {
      bound.forEach(function (binding) {
        clearTimeout(binding.timer); // a debounced event of a removed node is never sent
      });
      if (bound.has(UPLOAD)) stopUploadsOf(node, true); // its upload goes with it
    }
    for (var child = node.firstChild; child !== null; child = child.nextSibling) forget(child);
  }

  function forgetChildren(node) {
    for (var child = node.firstChild; child !== null; child = child.nextSibling) forget(child);
  }

  // The server's HTML, mapped: elements by data-k, text nodes by position
  // among their parent's element and text children (as vdom.py keys them).
  function adopt(el) {
    var key = el.getAttribute("data-k");
    register(key, el);
    var spec = el.getAttribute("data-cv-on");
    if (spec !== null) {
      el.removeAttribute("data-cv-on");
      try {
        bindAll(el, JSON.parse(spec));
      } catch (err) {
        console.error("wsserver components: bad data-cv-on on", key, err);
      }
    }
    var hasElements = el.firstElementChild !== null;
    var index = 0;
    for (var child = el.firstChild; child !== null; child = child.nextSibling) {
      if (child.nodeType === 1) {
        if (child.hasAttribute("data-k")) {
          // A keyed element must sit in its key's parent: the HTML parser
          // moves some (a <div> out of a <p>), and then patches would not fit.
          var childKey = child.getAttribute("data-k");
          if (childKey.lastIndexOf("/") !== key.length || childKey.indexOf(key + "/") !== 0) {
            misparsed = true;
          }
          adopt(child);
        }
        index += 1;
      } else if (child.nodeType === 3) {
        // An element's only text is its text content, not a keyed node.
        if (hasElements) register(key + "/#" + index, child);
        index += 1;
      }
    }
  }

  function hydrate() {
    nodes.clear();
    for (var child = container.firstElementChild; child !== null; child = child.nextElementSibling) {
      if (child.hasAttribute("data-k")) adopt(child);
    }
  }

  function countNodes() {
    var count = 0;
    nodes.forEach(function (node, key) {
      if (key.indexOf("/@") < 0) count += 1; // imperative documents' nodes aside
    });
    return count;
  }

  // -- building and changing nodes ----------------------------------------------

  function setProp(el, name, value) {
    if (!attributeAllowed(name)) {
      console.warn("wsserver components: attribute refused:", name);
      return;
    }
    var lower = name.toLowerCase();
    if (typeof value === "string") {
      if ((URL_ATTRS.has(lower) && !safeUrl(value, lower)) || (SRCSET_ATTRS.has(lower) && !safeSrcset(value))) {
        console.warn("wsserver components: unsafe URL refused in", name);
        value = null;
      }
    }
    var tag = el.localName;
    if (name === "value" && (tag === "input" || tag === "textarea" || tag === "select")) {
      if (value === null) {
        el.removeAttribute("value"); // no longer controlled: the user's value stays
        return;
      }
      var text = typeof value === "string" ? value : "";
      if (tag === "input") el.setAttribute("value", text); // the default, kept in step
      if (el.value !== text) el.value = text; // only if different: the caret stays
      return;
    }
    if ((name === "checked" && tag === "input") || (name === "selected" && tag === "option")) {
      if (value === null) {
        el.removeAttribute(name);
        return;
      }
      var on = value !== false;
      if (on) el.setAttribute(name, "");
      else el.removeAttribute(name);
      el[name] = on; // the property: what the user sees
      return;
    }
    if (value === null || value === false) el.removeAttribute(name);
    else el.setAttribute(name, value === true ? "" : String(value));
  }

  function setStyle(el, name, value) {
    if (typeof name !== "string" || !STYLE_NAME_RE.test(name)) return;
    if (value === null) {
      el.style.removeProperty(name);
    } else if (!STYLE_VALUE_BAD_RE.test(String(value))) {
      el.style.setProperty(name, String(value));
    }
  }

  function setProps(el, props) {
    // "type" first: an input's value and checked depend on its type.
    if (Object.prototype.hasOwnProperty.call(props, "type")) setProp(el, "type", props.type);
    Object.keys(props).forEach(function (name) {
      if (name !== "type") setProp(el, name, props[name]);
    });
  }

  function build(n, parentNs) {
    if (n === null || typeof n !== "object" || typeof n.k !== "string") {
      throw new Inconsistent("malformed node");
    }
    if (n.t === "#text") {
      var text = document.createTextNode(typeof n.x === "string" ? n.x : "");
      register(n.k, text);
      return text;
    }
    if (typeof n.t !== "string" || !TAG_RE.test(n.t) || FORBIDDEN_TAGS.has(n.t)) {
      throw new Inconsistent("tag refused: " + String(n.t));
    }
    var ns = n.t === "svg" ? SVG_NS : parentNs;
    var el = ns === SVG_NS ? document.createElementNS(SVG_NS, n.t) : document.createElement(n.t);
    el.setAttribute("data-k", n.k);
    register(n.k, el);
    var props = n.a || {};
    var selectValue = null;
    if (n.t === "select" && Object.prototype.hasOwnProperty.call(props, "value")) {
      selectValue = props.value; // set once the options exist
      props = Object.assign({}, props);
      delete props.value;
    }
    setProps(el, props);
    if (n.s) {
      Object.keys(n.s).forEach(function (name) {
        setStyle(el, name, n.s[name]);
      });
    }
    if (n.e) bindAll(el, n.e);
    if (typeof n.x === "string") el.textContent = n.x;
    if (Array.isArray(n.c)) {
      var childNs = n.t === "foreignobject" ? null : ns;
      n.c.forEach(function (child) {
        el.appendChild(build(child, childNs));
      });
    }
    if (selectValue !== null) setProp(el, "value", selectValue);
    return el;
  }

  function namespaceOf(node) {
    return node !== null && node.namespaceURI === SVG_NS && node.localName !== "foreignobject" ? SVG_NS : null;
  }

  function anchor(parent, before) {
    if (before === null || before === undefined) return null;
    var node = need(before);
    if (node.parentNode !== parent) throw new Inconsistent(before + " is not a child of its parent");
    return node;
  }

  function applyOp(op) {
    var node, parent;
    switch (op.o) {
      case "ins":
        parent = need(op.k);
        var before = anchor(parent, op.b);
        parent.insertBefore(build(op.n, namespaceOf(parent)), before);
        break;
      case "rm":
        node = need(op.k);
        forget(node);
        if (node.parentNode !== null) node.parentNode.removeChild(node);
        break;
      case "mv":
        node = need(op.k);
        parent = node.parentNode;
        if (parent === null) throw new Inconsistent("cannot move " + op.k);
        // insertBefore moves the node itself: its DOM state and JS
        // properties stay.
        parent.insertBefore(node, anchor(parent, op.b));
        break;
      case "rep":
        node = need(op.k);
        parent = node.parentNode;
        if (parent === null) throw new Inconsistent("cannot replace " + op.k);
        forget(node);
        parent.replaceChild(build(op.n, namespaceOf(parent)), node);
        break;
      case "txt":
        node = need(op.k);
        if (node.nodeType === 3) {
          node.data = String(op.x);
        } else {
          forgetChildren(node);
          node.textContent = String(op.x);
        }
        break;
      case "attr":
        setProps(need(op.k), op.a || {});
        break;
      case "css":
        node = need(op.k);
        Object.keys(op.s || {}).forEach(function (name) {
          setStyle(node, name, op.s[name]);
        });
        break;
      case "ev":
        bindAll(need(op.k), op.e || {});
        break;
      default:
        throw new Inconsistent("unknown op " + String(op.o));
    }
  }

  // -- batches, in animation frames ------------------------------------------------

  function schedule() {
    if (frame !== null) return;
    if (document.hidden) {
      // No frames while hidden: apply soon anyway, so that the page is
      // current when it shows and when it next attaches.
      frame = { timeout: setTimeout(flush, 0) };
    } else {
      frame = { raf: requestAnimationFrame(flush) };
    }
  }

  function flush() {
    if (frame !== null) {
      if (frame.raf !== undefined) cancelAnimationFrame(frame.raf);
      else clearTimeout(frame.timeout);
      frame = null;
    }
    var items = queue;
    queue = [];
    for (var i = 0; i < items.length; i += 1) {
      if (!applyMessage(items[i])) {
        queue = []; // a resync comes: what follows was built on a wrong DOM
        return;
      }
    }
  }

  function applyMessage(message) {
    try {
      if (message.k === "mount") {
        nodes.clear();
        var root = build(message.node, null);
        while (container.firstChild !== null) container.removeChild(container.firstChild);
        container.appendChild(root);
        misparsed = false;
      } else if (message.k === "patch") {
        (Array.isArray(message.ops) ? message.ops : []).forEach(applyOp);
      }
    } catch (err) {
      if (!(err instanceof Inconsistent)) throw err;
      console.warn("wsserver components: the page is out of step (" + err.message + "); resyncing");
      rt.send(PLUGIN, "resync", { reason: String(err.message).slice(0, 200) });
      return false;
    }
    if (typeof message.seq === "number") seq = message.seq;
    container.setAttribute("data-cv-seq", String(seq));
    if (typeof message.title === "string") document.title = message.title;
    if (message.nav && typeof message.nav.url === "string") afterNavigation(message.nav);
    if (message.k === "ready" || message.k === "mount") setState("ready");
    announce(message.k, { ops: Array.isArray(message.ops) ? message.ops.length : 0 });
    return true;
  }

  function enqueue(message) {
    queue.push(message);
    schedule();
  }

  // -- events ---------------------------------------------------------------------

  function bindAll(el, events) {
    Object.keys(events).forEach(function (type) {
      bindOne(el, type, events[type]);
    });
  }

  function bindOne(el, type, spec) {
    var bound = listeners.get(el);
    if (bound === undefined) {
      bound = new Map();
      listeners.set(el, bound);
    }
    var binding = bound.get(type);
    if (spec === null || typeof spec !== "object") {
      if (binding !== undefined) {
        el.removeEventListener(binding.domType, binding.listener);
        clearTimeout(binding.timer);
        bound.delete(type);
      }
      return;
    }
    if (binding !== undefined) {
      binding.spec = spec; // one listener per type; its spec may change
      return;
    }
    binding = { spec: spec, timer: null, listener: null, domType: type };
    if (type === UPLOAD) {
      // An upload is declared under a pseudo-event: the input's change
      // starts it (see "uploads" below).
      binding.domType = "change";
      binding.listener = function () {
        startUpload(el);
      };
    } else {
      binding.listener = function (event) {
        fire(el, type, binding, event);
      };
    }
    el.addEventListener(binding.domType, binding.listener);
    bound.set(type, binding);
  }

  function fire(el, type, binding, event) {
    var spec = binding.spec;
    if (spec.p) event.preventDefault();
    if (spec.s) event.stopPropagation();
    var key = keyOf.get(el);
    if (key === undefined || nodes.get(key) !== el || expired) return;
    var payload = { key: key, type: type, value: extract(el, event, spec.v || "auto") };
    var values = liveValues(el);
    if (values !== null) payload.live = values;
    if (spec.d > 0) {
      clearTimeout(binding.timer);
      binding.timer = setTimeout(function () {
        binding.timer = null;
        send("ev", payload);
      }, spec.d);
      return;
    }
    send("ev", payload);
  }

  function send(kind, fields) {
    try {
      return rt.send(PLUGIN, kind, fields);
    } catch (err) {
      console.error("wsserver components: cannot send", kind, err);
      return false;
    }
  }

  function isControl(el) {
    var tag = el.localName;
    return tag === "input" || tag === "select" || tag === "textarea" || tag === "button";
  }

  function fileList(files) {
    var out = [];
    if (!files) return out;
    for (var i = 0; i < files.length; i += 1) {
      var file = files[i];
      out.push({ name: file.name, size: file.size, type: file.type, lastModified: file.lastModified });
    }
    return out;
  }

  function selectedValues(select) {
    var out = [];
    if (!select.options) return out;
    for (var i = 0; i < select.options.length; i += 1) {
      if (select.options[i].selected) out.push(select.options[i].value);
    }
    return out;
  }

  function controlValue(el) {
    var tag = el.localName;
    if (tag === "select") {
      if (el.multiple) return selectedValues(el);
      return el.selectedIndex < 0 ? null : el.value;
    }
    if (tag === "input") {
      if (el.type === "checkbox") return el.checked;
      if (el.type === "radio") return el.checked ? el.value : null;
      if (el.type === "file") return fileList(el.files);
    }
    return typeof el.value === "string" ? el.value : null;
  }

  // A form's values: text -> string; a lone checkbox -> bool, checkboxes
  // sharing a name -> the checked ones' values; a radio group -> the
  // checked value or null; select -> value (multiple: list); file ->
  // metadata list.  Disabled controls are left out, as the browser's own
  // submission leaves them out; buttons too, but the submitter.
  function formValues(form, submitter) {
    var values = Object.create(null);
    if (!form) return values;
    var elements = form.elements;
    var boxes = Object.create(null);
    var i, el;
    for (i = 0; i < elements.length; i += 1) {
      el = elements[i];
      if (el.name && el.localName === "input" && el.type === "checkbox") {
        boxes[el.name] = (boxes[el.name] || 0) + 1;
      }
    }
    for (i = 0; i < elements.length; i += 1) {
      el = elements[i];
      var name = el.name;
      if (!name || el.disabled) continue;
      var tag = el.localName;
      var type = el.type;
      if (tag === "fieldset" || tag === "output" || tag === "object") continue;
      if (tag === "button" || (tag === "input" && /^(submit|button|reset|image)$/.test(type))) {
        if (el === submitter) values[name] = el.value;
        continue;
      }
      if (tag === "input" && type === "checkbox") {
        if (boxes[name] > 1) {
          if (!Array.isArray(values[name])) values[name] = [];
          if (el.checked) values[name].push(el.value);
        } else {
          values[name] = el.checked;
        }
      } else if (tag === "input" && type === "radio") {
        if (!(name in values)) values[name] = null;
        if (el.checked) values[name] = el.value;
      } else {
        values[name] = controlValue(el);
      }
    }
    return values;
  }

  function formOf(el) {
    if (el.localName === "form") return el;
    return el.form || (typeof el.closest === "function" ? el.closest("form") : null);
  }

  function extract(el, event, getter) {
    switch (getter) {
      case "none":
        return null;
      case "auto":
        if (event.type === "submit" || el.localName === "form") return formValues(formOf(el), event.submitter);
        return isControl(el) ? controlValue(el) : null;
      case "value":
        return typeof el.value === "string" ? el.value : null;
      case "checked":
        return !!el.checked;
      case "files":
        return fileList(el.files);
      case "form":
        return formValues(formOf(el), event.submitter);
      case "text":
        return el.textContent;
      case "key":
        return typeof event.key === "string" ? event.key : null;
      case "detail":
        return event.detail === undefined ? null : event.detail;
      case "selected":
        return selectedValues(el);
      default:
        if (getter.indexOf("attr:") === 0) return el.getAttribute(getter.slice(5));
        if (getter.indexOf("data:") === 0) {
          var value = el.dataset ? el.dataset[getter.slice(5)] : undefined;
          return value === undefined ? null : value;
        }
        return null;
    }
  }

  // What the user may have changed without the server knowing, for the
  // controls in the event's scope: the server diffs its controlled values
  // against these.
  function liveValues(el) {
    var out = Object.create(null);
    var count = 0;
    function add(control) {
      if (count >= MAX_LIVE) return;
      var key = keyOf.get(control);
      var tag = control.localName;
      if (tag === "select") {
        for (var i = 0; i < control.options.length && count < MAX_LIVE; i += 1) {
          var optionKey = keyOf.get(control.options[i]);
          if (optionKey !== undefined) {
            out[optionKey] = { selected: control.options[i].selected };
            count += 1;
          }
        }
        return;
      }
      if (key === undefined) return;
      if (tag === "input" && (control.type === "checkbox" || control.type === "radio")) {
        out[key] = { checked: control.checked };
      } else if ((tag === "input" && control.type !== "file") || tag === "textarea") {
        out[key] = { value: control.value };
      } else {
        return;
      }
      count += 1;
    }
    var tag = el.localName;
    if (tag === "form") {
      for (var i = 0; i < el.elements.length; i += 1) add(el.elements[i]);
    } else if (tag === "input" && el.type === "radio" && el.name) {
      var scope = el.form || container;
      var radios = scope.querySelectorAll("input[type=radio]");
      for (var j = 0; j < radios.length; j += 1) {
        if (radios[j].name === el.name && radios[j].form === el.form) add(radios[j]);
      }
    } else if (tag === "input" || tag === "select" || tag === "textarea") {
      add(el);
    }
    return count > 0 ? out : null;
  }

  // -- navigation -----------------------------------------------------------------

  function entryState(entry) {
    return { cv: pageId, e: entry };
  }

  function afterNavigation(nav) {
    var entry = typeof nav.entry === "number" ? nav.entry : 0;
    currentUrl = nav.url;
    if (nav.push) {
      history.pushState(entryState(entry), "", nav.url);
      window.scrollTo(0, 0);
    } else {
      history.replaceState(entryState(entry), "", nav.url);
    }
  }

  function sameOrigin(url) {
    return url.origin === location.origin && (url.protocol === "http:" || url.protocol === "https:");
  }

  function navigate(fields) {
    if (expired) return false;
    return send("nav", fields);
  }

  document.addEventListener("click", function (event) {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    var target = event.target;
    if (!target || typeof target.closest !== "function") return;
    var link = target.closest("a[href]");
    if (link === null || !container.contains(link)) return;
    if (link.hasAttribute("download") || link.hasAttribute("data-cv-reload")) return;
    var frameTarget = link.getAttribute("target");
    if (frameTarget && frameTarget !== "_self") return;
    var url = new URL(link.href, location.href);
    if (!sameOrigin(url)) return;
    var href = url.pathname + url.search;
    if (href === location.pathname + location.search && url.hash) return; // a fragment
    if (navigate({ href: href, method: "GET" })) event.preventDefault();
  });

  function formPairs(form, submitter) {
    var out = Object.create(null);
    new FormData(form, submitter || undefined).forEach(function (value, name) {
      var text = typeof value === "string" ? value : value.name;
      if (name in out) out[name] = [].concat(out[name], [text]);
      else out[name] = text;
    });
    return out;
  }

  document.addEventListener("submit", function (event) {
    if (event.defaultPrevented) return;
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !container.contains(form)) return;
    if (form.hasAttribute("data-cv-reload")) return;
    var submitter = event.submitter || null;
    var method = ((submitter && submitter.getAttribute("formmethod")) || form.getAttribute("method") || "get").toLowerCase();
    var enctype = (submitter && submitter.getAttribute("formenctype")) || form.enctype;
    var frameTarget = (submitter && submitter.getAttribute("formtarget")) || form.getAttribute("target");
    if (method === "dialog" || (frameTarget && frameTarget !== "_self")) return;
    if (enctype === "multipart/form-data" || enctype === "text/plain") return; // files: a real submit
    var url = new URL(submitter && submitter.hasAttribute("formaction") ? submitter.formAction : form.action, location.href);
    if (!sameOrigin(url)) return;
    var sent;
    if (method === "post") {
      sent = navigate({ href: url.pathname + url.search, method: "POST", form: formPairs(form, submitter) });
    } else {
      url.search = new URLSearchParams(new FormData(form, submitter || undefined)).toString();
      sent = navigate({ href: url.pathname + url.search, method: "GET" });
    }
    if (sent) {
      event.preventDefault();
      pendingForm = { form: form, submitter: submitter };
    }
  });

  window.addEventListener("popstate", function (event) {
    var href = location.pathname + location.search;
    if (href === currentUrl) return; // only the fragment changed
    var state = event.state;
    var entry = state && state.cv === pageId && typeof state.e === "number" ? state.e : null;
    var fields = { href: href, method: "GET", pop: true };
    if (entry !== null) fields.entry = entry;
    if (!navigate(fields)) location.reload();
  });

  // -- uploads --------------------------------------------------------------------
  //
  // A file input bound with Element.upload: on change, the files' names,
  // sizes and types go to the server (cv/up), which answers with a
  // transfer id, a chunk size and a window (cv/up_go) or a refusal
  // (cv/up_err).  Chunks (cv/up_data, base64) are read from the File one at
  // a time and sent at most `window` ahead of the acknowledgements
  // (cv/up_ack).  The page hears of it all through "wsserver:cv" events of
  // kind "upload" (state: requested, started, progress, complete, refused,
  // cancelled); the component hears of it on the server.

  var uploadRef = 0;
  var requested = new Map(); // ref -> {el, files}
  var transfers = new Map(); // transfer id -> transfer

  function uploadEvent(state, fields) {
    announce("upload", Object.assign({ state: state }, fields || {}));
  }

  function toBase64(bytes) {
    var parts = [];
    for (var i = 0; i < bytes.length; i += 0x8000) {
      parts.push(String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000)));
    }
    return btoa(parts.join(""));
  }

  function stopUploadsOf(el, tellServer) {
    transfers.forEach(function (transfer) {
      if (transfer.el === el) stopTransfer(transfer, tellServer, "cancelled", "Cancelled.");
    });
  }

  function stopTransfer(transfer, tellServer, state, message) {
    if (transfer.stopped) return;
    transfer.stopped = true;
    transfers.delete(transfer.id);
    if (tellServer) send("up_cancel", { id: transfer.id });
    uploadEvent(state, { id: transfer.id, message: message });
  }

  function startUpload(el) {
    var key = keyOf.get(el);
    var files = el.files ? Array.prototype.slice.call(el.files) : [];
    if (key === undefined || nodes.get(key) !== el || expired || files.length === 0) return;
    stopUploadsOf(el, true); // a new choice replaces the upload in progress
    uploadRef += 1;
    requested.set(uploadRef, { el: el, files: files });
    var described = files.map(function (file) {
      return { name: file.name, size: file.size, type: file.type };
    });
    if (send("up", { ref: uploadRef, key: key, files: described })) {
      uploadEvent("requested", { ref: uploadRef });
    } else {
      requested.delete(uploadRef);
      uploadEvent("refused", { ref: uploadRef, message: "Not connected." });
    }
  }

  function pump(transfer) {
    if (transfer.stopped || transfer.reading) return;
    var files = transfer.files;
    while (transfer.file < files.length && transfer.offset >= files[transfer.file].size) {
      transfer.file += 1;
      transfer.offset = 0;
    }
    if (transfer.file >= files.length || transfer.inflight >= transfer.window) return;
    var index = transfer.file;
    var start = transfer.offset;
    var end = Math.min(start + transfer.chunk, files[index].size);
    transfer.reading = true;
    files[index]
      .slice(start, end)
      .arrayBuffer()
      .then(
        function (buffer) {
          transfer.reading = false;
          if (transfer.stopped) return;
          var fields = { id: transfer.id, file: index, offset: start, data: toBase64(new Uint8Array(buffer)) };
          if (!send("up_data", fields)) {
            stopTransfer(transfer, false, "cancelled", "Not connected.");
            return;
          }
          transfer.offset = end;
          transfer.inflight += 1;
          pump(transfer);
        },
        function () {
          transfer.reading = false;
          stopTransfer(transfer, true, "cancelled", "The file could not be read.");
        },
      );
  }

  rt.on(PLUGIN, "up_go", function (message) {
    var request = requested.get(message.ref);
    if (request === undefined) return;
    requested.delete(message.ref);
    var transfer = {
      id: String(message.id),
      el: request.el,
      files: request.files,
      chunk: Math.max(1, Number(message.chunk) || 1),
      window: Math.max(1, Number(message.window) || 1),
      file: 0,
      offset: 0,
      inflight: 0,
      reading: false,
      stopped: false,
    };
    transfers.set(transfer.id, transfer);
    uploadEvent("started", { id: transfer.id, ref: message.ref });
    pump(transfer);
  });

  rt.on(PLUGIN, "up_ack", function (message) {
    var transfer = transfers.get(message.id);
    if (transfer === undefined) return;
    transfer.inflight -= 1;
    uploadEvent("progress", { id: transfer.id, received: message.received });
    pump(transfer);
  });

  rt.on(PLUGIN, "up_done", function (message) {
    var transfer = transfers.get(message.id);
    if (transfer === undefined) return;
    transfer.stopped = true;
    transfers.delete(transfer.id);
    uploadEvent("complete", { id: transfer.id });
  });

  rt.on(PLUGIN, "up_err", function (message) {
    requested.delete(message.ref);
    uploadEvent("refused", { ref: message.ref, message: String(message.message) });
  });

  rt.on(PLUGIN, "up_cancel", function (message) {
    var transfer = transfers.get(message.id);
    if (transfer !== undefined) stopTransfer(transfer, false, "cancelled", String(message.message));
  });

  window.addEventListener("wsserver:status", function (event) {
    if (event.detail && event.detail.status === "open") return;
    // The server drops a connection's transfers (and their partial files)
    // when it ends: so do we.
    requested.clear();
    transfers.forEach(function (transfer) {
      stopTransfer(transfer, false, "cancelled", "The connection was lost.");
    });
  });

  // -- messages from the server -----------------------------------------------------

  function showBanner(text) {
    var banner = document.getElementById("cv-expired");
    if (banner === null) {
      banner = document.createElement("div");
      banner.id = "cv-expired";
      banner.setAttribute("role", "alert");
      var style = {
        position: "fixed",
        top: "0",
        left: "0",
        right: "0",
        padding: "0.75em 1em",
        background: "#fff3cd",
        color: "#3d2c00",
        "border-bottom": "1px solid #e0c868",
        font: "16px/1.4 system-ui, sans-serif",
        "z-index": "2147483647",
      };
      Object.keys(style).forEach(function (name) {
        banner.style.setProperty(name, style[name]);
      });
      document.body.appendChild(banner);
    }
    banner.textContent = text;
  }

  function reloadGuarded() {
    // A page that expires again right after its reload would reload
    // forever: the second time, the message stays and the user decides.
    var guard = "wsserver.cv.reloaded";
    try {
      var last = Number(sessionStorage.getItem(guard)) || 0;
      if (Date.now() - last < LOOP_GUARD_MS) return false;
      sessionStorage.setItem(guard, String(Date.now()));
    } catch (err) {
      // no storage: reload anyway
    }
    setTimeout(function () {
      location.reload();
    }, reloadMs);
    return true;
  }

  rt.on(PLUGIN, "ready", function (message) {
    enqueue({ k: "ready", seq: message.seq });
  });

  rt.on(PLUGIN, "patch", function (message) {
    enqueue({ k: "patch", seq: message.seq, ops: message.ops, title: message.title, nav: message.nav });
  });

  rt.on(PLUGIN, "mount", function (message) {
    enqueue({ k: "mount", seq: message.seq, node: message.node, title: message.title });
  });

  rt.on(PLUGIN, "expired", function (message) {
    expired = true;
    setState("expired");
    var text = typeof message.message === "string" ? message.message : "This page has expired.";
    if (typeof message.reload_ms === "number" && message.reload_ms >= 0) reloadMs = message.reload_ms;
    showBanner(text);
    announce("expired", { reason: String(message.reason) });
    rt.close();
    reloadGuarded();
  });

  rt.on(PLUGIN, "load", function (message) {
    var url;
    try {
      url = new URL(String(message.url), location.href);
    } catch (err) {
      return;
    }
    if (!sameOrigin(url)) return;
    if (message.method === "POST" && pendingForm !== null) {
      // Not a page of the app: submit the form for real this time.
      var form = pendingForm.form;
      var submitter = pendingForm.submitter;
      pendingForm = null;
      form.setAttribute("data-cv-reload", "");
      form.requestSubmit(submitter && submitter.form === form ? submitter : undefined);
      return;
    }
    if (message.replace) location.replace(url.href);
    else location.assign(url.href);
  });

  // -- start ----------------------------------------------------------------------

  // How the browser came to show this page ("navigate", "reload",
  // "back_forward"), told once to the server: its document events (a page
  // loaded, or shown again by back/forward) depend on it.
  var navType = null;
  try {
    var navEntries = performance.getEntriesByType("navigation");
    if (navEntries.length > 0 && typeof navEntries[0].type === "string") navType = navEntries[0].type;
  } catch (err) {
    navType = null;
  }
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) navType = "back_forward"; // restored from the back-forward cache
  });

  function attach() {
    flush(); // batches already received are applied before we say where we are
    if (expired) return;
    setState("attaching");
    // A count that cannot match makes the server send the whole page.
    var fields = { page: pageId, seq: seq, count: misparsed ? -1 : countNodes() };
    if (navType !== null) fields.nav = navType;
    if (send("attach", fields)) navType = null;
  }

  try {
    hydrate();
  } catch (err) {
    // The parsed page is not what the server rendered (it will be mounted
    // again: the node count sent on attach will not match).
    console.warn("wsserver components: cannot map the page:", err);
    nodes.clear();
  }
  setState("loaded");
  if (!(history.state && history.state.cv === pageId)) {
    history.replaceState(entryState(0), "");
  }
  window.addEventListener("wsserver:status", function (event) {
    if (event.detail && event.detail.status === "open") attach();
  });
  if (rt.status === "open") attach();
})();
