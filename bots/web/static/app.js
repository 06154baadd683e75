/* 공론 Gongnon web chat: talks to /webchat/* (JSON) and /webchat/events (SSE). No dependencies.
   Every piece of server text is inserted with textContent, never as HTML.
   Nothing typed is lost: messages sent while an answer is pending wait in a queue (in order),
   a refused text goes back into the box (aria-invalid, described by the reason). */
(function () {
  "use strict";

  var TEXTS = JSON.parse(document.getElementById("gongnon-texts").textContent);
  var KEY_SESSION = "gongnon.session";
  var KEY_LAST = "gongnon.lastEvent";
  var KEY_LANG = "gongnon.lang";
  var KEY_LOG = "gongnon.transcript";
  var LOG_KEEP = 80;
  var QUEUE_MAX = 20;

  var $ = function (id) { return document.getElementById(id); };
  var transcriptEl = $("transcript");
  var historyEl = $("history");
  var log = $("log");
  var statusEl = $("status");
  var choicesEl = $("choices");
  var extras = $("extras");
  var photoWrap = $("photo-wrap");
  var photoInput = $("photo");
  var locationButton = $("location-button");
  var form = $("composer");
  var input = $("message");
  var errorEl = $("error");
  var sendButton = $("send-button");
  var langButton = $("lang-button");
  var menuButton = $("menu-button");
  var mineButton = $("mine-button");

  function storage(kind) {
    try { return window[kind]; } catch (e) { return null; }
  }
  var local = storage("localStorage");
  var tab = storage("sessionStorage");
  function get(store, key) { try { return store ? store.getItem(key) : null; } catch (e) { return null; } }
  function put(store, key, value) { try { if (store) { store.setItem(key, value); } } catch (e) { /* full or blocked */ } }
  function drop(store, key) { try { if (store) { store.removeItem(key); } } catch (e) { /* blocked */ } }

  var params = new URLSearchParams(window.location.search);
  var locale = params.get("lang") || get(local, KEY_LANG) || document.documentElement.lang || "ko";
  if (!TEXTS[locale]) { locale = "ko"; }
  var session = get(local, KEY_SESSION);
  var startArg = params.get("start") || "";
  var transcript = [];
  var stream = null;
  var busy = false;
  var queue = [];          // sends waiting for the pending answer, in order
  var choiceOnly = false;  // the last question is answered by its options only
  var lastSent = "";       // the text of the last send, put back in the box if refused

  function tx(key) { return (TEXTS[locale] || TEXTS.ko)[key] || key; }

  function applyTexts() {
    document.documentElement.lang = locale;
    document.title = tx("title");
    document.querySelectorAll("[data-t]").forEach(function (el) { el.textContent = tx(el.getAttribute("data-t")); });
    input.placeholder = tx("placeholder");
    langButton.lang = locale === "ko" ? "en" : "ko";  // its text is in the other language
    choicesEl.setAttribute("aria-label", tx("choices_label"));
    document.querySelector(".tools").setAttribute("aria-label", tx("menu"));
  }

  /* --- the transcript ------------------------------------------------------------ */
  function scrollDown() {
    transcriptEl.scrollTop = transcriptEl.scrollHeight;
    // Where the transcript does not scroll by itself (phones, large zoom) the page does:
    // keep the newest message and its options in view.
    if (transcriptEl.scrollHeight <= transcriptEl.clientHeight + 1) {
      var target = choicesEl.hidden ? log.lastElementChild : choicesEl;
      if (target && target.scrollIntoView) { target.scrollIntoView({ block: "nearest" }); }
    }
  }

  function fileUrl(url) {
    if ((url.indexOf("/webchat/files/") === 0 || url === "/webchat/mydata") && session) {
      return url + "?session=" + encodeURIComponent(session);
    }
    return url;
  }

  function bubble(entry) {
    var el = document.createElement("div");
    el.className = "msg " + entry.who + (entry.notice ? " bot notice" : "");
    // Every message is read in the voice of the language it was written in, also after a switch.
    if (entry.lang) { el.lang = entry.lang; }
    var speaker = document.createElement("span");
    speaker.className = "visually-hidden";
    speaker.textContent = (entry.who === "me" ? tx("you") : tx("bot")) + ": ";
    speaker.lang = locale;
    el.appendChild(speaker);
    if (entry.notice) {
      var badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = tx("notice");
      el.appendChild(badge);
      el.appendChild(document.createElement("br"));
    }
    var reply = entry.reply || {};
    if (reply.heading) {
      var heading = document.createElement("p");
      heading.className = "heading";
      heading.textContent = reply.heading;
      el.appendChild(heading);
    }
    var text = document.createElement("p");
    text.textContent = reply.text || "";
    el.appendChild(text);
    if (reply.image && reply.image.url) {
      var img = document.createElement("img");
      img.src = fileUrl(reply.image.url);
      img.alt = reply.image.alt || "";
      el.appendChild(img);
    }
    if (reply.download && reply.download.url) {
      var link = document.createElement("a");
      link.href = fileUrl(reply.download.url);
      link.download = reply.download.name || "";
      link.textContent = reply.download.name || reply.download.url;
      el.appendChild(link);
    }
    if (entry.notice && reply.choices && reply.choices.length) {
      // A pushed message (status change, survey) keeps its own buttons, so the options of the
      // conversation in progress stay where they are.
      var own = document.createElement("div");
      own.className = "inline-choices";
      reply.choices.forEach(function (choice) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "choice small";
        button.setAttribute("data-choice", choice.id);
        button.textContent = choice.label;
        button.addEventListener("click", function () { pick(choice); });
        own.appendChild(button);
      });
      el.appendChild(own);
    } else if (reply.choices && reply.choices.length) {
      // For screen readers and the record: the options as a numbered list.
      var list = document.createElement("ol");
      list.className = "visually-hidden";
      reply.choices.forEach(function (c) {
        var li = document.createElement("li");
        li.textContent = c.label;
        list.appendChild(li);
      });
      el.appendChild(list);
    }
    return el;
  }

  function remember(entry) {
    transcript.push(entry);
    if (transcript.length > LOG_KEEP) { transcript = transcript.slice(-LOG_KEEP); }
    put(tab, KEY_LOG, JSON.stringify({ session: session, entries: transcript }));
  }

  function add(entry, keep) {
    if (!entry.lang) { entry.lang = locale; }
    log.appendChild(bubble(entry));
    if (keep !== false) { remember(entry); }
    scrollDown();
  }

  function say(who, text, extra) {
    var entry = { who: who, reply: { text: text } };
    if (extra) { Object.keys(extra).forEach(function (k) { entry[k] = extra[k]; }); }
    add(entry, who !== "error");
  }

  /* --- the message box: errors tied to it ------------------------------------------ */
  function markInvalid(message) {
    errorEl.textContent = message;
    errorEl.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", "error hint");
  }

  function clearInvalid() {
    if (errorEl.hidden) { return; }
    errorEl.hidden = true;
    errorEl.textContent = "";
    input.removeAttribute("aria-invalid");
    input.setAttribute("aria-describedby", "hint");
  }

  function updateSend() {
    // On a question answered by its options only, the send button rests until something is
    // typed (a number or an option's name still works): the options are the way on.
    sendButton.disabled = choiceOnly && !input.value.trim();
  }

  /* --- choices and requests --------------------------------------------------------- */
  function clearChoices() {
    var inside = choicesEl.contains(document.activeElement) || extras.contains(document.activeElement);
    choicesEl.textContent = "";
    choicesEl.hidden = true;
    extras.hidden = true;
    photoWrap.hidden = true;
    locationButton.hidden = true;
    // The pressed option is gone: the focus waits in the message box, never on <body>.
    if (inside) { input.focus(); }
  }

  function showChoices(reply) {
    clearChoices();
    var choices = reply.choices || [];
    choiceOnly = reply.input === "choice" && choices.length > 0;
    choices.forEach(function (choice, index) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "choice" + (choiceOnly && index === 0 ? " main" : "");
      button.setAttribute("data-choice", choice.id);
      var num = document.createElement("span");
      num.className = "num";
      num.setAttribute("aria-hidden", "true");
      num.textContent = String(index + 1);
      var label = document.createElement("span");
      label.textContent = choice.label;
      button.appendChild(num);
      button.appendChild(label);
      button.addEventListener("click", function () { pick(choice); });
      choicesEl.appendChild(button);
    });
    choicesEl.hidden = choices.length === 0;
    var request = reply.request || "";
    if (request === "photo" || request === "photo_or_location") { extras.hidden = false; photoWrap.hidden = false; }
    if ((request === "location" || request === "photo_or_location") && navigator.geolocation) {
      extras.hidden = false;
      locationButton.hidden = false;
    }
    updateSend();
  }

  function showReplies(replies, options) {
    var last = null;
    (replies || []).forEach(function (reply) {
      add({ who: "bot", reply: reply, notice: !!(options && options.notice) });
      last = reply;
    });
    if (!last) { return; }
    if (options && options.notice) { return; }  // its buttons are in its own bubble
    if (last.invalid) {
      // Refused: the text goes back into the box, the reason is tied to it.
      if (!input.value && lastSent) { input.value = lastSent; }
      markInvalid(last.text || tx("failed"));
    }
    showChoices(last);
    scrollDown();
    if (!(options && options.focus) || queue.length) { return; }
    // A question answered by its options: the first option (e.g. "제출하기") gets the focus.
    // Otherwise the message box: type the answer or its number, or Tab on to the options.
    var first = choicesEl.querySelector("button");
    if (choiceOnly && first && !last.invalid) { first.focus(); } else { input.focus(); }
  }

  /* --- talking to the server ------------------------------------------------------- */
  function setBusy(on) {
    busy = on;
    statusEl.textContent = on ? tx("typing") : "";
    statusEl.classList.toggle("busy", on);
    transcriptEl.setAttribute("aria-busy", on ? "true" : "false");
  }

  function post(path, body) {
    var init = { method: "POST", credentials: "same-origin" };
    if (body instanceof FormData) {
      init.body = body;
    } else {
      init.headers = { "Content-Type": "application/json" };
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (data) {
        return { ok: response.ok, status: response.status, data: data };
      });
    });
  }

  function errorText(result) {
    return (result && result.data && result.data.error && result.data.error.message) || tx("failed");
  }

  function send(body, echo, restore) {
    if (!session) { return Promise.resolve(false); }
    if (echo) { say("me", echo); }
    if (busy) {
      // Typed while the answer is pending: kept, and sent in order once it arrives.
      if (queue.length < QUEUE_MAX) { queue.push({ body: body, restore: restore }); }
      return Promise.resolve(true);
    }
    return dispatch(body, restore);
  }

  function dispatch(body, restore) {
    body = body instanceof FormData ? body : Object.assign({}, body, { session: session });
    if (body instanceof FormData) { body.set("session", session || ""); }
    lastSent = restore || "";
    clearChoices();
    setBusy(true);
    var request = body instanceof FormData ? post("/webchat/upload", body) : post("/webchat/message", body);
    return request.then(function (result) {
      setBusy(false);
      if (result.status === 401) { return restart(true); }
      if (!result.ok) {
        failed(errorText(result), restore);
        return false;
      }
      showReplies(result.data.replies, { focus: true });
      next();
      return true;
    }).catch(function () {
      setBusy(false);
      failed(tx("failed"), restore);
      return false;
    });
  }

  function failed(message, restore) {
    // Not delivered: this and everything queued after it go back into the box, in order.
    var texts = [restore].concat(queue.map(function (q) { return q.restore; })).filter(Boolean);
    queue = [];
    if (texts.length && !input.value) { input.value = texts.join("\n"); }
    say("error", message);
    markInvalid(message);
    input.focus();
    updateSend();
  }

  function next() {
    var waiting = queue.shift();
    if (waiting) { dispatch(waiting.body, waiting.restore); }
  }

  function pick(choice) {
    clearInvalid();
    send({ choice: choice.id }, choice.label);
  }

  function submitText() {
    var text = input.value;
    if (!text.trim()) {
      markInvalid(tx("empty"));
      input.focus();
      return;
    }
    clearInvalid();
    input.value = "";
    updateSend();
    send({ text: text }, text, text);
    input.focus();
  }

  /* --- the session ----------------------------------------------------------------- */
  function saveSession(data) {
    session = data.session;
    put(local, KEY_SESSION, session);
    if (data.locale && TEXTS[data.locale]) {
      locale = data.locale;
      put(local, KEY_LANG, locale);
      applyTexts();
    }
  }

  function restoreTranscript() {
    var saved = null;
    try { saved = JSON.parse(get(tab, KEY_LOG) || "null"); } catch (e) { saved = null; }
    if (!saved || saved.session !== session || !saved.entries || !saved.entries.length) { return false; }
    transcript = saved.entries;
    // Earlier messages go above the live log: a reload does not read them all out again.
    transcript.forEach(function (entry) { historyEl.appendChild(bubble(entry)); });
    var lastBot = null;
    for (var i = transcript.length - 1; i >= 0; i -= 1) {
      if (transcript[i].who === "bot" && !transcript[i].notice) { lastBot = transcript[i].reply; break; }
      if (transcript[i].who === "me") { break; }
    }
    if (lastBot) { showChoices(lastBot); }
    scrollDown();
    return true;
  }

  function open(greet) {
    var body = { locale: locale };
    if (session) { body.session = session; }
    if (startArg) { body.start = startArg; }
    if (!greet) { body.greet = false; }
    return post("/webchat/session", body).then(function (result) {
      if (result.status === 401 && session) { return restart(true); }
      if (!result.ok) { say("error", errorText(result)); return false; }
      saveSession(result.data);
      startArg = "";
      showReplies(result.data.replies, { focus: false });
      connect();
      return true;
    }).catch(function () {
      say("error", tx("failed"));
      return false;
    });
  }

  function restart(announce) {
    session = null;
    drop(local, KEY_SESSION);
    drop(local, KEY_LAST);
    drop(tab, KEY_LOG);
    transcript = [];
    queue = [];
    if (stream) { stream.close(); stream = null; }
    if (announce) { say("system", tx("restarted")); }
    return open(true);
  }

  /* --- pushed messages (server-sent events) ---------------------------------------- */
  function connect() {
    if (stream) { stream.close(); }
    if (!session || !window.EventSource) { return; }
    var url = "/webchat/events?session=" + encodeURIComponent(session);
    var last = get(local, KEY_LAST);
    if (last) { url += "&after=" + encodeURIComponent(last); }
    stream = new EventSource(url);
    stream.addEventListener("message", function (event) {
      var data;
      try { data = JSON.parse(event.data); } catch (e) { return; }
      put(local, KEY_LAST, String(data.id));
      showReplies(data.replies, { notice: true });
      if (statusEl.textContent === tx("offline")) { statusEl.textContent = ""; }
    });
    stream.addEventListener("open", function () {
      if (statusEl.textContent === tx("offline")) { statusEl.textContent = ""; }
    });
    stream.addEventListener("error", function () {
      if (!stream) { return; }
      if (!busy) { statusEl.textContent = tx("offline"); }
      if (stream.readyState === EventSource.CLOSED) {
        // Refused (expired session) or the server is down: check the session, then reconnect.
        stream = null;
        window.setTimeout(function () { open(false); }, 5000);
      }
    });
  }

  /* --- events ----------------------------------------------------------------------- */
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    submitText();
  });

  input.addEventListener("keydown", function (event) {
    // Enter sends; Shift+Enter is a new line; never while a Korean IME is composing.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      submitText();
    }
  });

  input.addEventListener("input", function () {
    if (input.value.trim()) { clearInvalid(); }
    updateSend();
  });

  langButton.addEventListener("click", function () {
    locale = locale === "ko" ? "en" : "ko";
    put(local, KEY_LANG, locale);
    applyTexts();
    if (!session) { return; }
    clearChoices();
    setBusy(true);
    post("/webchat/session", { session: session, locale: locale }).then(function (result) {
      setBusy(false);
      if (result.status === 401) { return restart(true); }
      if (!result.ok) { say("error", errorText(result)); return; }
      saveSession(result.data);
      showReplies(result.data.replies, { focus: false });
      next();
    }).catch(function () { setBusy(false); say("error", tx("failed")); });
  });

  menuButton.addEventListener("click", function () {
    send({ text: "/menu" }, tx("menu"));
  });

  mineButton.addEventListener("click", function () {
    send({ text: "/mine" }, tx("mine"));
  });

  photoInput.addEventListener("change", function () {
    var file = photoInput.files && photoInput.files[0];
    if (!file) { return; }
    var data = new FormData();
    data.append("session", session || "");
    data.append("file", file, file.name);
    photoInput.value = "";
    send(data, tx("photo_sent"));
  });

  locationButton.addEventListener("click", function () {
    navigator.geolocation.getCurrentPosition(function (position) {
      send({ location: { latitude: position.coords.latitude, longitude: position.coords.longitude } },
        tx("location_sent"));
    }, function () {
      say("error", tx("location_denied"));
      input.focus();
    }, { timeout: 15000, maximumAge: 60000 });
  });

  /* --- start ------------------------------------------------------------------------ */
  applyTexts();
  if (session && !startArg && restoreTranscript()) {
    open(false);
  } else {
    drop(tab, KEY_LOG);
    open(true);
  }
})();
