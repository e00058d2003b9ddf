/* Dadly app: sign in, chat, timeline, entries, children, capsules, family, settings.
 * Plain JavaScript over the same API everyone else uses; no framework, no build step. */
(function () {
  "use strict";
  var KO = (navigator.language || "en").toLowerCase().indexOf("ko") === 0;
  var T = KO ? {
    "nav.chat": "채팅", "nav.timeline": "타임라인", "nav.children": "아이들", "nav.capsules": "타임캡슐", "nav.family": "가족", "nav.settings": "설정",
    signIn: "로그인", tokenLabel: "토큰", tokenHelp: "dadly가 시작할 때 출력한 토큰이나 로그인 링크를 쓰세요.", signInButton: "로그인",
    inviteTitle: "초대 코드가 있나요?", inviteCode: "초대 코드", yourName: "이름", join: "가족에 합류",
    timeline: "타임라인", child: "아이", everyone: "모두", from: "시작일", to: "종료일", topic: "주제", emotion: "감정", filter: "보기",
    noEntries: "아직 기록이 없어요.", more: "더 보기", entry: "기록", summary: "요약", topics: "주제", emotions: "감정", history: "수정 이력",
    edit: "고치기", save: "저장", del: "삭제", confirmDelete: "이 기록과 사진, 음성을 모두 지울까요?", back: "타임라인으로",
    children: "아이들", name: "이름", aliases: "다른 이름 (쉼표로 구분)", birth: "생일", add: "추가", rename: "저장",
    capsules: "타임캡슐", openOn: "여는 날", message: "메시지", attach: "사진 또는 음성 (선택)", seal: "봉인하기", sealed: "봉인됨", opened: "열림",
    family: "가족", parents: "부모", invite: "초대 코드 만들기", remove: "내보내기", settings: "설정", telegram: "텔레그램 연결", linkCode: "연결 코드 만들기",
    usage: "사용량", exportTitle: "내보내기", exportButton: "전체 내보내기 (zip)", widget: "채팅 위젯", widgetButton: "위젯 코드 만들기", signOut: "로그아웃",
    saved: "저장했어요.", failed: "문제가 생겼어요: ", loading: "불러오는 중…", by: "작성", transcribing: "받아쓰는 중"
  } : {
    "nav.chat": "Chat", "nav.timeline": "Timeline", "nav.children": "Children", "nav.capsules": "Time capsules", "nav.family": "Family", "nav.settings": "Settings",
    signIn: "Sign in", tokenLabel: "Token", tokenHelp: "Paste the token Dadly printed when it started, or open the sign-in link it printed.", signInButton: "Sign in",
    inviteTitle: "Have an invite code?", inviteCode: "Invite code", yourName: "Your name", join: "Join the family",
    timeline: "Timeline", child: "Child", everyone: "Everyone", from: "From", to: "To", topic: "Topic", emotion: "Emotion", filter: "Show",
    noEntries: "No entries yet.", more: "Show more", entry: "Entry", summary: "Summary", topics: "Topics", emotions: "Emotions", history: "Edit history",
    edit: "Edit", save: "Save", del: "Delete", confirmDelete: "Delete this entry with its photos and voice notes?", back: "Back to the timeline",
    children: "Children", name: "Name", aliases: "Other names (comma-separated)", birth: "Birth date", add: "Add", rename: "Save",
    capsules: "Time capsules", openOn: "Opens on", message: "Message", attach: "Photo or voice note (optional)", seal: "Seal it", sealed: "sealed", opened: "opened",
    family: "Family", parents: "Parents", invite: "Make an invite code", remove: "Remove", settings: "Settings", telegram: "Telegram", linkCode: "Make a link code",
    usage: "Usage and spend", exportTitle: "Export", exportButton: "Export everything (zip)", widget: "Chat widget", widgetButton: "Make a widget snippet", signOut: "Sign out",
    saved: "Saved.", failed: "Something went wrong: ", loading: "Loading…", by: "by", transcribing: "transcribing"
  };
  if (KO) document.documentElement.lang = "ko";

  var main = document.getElementById("main");
  var nav = document.getElementById("nav");
  var token = localStorage.getItem("dadly.token");
  var members = [];

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v == null || v === false) return;
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    });
    (children || []).forEach(function (c) { if (c != null) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }
  function field(label, input) { var id = "f" + Math.random().toString(36).slice(2, 8); input.id = id; return el("div", { class: "field" }, [el("label", { for: id, text: label }), input]); }
  function day(iso) { return (iso || "").slice(0, 10); }
  function memberName(id) { var m = members.filter(function (x) { return x.id === id; })[0]; return m ? m.name : ""; }

  function api(method, path, body, raw) {
    var opts = { method: method, headers: {} };
    if (token) opts.headers.Authorization = "Bearer " + token;
    if (body instanceof FormData) opts.body = body;
    else if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    return fetch(path, opts).then(function (r) {
      if (r.status === 401 && path !== "/v1/sign-in") { signOut(); throw new Error("signed out"); }
      if (!r.ok) return r.json().then(function (b) { throw new Error((b.error && b.error.message) || r.statusText); }, function () { throw new Error(r.statusText); });
      if (raw) return r;
      return r.status === 204 ? null : r.json();
    });
  }

  function page(title, children) {
    main.replaceChildren(el("h1", { text: title }));
    children.forEach(function (c) { if (c) main.appendChild(c); });
    main.focus();
  }
  function notice(parent, text, isError) {
    var old = parent.querySelector(":scope > .status"); if (old) old.remove();
    var n = el("p", { class: "status" + (isError ? " error" : ""), role: isError ? "alert" : "status", text: text });
    parent.appendChild(n);
    return n;
  }
  function guard(parent) { return function (e) { if (e.message !== "signed out") notice(parent, T.failed + e.message, true); }; }

  function signOut() { token = null; localStorage.removeItem("dadly.token"); nav.hidden = true; showSignIn(); }

  function showSignIn() {
    var tokenInput = el("input", { type: "password", autocomplete: "off", required: true, "aria-describedby": "token-help" });
    var form = el("form", { class: "stack card", onsubmit: function (e) {
      e.preventDefault();
      token = tokenInput.value.trim();
      api("GET", "/v1/members").then(function () { localStorage.setItem("dadly.token", token); start(); }, function (err) { token = null; notice(form, T.failed + err.message, true); });
    } }, [field(T.tokenLabel, tokenInput), el("p", { id: "token-help", class: "muted", text: T.tokenHelp }), el("div", {}, [el("button", { type: "submit", text: T.signInButton })])]);
    var code = el("input", { required: true, autocomplete: "off" });
    var who = el("input", { required: true, autocomplete: "name" });
    var join = el("form", { class: "stack card", onsubmit: function (e) {
      e.preventDefault();
      api("POST", "/v1/invites/redeem", { code: code.value.trim(), name: who.value.trim() }).then(function (joined) {
        token = joined.token; localStorage.setItem("dadly.token", token); start();
      }, function (err) { notice(join, T.failed + err.message, true); });
    } }, [el("h2", { text: T.inviteTitle }), field(T.inviteCode, code), field(T.yourName, who), el("div", {}, [el("button", { type: "submit", class: "secondary", text: T.join })])]);
    page(T.signIn, [form, join]);
  }

  function route() {
    if (!token) return showSignIn();
    var hash = location.hash || "#/chat";
    var parts = hash.slice(2).split("/");
    nav.querySelectorAll("a").forEach(function (a) {
      if (a.getAttribute("href") === "#/" + parts[0] || (parts[0] === "entry" && a.getAttribute("href") === "#/timeline")) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    });
    var views = { chat: showChat, timeline: showTimeline, entry: showEntry, children: showChildren, capsules: showCapsules, family: showFamily, settings: showSettings };
    (views[parts[0]] || showChat)(parts[1]);
  }

  function showChat() {
    var host = el("div", { class: "chat" });
    page(T["nav.chat"], [host]);
    window.DadlyWidget.mount(host, { token: token, api: "", inline: true, lang: KO ? "ko" : "en", chatId: "app", onOpenEntry: function (id) { location.hash = "#/entry/" + id; } });
  }

  function memberSelect(withEveryone, selected) {
    var s = el("select", {});
    if (withEveryone) s.appendChild(el("option", { value: "", text: T.everyone }));
    members.forEach(function (m) { s.appendChild(el("option", { value: m.id, text: m.name, selected: m.id === selected })); });
    return s;
  }

  function thumbs(view) {
    var box = el("div", { class: "thumbs" });
    (view.media || []).forEach(function (m) {
      if (!m.url) return;
      if (m.kind === "photo") box.appendChild(el("img", { src: m.url, alt: (KO ? "사진: " : "Photo: ") + (view.raw_text || day(view.occurred_at)), loading: "lazy" }));
      else box.appendChild(el("audio", { controls: true, src: m.url, "aria-label": KO ? "음성 메모" : "Voice note" }));
    });
    return box;
  }

  function showTimeline() {
    var child = memberSelect(true), from = el("input", { type: "date" }), to = el("input", { type: "date" }), topic = el("input", { type: "text" }), emotion = el("input", { type: "text" });
    var list = el("ol", { class: "entries", "aria-label": T.timeline });
    var more = el("button", { type: "button", class: "secondary", hidden: true, text: T.more });
    var cursor = null;
    function load(reset) {
      var q = [];
      if (child.value) q.push("member=" + encodeURIComponent(child.value));
      if (from.value) q.push("from=" + from.value);
      if (to.value) { var end = new Date(to.value + "T00:00:00Z"); end.setUTCDate(end.getUTCDate() + 1); q.push("to=" + end.toISOString().slice(0, 10)); }
      if (topic.value.trim()) q.push("topic=" + encodeURIComponent(topic.value.trim()));
      if (emotion.value.trim()) q.push("emotion=" + encodeURIComponent(emotion.value.trim()));
      if (!reset && cursor) q.push("cursor=" + encodeURIComponent(cursor));
      if (reset) list.replaceChildren();
      api("GET", "/v1/entries?" + q.join("&")).then(function (page) {
        cursor = page.next_cursor;
        more.hidden = !cursor;
        if (reset && !page.entries.length) list.appendChild(el("li", { class: "muted", text: T.noEntries }));
        page.entries.forEach(function (e) {
          var item = el("li", { class: "card entry", "data-entry-id": e.id }, [
            el("a", { href: "#/entry/" + e.id }, [el("time", { datetime: e.occurred_at, text: day(e.occurred_at) })]),
            e.member_ids.length ? el("span", { class: "muted", text: " · " + e.member_ids.map(memberName).join(", ") }) : null,
            e.status === "transcribing" ? el("span", { class: "muted", text: " · " + T.transcribing }) : null,
            el("p", { class: "text", text: e.raw_text })
          ]);
          list.appendChild(item);
          if (["photo", "voice", "capsule", "web", "telegram"].indexOf(e.source) >= 0) {
            api("GET", "/v1/entries/" + e.id).then(function (view) { if ((view.media || []).length) item.appendChild(thumbs(view)); }).catch(function () {});
          }
        });
      }).catch(guard(main));
    }
    more.addEventListener("click", function () { load(false); });
    var filters = el("form", { class: "card row", "aria-label": T.filter, onsubmit: function (e) { e.preventDefault(); load(true); } },
      [field(T.child, child), field(T.from, from), field(T.to, to), field(T.topic, topic), field(T.emotion, emotion), el("button", { type: "submit", text: T.filter })]);
    page(T.timeline, [filters, list, more]);
    load(true);
  }

  function showEntry(id) {
    page(T.entry, [el("p", { class: "muted", text: T.loading })]);
    api("GET", "/v1/entries/" + encodeURIComponent(id)).then(function (view) {
      var text = el("textarea", {}, []); text.value = view.raw_text;
      var edit = el("form", { class: "stack", onsubmit: function (e) {
        e.preventDefault();
        api("PATCH", "/v1/entries/" + view.id, { text: text.value }).then(function () { showEntry(view.id); }).catch(guard(edit));
      } }, [field(T.edit, text), el("div", { class: "row" }, [
        el("button", { type: "submit", text: T.save }),
        el("button", { type: "button", class: "danger", text: T.del, onclick: function () {
          if (!window.confirm(T.confirmDelete)) return;
          api("DELETE", "/v1/entries/" + view.id).then(function () { location.hash = "#/timeline"; }).catch(guard(edit));
        } })
      ])]);
      var ins = view.insights;
      var card = el("article", { class: "card entry", "data-entry-id": view.id }, [
        el("p", {}, [el("time", { datetime: view.occurred_at, text: day(view.occurred_at) }), el("span", { class: "muted", text: " · " + view.source + (view.member_ids.length ? " · " + view.member_ids.map(memberName).join(", ") : "") })]),
        el("p", { class: "text", text: view.raw_text }),
        thumbs(view),
        ins ? el("section", { "aria-label": T.summary }, [
          el("h2", { text: T.summary }), el("p", { text: ins.summary }),
          el("h2", { text: T.topics }), el("ul", { class: "tags" }, ins.topics.map(function (t) { return el("li", { text: t }); })),
          el("h2", { text: T.emotions }), el("ul", { class: "tags" }, ins.emotions.map(function (t) { return el("li", { text: t }); }))
        ]) : null,
        view.history.length ? el("section", {}, [el("h2", { text: T.history }), el("ol", {}, view.history.map(function (h) { return el("li", { text: day(h.created_at) + " — " + h.raw_text }); }))]) : null
      ]);
      page(T.entry, [el("p", {}, [el("a", { href: "#/timeline", text: "← " + T.back })]), card, el("div", { class: "card" }, [edit])]);
    }).catch(guard(main));
  }

  function loadMembers() { return api("GET", "/v1/members").then(function (r) { members = r.members; return members; }); }

  function showChildren() {
    var list = el("div", {});
    function render() {
      list.replaceChildren();
      members.forEach(function (m) {
        var name = el("input", { value: m.name, required: true }), aliases = el("input", { value: (m.aliases || []).join(", ") }), birth = el("input", { type: "date", value: m.birth_date || "" });
        var form = el("form", { class: "card row", "aria-label": m.name, onsubmit: function (e) {
          e.preventDefault();
          api("PATCH", "/v1/members/" + m.id, { name: name.value.trim(), aliases: aliases.value.split(",").map(function (a) { return a.trim(); }).filter(Boolean), birth_date: birth.value || null })
            .then(function () { return loadMembers(); }).then(function () { notice(form, T.saved); }).catch(guard(form));
        } }, [field(T.name, name), field(T.aliases, aliases), field(T.birth, birth), el("button", { type: "submit", text: T.rename })]);
        list.appendChild(form);
      });
    }
    var name = el("input", { required: true }), aliases = el("input", {}), birth = el("input", { type: "date" });
    var add = el("form", { class: "card row", onsubmit: function (e) {
      e.preventDefault();
      var body = { name: name.value.trim(), aliases: aliases.value.split(",").map(function (a) { return a.trim(); }).filter(Boolean) };
      if (birth.value) body.birth_date = birth.value;
      api("POST", "/v1/members", body).then(loadMembers).then(function () { add.reset(); render(); }).catch(guard(add));
    } }, [field(T.name, name), field(T.aliases, aliases), field(T.birth, birth), el("button", { type: "submit", text: T.add })]);
    page(T.children, [list, el("h2", { text: T.add }), add]);
    loadMembers().then(render).catch(guard(main));
  }

  function showCapsules() {
    var list = el("ul", { class: "entries" });
    function load() {
      api("GET", "/v1/capsules").then(function (r) {
        list.replaceChildren();
        r.capsules.forEach(function (c) {
          list.appendChild(el("li", { class: "card" }, [
            el("strong", { text: memberName(c.member_id) }), " · ", T.openOn + " ", el("time", { datetime: c.open_at, text: day(c.open_at) }),
            " · ", c.status === "opened" ? el("a", { href: "#/entry/" + c.entry_id, text: T.opened }) : el("span", { text: "🔒 " + T.sealed }),
            " ", el("button", { type: "button", class: "secondary", text: T.del, onclick: function () { api("DELETE", "/v1/capsules/" + c.id).then(load).catch(guard(main)); } })
          ]));
        });
      }).catch(guard(main));
    }
    var child = memberSelect(false), open = el("input", { type: "date", required: true }), message = el("textarea", {}), file = el("input", { type: "file", accept: "image/*,audio/*" });
    var form = el("form", { class: "card stack", onsubmit: function (e) {
      e.preventDefault();
      var body = new FormData();
      body.append("member_id", child.value); body.append("open_at", open.value); body.append("message", message.value);
      if (file.files[0]) body.append("file", file.files[0]);
      api("POST", "/v1/capsules", body).then(function () { form.reset(); notice(form, T.saved); load(); }).catch(guard(form));
    } }, [field(T.child, child), field(T.openOn, open), field(T.message, message), field(T.attach, file), el("div", {}, [el("button", { type: "submit", text: "✉️ " + T.seal })])]);
    page(T.capsules, [form, list]);
    load();
  }

  function showFamily() {
    var list = el("ul", { class: "entries" });
    var out = el("div", {});
    function load() {
      api("GET", "/v1/parents").then(function (r) {
        list.replaceChildren();
        r.parents.forEach(function (p) {
          list.appendChild(el("li", { class: "card" }, [el("strong", { text: p.name }), " · " + p.role + " ",
            p.role !== "owner" ? el("button", { type: "button", class: "secondary", text: T.remove, onclick: function () { api("DELETE", "/v1/parents/" + p.id).then(load).catch(guard(main)); } }) : null]));
        });
      }).catch(guard(main));
    }
    var invite = el("button", { type: "button", text: T.invite, onclick: function () {
      api("POST", "/v1/invites", {}).then(function (r) { out.replaceChildren(el("p", {}, [el("code", { class: "block", text: r.code })]), el("p", { class: "muted", text: r.send_to_bot })); }).catch(guard(out));
    } });
    page(T.family, [el("h2", { text: T.parents }), list, invite, out]);
    load();
  }

  function showSettings() {
    var tg = el("div", { class: "card" }, [el("h2", { text: T.telegram })]);
    tg.appendChild(el("button", { type: "button", text: T.linkCode, onclick: function () {
      api("POST", "/v1/telegram/link-codes", {}).then(function (r) { notice(tg, r.send_to_bot); }).catch(guard(tg));
    } }));
    var usage = el("div", { class: "card" }, [el("h2", { text: T.usage })]);
    api("GET", "/v1/usage").then(function (u) {
      var rows = (u.models || []).map(function (m) { return el("tr", {}, [el("td", { text: m.model || "" }), el("td", { text: String(m.calls != null ? m.calls : "") }), el("td", { text: String((m.input_tokens || 0) + (m.output_tokens || 0)) })]); });
      usage.appendChild(el("table", {}, [el("thead", {}, [el("tr", {}, [el("th", { scope: "col", text: "model" }), el("th", { scope: "col", text: "calls" }), el("th", { scope: "col", text: "tokens" })])]), el("tbody", {}, rows)]));
      usage.appendChild(el("p", { text: "$" + (u.total_cost_usd || 0).toFixed(4) + " / " + u.days + (KO ? "일" : " days") }));
    }).catch(guard(usage));
    var ex = el("div", { class: "card" }, [el("h2", { text: T.exportTitle })]);
    ex.appendChild(el("button", { type: "button", text: T.exportButton, onclick: function () {
      api("GET", "/v1/export", undefined, true).then(function (r) { return r.blob(); }).then(function (blob) {
        var a = el("a", { href: URL.createObjectURL(blob), download: "dadly-export.zip", text: "dadly-export.zip" });
        ex.appendChild(el("p", {}, [a])); a.click();
      }).catch(guard(ex));
    } }));
    var w = el("div", { class: "card" }, [el("h2", { text: T.widget })]);
    w.appendChild(el("button", { type: "button", text: T.widgetButton, onclick: function () {
      api("POST", "/v1/widget-tokens", {}).then(function (r) {
        var snippet = '<script src="' + location.origin + '/widget.js" data-token="' + r.token + '" async></script>';
        w.appendChild(el("code", { class: "block", text: snippet }));
      }).catch(guard(w));
    } }));
    var out = el("button", { type: "button", class: "secondary", text: T.signOut, onclick: signOut });
    page(T.settings, [tg, usage, ex, w, out]);
  }

  function start() {
    nav.hidden = false;
    nav.querySelectorAll("[data-i18n]").forEach(function (a) { a.textContent = T[a.getAttribute("data-i18n")]; });
    loadMembers().then(route, guard(main));
  }

  window.addEventListener("hashchange", function () { if (token) route(); });
  var signin = /[#&]signin=([^&]+)/.exec(location.hash);
  if (signin) {
    history.replaceState(null, "", location.pathname + "#/chat");
    api("POST", "/v1/sign-in", { code: decodeURIComponent(signin[1]) }).then(function (s) { token = s.token; localStorage.setItem("dadly.token", token); start(); }, function (e) { showSignIn(); notice(main, T.failed + e.message, true); });
  } else if (token) {
    start();
  } else {
    showSignIn();
  }
})();
