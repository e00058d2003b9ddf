/* Dadly chat widget: one <script> tag adds a chat bubble to any page.
 *
 *   <script src="https://dadly.example/widget.js" data-token="WIDGET_TOKEN" async></script>
 *
 * It streams answers (POST /v1/chat/stream), shows citations as dated cards
 * that open the entry, records a voice note with the microphone and attaches
 * a photo (POST /v1/entries as a form). The app mounts the same widget full
 * page: DadlyWidget.mount(element, { token, inline: true }).
 * Korean or English, following the browser's language. No dependencies. */
(function () {
  "use strict";
  if (window.DadlyWidget) return;

  var script = document.currentScript;
  var scriptBase = script && script.src ? new URL(script.src, location.href).origin : "";

  var TEXT = {
    en: {
      title: "Dadly", open: "Open the Dadly chat", close: "Close the chat", message: "Message",
      placeholder: "Tell me what happened, or ask about your journal", send: "Send",
      photo: "Attach a photo", record: "Record a voice note", stop: "Stop recording and save",
      recording: "Recording… press ■ to save", voiceSaved: "Voice note saved — transcribing…",
      transcribed: "Transcribed:", photoSaved: "Photo saved to your journal.", thinking: "…",
      sources: "From your journal", micDenied: "The microphone is not available: ", failed: "Something went wrong: ",
      entry: "Entry", back: "Back to the chat", hello: "Hi! Tell me about your day with the kids, or ask me anything about your journal.",
      stillTranscribing: "Still transcribing; it will appear in your timeline."
    },
    ko: {
      title: "Dadly", open: "Dadly 채팅 열기", close: "채팅 닫기", message: "메시지",
      placeholder: "오늘 있었던 일을 적거나 일기에 대해 물어보세요", send: "보내기",
      photo: "사진 첨부", record: "음성 메모 녹음", stop: "녹음을 멈추고 저장",
      recording: "녹음 중… ■를 누르면 저장돼요", voiceSaved: "음성 메모를 저장했어요 — 받아쓰는 중…",
      transcribed: "받아쓴 내용:", photoSaved: "사진을 일기에 저장했어요.", thinking: "…",
      sources: "일기에서 찾은 기록", micDenied: "마이크를 쓸 수 없어요: ", failed: "문제가 생겼어요: ",
      entry: "기록", back: "채팅으로 돌아가기", hello: "안녕하세요! 오늘 아이들과 있었던 일을 알려 주시거나, 일기에 대해 무엇이든 물어보세요.",
      stillTranscribing: "아직 받아쓰는 중이에요. 곧 타임라인에 나타나요."
    }
  };

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "class") node.className = attrs[k];
      else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), attrs[k]);
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }

  function ensureStyles(api) {
    if (document.querySelector("link[data-dadly-widget]")) return;
    var link = el("link", { rel: "stylesheet", href: (api || scriptBase) + "/widget.css", "data-dadly-widget": "" });
    document.head.appendChild(link);
  }

  function day(iso) {
    return (iso || "").slice(0, 10);
  }

  /* Reads a text/event-stream response: calls onEvent(name, data) per event. */
  function readEvents(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    function flush(block) {
      var name = "message", data = [];
      block.split("\n").forEach(function (line) {
        if (line.indexOf("event:") === 0) name = line.slice(6).trim();
        else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
      });
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
    function pump() {
      return reader.read().then(function (r) {
        if (r.done) { if (buffer.trim()) flush(buffer); return; }
        buffer += decoder.decode(r.value, { stream: true }).replace(/\r\n/g, "\n");
        var i;
        while ((i = buffer.indexOf("\n\n")) >= 0) {
          var block = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          flush(block);
        }
        return pump();
      });
    }
    return pump();
  }

  function Widget(host, opts) {
    this.opts = opts;
    this.api = opts.api != null ? opts.api : scriptBase;
    var lang = opts.lang || ((navigator.language || "en").toLowerCase().indexOf("ko") === 0 ? "ko" : "en");
    this.t = TEXT[lang] || TEXT.en;
    this.lang = lang;
    this.chatId = opts.chatId || "web-" + Math.random().toString(36).slice(2, 10);
    this.build(host);
  }

  Widget.prototype.headers = function (json) {
    var h = { Authorization: "Bearer " + this.opts.token };
    if (json) h["Content-Type"] = "application/json";
    return h;
  };

  Widget.prototype.build = function (host) {
    var self = this, t = this.t;
    var uid = "dw" + Math.random().toString(36).slice(2, 8);
    this.log = el("div", { class: "dadly-w-log", role: "log", "aria-live": "polite", "aria-label": t.title });
    this.input = el("textarea", { id: uid + "-msg", rows: "1", placeholder: t.placeholder, "aria-label": t.message });
    this.input.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); self.send(); }
    });
    this.file = el("input", { type: "file", accept: "image/*", class: "dadly-w-visually-hidden", id: uid + "-photo", tabindex: "-1", "aria-hidden": "true" });
    this.file.addEventListener("change", function () { if (self.file.files[0]) self.uploadPhoto(self.file.files[0]); });
    this.photoButton = el("button", { type: "button", class: "dadly-w-btn", "aria-label": t.photo, title: t.photo, text: "📷", onclick: function () { self.file.click(); } });
    this.recButton = el("button", { type: "button", class: "dadly-w-btn", "aria-label": t.record, title: t.record, "aria-pressed": "false", text: "🎙", onclick: function () { self.toggleRecording(); } });
    var sendButton = el("button", { type: "submit", class: "dadly-w-btn dadly-w-send", text: t.send });
    var form = el("form", { class: "dadly-w-form", onsubmit: function (e) { e.preventDefault(); self.send(); } },
      [this.file, this.photoButton, this.recButton, this.input, sendButton]);
    var head = el("div", { class: "dadly-w-head" }, [el("h2", { text: t.title })]);
    this.panel = el("section", { class: "dadly-w-panel " + (this.opts.inline ? "dadly-w-inline" : "dadly-w-floating"), "aria-label": t.title }, [head, this.log, form]);
    this.root = el("div", { class: "dadly-w", lang: this.lang });
    if (!this.opts.inline) {
      this.bubble = el("button", { type: "button", class: "dadly-w-bubble", "aria-label": t.open, "aria-expanded": "false", text: "💬",
        onclick: function () { self.toggle(); } });
      head.appendChild(el("button", { type: "button", class: "dadly-w-close", "aria-label": t.close, text: "×", onclick: function () { self.toggle(false); } }));
      this.panel.hidden = true;
      this.root.appendChild(this.bubble);
    }
    this.root.appendChild(this.panel);
    host.appendChild(this.root);
    this.say(t.hello, "dadly-w-note");
  };

  Widget.prototype.toggle = function (open) {
    var show = open == null ? this.panel.hidden : open;
    this.panel.hidden = !show;
    this.bubble.setAttribute("aria-expanded", String(show));
    if (show) this.input.focus(); else this.bubble.focus();
  };

  Widget.prototype.say = function (text, cls) {
    var item = el("div", { class: "dadly-w-msg " + (cls || "dadly-w-bot") });
    if (text != null) item.textContent = text;
    this.log.appendChild(item);
    this.log.scrollTop = this.log.scrollHeight;
    return item;
  };

  Widget.prototype.fail = function (message) {
    var item = this.say(this.t.failed + message, "dadly-w-msg dadly-w-error");
    item.setAttribute("role", "alert");
  };

  Widget.prototype.errorOf = function (response) {
    return response.json().then(function (b) { return (b && b.error && b.error.message) || response.statusText; }, function () { return response.statusText; });
  };

  Widget.prototype.send = function () {
    var self = this, text = this.input.value.trim();
    if (!text) return;
    this.input.value = "";
    this.say(text, "dadly-w-me");
    var bubble = this.say(this.t.thinking);
    bubble.setAttribute("aria-busy", "true");
    var streamed = "";
    fetch(this.api + "/v1/chat/stream", { method: "POST", headers: this.headers(true), body: JSON.stringify({ message: text, chat_id: this.chatId }) })
      .then(function (r) {
        if (!r.ok) return self.errorOf(r).then(function (m) { bubble.remove(); self.fail(m); });
        return readEvents(r, function (name, data) {
          if (name === "token") { streamed += data.text; bubble.textContent = streamed; self.log.scrollTop = self.log.scrollHeight; }
          else if (name === "done") { bubble.removeAttribute("aria-busy"); self.finish(bubble, data); }
          else if (name === "error") { bubble.remove(); self.fail(data.error && data.error.message || "error"); }
        });
      })
      .catch(function (e) { bubble.remove(); self.fail(String(e.message || e)); });
  };

  Widget.prototype.finish = function (bubble, data) {
    var self = this;
    bubble.textContent = data.reply || "";
    bubble.setAttribute("data-kind", data.kind || "");
    var sources = (data.sources || []).filter(function (s) { return s.cited; });
    if (!sources.length) sources = (data.sources || []).slice(0, 3);
    if (sources.length) {
      var list = el("div", { class: "dadly-w-cites", role: "group", "aria-label": this.t.sources });
      sources.forEach(function (s) {
        list.appendChild(el("button", { type: "button", class: "dadly-w-cite", "data-entry-id": s.entry_id, onclick: function () { self.openEntry(s.entry_id); } },
          [el("time", { datetime: s.occurred_at, text: day(s.occurred_at) }), el("span", { text: s.snippet })]));
      });
      bubble.appendChild(list);
    }
    this.log.scrollTop = this.log.scrollHeight;
  };

  Widget.prototype.openEntry = function (id) {
    if (this.opts.onOpenEntry) return this.opts.onOpenEntry(id);
    var self = this;
    fetch(this.api + "/v1/entries/" + encodeURIComponent(id), { headers: this.headers() })
      .then(function (r) { return r.ok ? r.json() : self.errorOf(r).then(function (m) { throw new Error(m); }); })
      .then(function (view) {
        var card = el("article", { class: "dadly-w-entry", tabindex: "-1" }, [
          el("h3", {}, [el("time", { datetime: view.occurred_at, text: day(view.occurred_at) })]),
          el("p", { text: view.raw_text })
        ]);
        (view.media || []).forEach(function (m) { self.media(card, m); });
        var item = self.say(null, "dadly-w-bot");
        item.appendChild(card);
        card.focus();
      })
      .catch(function (e) { self.fail(e.message); });
  };

  Widget.prototype.media = function (parent, m) {
    if (!m.url) return;
    if (m.kind === "photo") parent.appendChild(el("img", { class: "dadly-w-thumb", src: m.url, alt: this.t.photo }));
    else parent.appendChild(el("audio", { controls: "", src: m.url, "aria-label": this.t.record }));
  };

  Widget.prototype.upload = function (form) {
    var self = this;
    return fetch(this.api + "/v1/entries", { method: "POST", headers: this.headers(), body: form })
      .then(function (r) { return r.ok ? r.json() : self.errorOf(r).then(function (m) { throw new Error(m); }); });
  };

  Widget.prototype.uploadPhoto = function (file) {
    var self = this, form = new FormData(), caption = this.input.value.trim();
    form.append("photo", file, file.name || "photo");
    if (caption) { form.append("text", caption); this.input.value = ""; }
    this.file.value = "";
    this.upload(form)
      .then(function (created) { return self.view(created.entry_id); })
      .then(function (view) {
        var item = self.say(self.t.photoSaved + (view.raw_text ? "\n" + view.raw_text : ""), "dadly-w-me");
        item.setAttribute("data-entry-id", view.id);
        (view.media || []).forEach(function (m) { self.media(item, m); });
      })
      .catch(function (e) { self.fail(e.message); });
  };

  Widget.prototype.view = function (id) {
    var self = this;
    return fetch(this.api + "/v1/entries/" + encodeURIComponent(id), { headers: this.headers() })
      .then(function (r) { return r.ok ? r.json() : self.errorOf(r).then(function (m) { throw new Error(m); }); });
  };

  Widget.prototype.toggleRecording = function () {
    var self = this, t = this.t;
    if (this.recorder) { this.recorder.stop(); return; }
    if (!navigator.mediaDevices || !window.MediaRecorder) { this.fail(t.micDenied + "MediaRecorder"); return; }
    navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
      var type = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/mp4"].filter(function (m) { return MediaRecorder.isTypeSupported(m); })[0];
      var recorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
      var chunks = [];
      self.recorder = recorder;
      self.recButton.classList.add("dadly-w-rec");
      self.recButton.textContent = "■";
      self.recButton.setAttribute("aria-pressed", "true");
      self.recButton.setAttribute("aria-label", t.stop);
      var note = self.say(t.recording, "dadly-w-note");
      recorder.ondataavailable = function (e) { if (e.data && e.data.size) chunks.push(e.data); };
      recorder.onstop = function () {
        stream.getTracks().forEach(function (tr) { tr.stop(); });
        self.recorder = null;
        self.recButton.classList.remove("dadly-w-rec");
        self.recButton.textContent = "🎙";
        self.recButton.setAttribute("aria-pressed", "false");
        self.recButton.setAttribute("aria-label", t.record);
        note.remove();
        var blob = new Blob(chunks, { type: recorder.mimeType || "audio/webm" });
        var form = new FormData();
        form.append("audio", blob, "voice." + ((recorder.mimeType || "").indexOf("ogg") >= 0 ? "ogg" : (recorder.mimeType || "").indexOf("mp4") >= 0 ? "m4a" : "webm"));
        self.upload(form).then(function (created) {
          var item = self.say(t.voiceSaved, "dadly-w-me");
          item.setAttribute("data-entry-id", created.entry_id);
          self.waitTranscript(created.entry_id, item, 0);
        }).catch(function (e) { self.fail(e.message); });
      };
      recorder.start();
    }).catch(function (e) { self.fail(t.micDenied + (e.message || e.name)); });
  };

  Widget.prototype.waitTranscript = function (id, item, tries) {
    var self = this;
    this.view(id).then(function (view) {
      if (view.status !== "transcribing") {
        item.textContent = self.t.transcribed + " " + view.raw_text;
        item.setAttribute("data-status", view.status);
      } else if (tries < 90) {
        setTimeout(function () { self.waitTranscript(id, item, tries + 1); }, 1000);
      } else {
        item.textContent = self.t.stillTranscribing;
      }
    }).catch(function (e) { self.fail(e.message); });
  };

  window.DadlyWidget = {
    /* Mounts a widget in `host`; returns it. opts: token, api, inline, lang, chatId, onOpenEntry(id). */
    mount: function (host, opts) {
      ensureStyles(opts.api != null ? opts.api : scriptBase);
      return new Widget(host, opts);
    }
  };

  if (script && script.dataset && script.dataset.token) {
    var start = function () { window.DadlyWidget.mount(document.body, { token: script.dataset.token, lang: script.dataset.lang }); };
    if (document.body) start(); else document.addEventListener("DOMContentLoaded", start);
  }
})();
