// The dashboard's one hand-written script: sign-in from the URL fragment and
// the job page's live pane (one EventSource for status, log and metrics).
"use strict";
(function () {
  var MAX_LINES = 10000;
  var EARLIER_LINES = 5000;

  function signInFromFragment() {
    var form = document.getElementById("login");
    var token = window.location.hash.slice(1);
    if (!form || !token || document.getElementById("login-error")) { return; }
    // the token leaves the address bar (and the history) before it is posted
    window.history.replaceState(null, "", window.location.pathname);
    document.getElementById("token").value = decodeURIComponent(token);
    form.submit();
  }

  function LogPane(pre) {
    this.pre = pre;
    this.paused = false;
    this.clear();
  }
  // SGR colour codes become spans with classes (text nodes only: the log is
  // never parsed as HTML); other escape sequences are dropped.
  var SGR = /\x1b\[([0-9;]*)m/;
  var OTHER_ESCAPES = /\x1b\[[0-9;?]*[A-Za-ln-z]/g;
  LogPane.prototype.style = "";
  LogPane.prototype.render = function (text) {
    var chunk = document.createElement("span");
    var parts = text.replace(OTHER_ESCAPES, "").split(SGR);
    for (var i = 0; i < parts.length; i++) {
      if (i % 2 === 1) { this.style = sgrClasses(this.style, parts[i]); continue; }
      if (!parts[i]) { continue; }
      var node = document.createTextNode(parts[i]);
      if (this.style) {
        var span = document.createElement("span");
        span.className = this.style;
        span.appendChild(node);
        node = span;
      }
      chunk.appendChild(node);
    }
    return chunk;
  };

  function sgrClasses(current, codes) {
    var classes = current ? current.split(" ") : [];
    codes.split(";").forEach(function (code) {
      var n = parseInt(code || "0", 10);
      if (n === 0) { classes = []; }
      else if (n === 1) { classes.push("ansi-bold"); }
      else if ((n >= 30 && n <= 37) || (n >= 90 && n <= 97)) {
        classes = classes.filter(function (c) { return c.indexOf("ansi-fg") !== 0; });
        classes.push("ansi-fg" + (n % 10 + (n >= 90 ? 8 : 0)));
      } else if (n === 39) {
        classes = classes.filter(function (c) { return c.indexOf("ansi-fg") !== 0; });
      }
    });
    return classes.join(" ");
  }

  LogPane.prototype.append = function (text) {
    if (this.paused) { this.held.push(text); return; }
    var count = (text.match(/\n/g) || []).length;
    this.pre.appendChild(this.render(text));
    this.lines.push(count);
    this.total += count;
    // earlier lines loaded by hand raise the limit: they stay until a reload
    while (this.total > this.limit && this.pre.firstChild && this.lines.length > 1) {
      this.pre.removeChild(this.pre.firstChild);
      var gone = this.lines.shift();
      this.total -= gone;
      this.firstLine += gone;
    }
    var follow = document.getElementById("log-follow");
    if (!follow || follow.checked) { this.pre.scrollTop = this.pre.scrollHeight; }
  };
  LogPane.prototype.prepend = function (text, first) {
    var count = (text.match(/\n/g) || []).length;
    var live = this.style;
    this.style = "";
    var chunk = this.render(text);
    this.style = live;
    var height = this.pre.scrollHeight;
    this.pre.insertBefore(chunk, this.pre.firstChild);
    this.lines.unshift(count);
    this.total += count;
    this.limit += count;
    this.firstLine = first;
    this.pre.scrollTop += this.pre.scrollHeight - height;  // what was in view stays there
  };
  LogPane.prototype.place = function (data) {
    var at = data.split(":");
    if (this.total === 0 && !this.pre.firstChild) { this.gen = at[0]; this.firstLine = parseInt(at[1], 10); }
  };
  LogPane.prototype.pause = function (paused) {
    this.paused = paused;
    if (!paused) { var held = this.held.join(""); this.held = []; if (held) { this.append(held); } }
  };
  LogPane.prototype.clear = function () {
    this.pre.textContent = "";
    this.style = "";
    this.lines = [];
    this.total = 0;
    this.limit = MAX_LINES;
    this.firstLine = null;
    this.held = [];
  };

  // Earlier lines, on demand: the server fetches those before the pane's oldest.
  function loadEarlier(pane, button, url) {
    if (pane.firstLine === null) { return; }
    button.disabled = true;
    var query = "?gen=" + encodeURIComponent(pane.gen) + "&before=" + pane.firstLine + "&lines=" + EARLIER_LINES;
    fetch(url + query, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) { return r.text().then(function (t) { throw new Error(t); }); }
      return r.json();
    }).then(function (got) {
      if (got.text) { pane.prepend(got.text, got.first); }
      button.disabled = got.atStart;
      button.textContent = got.atStart ? "start of the output" : "load earlier";
    }).catch(function (err) {
      button.disabled = false;
      document.getElementById("log-state").textContent = err.message.trim();
    });
  }

  function Charts() {
    this.data = [[], [], [], []];  // time, CPU %, memory, memory limit
    this.cpu = null;
    this.mem = null;
  }
  Charts.prototype.add = function (points) {
    var d = this.data;
    points.forEach(function (p) { d[0].push(p[0]); d[1].push(p[1]); d[2].push(p[2] / 1048576); d[3].push(p[3] / 1048576); });
    document.getElementById("chart-cpu").setAttribute("data-points", String(d[0].length));
    if (typeof uPlot === "undefined") { return; }
    if (!this.cpu) {
      var opts = function (title, series) {
        return { title: title, width: 560, height: 180, series: [{}].concat(series) };
      };
      this.cpu = new uPlot(opts("CPU %", [{ label: "CPU %", stroke: "#2563eb" }]), [d[0], d[1]], document.getElementById("chart-cpu"));
      this.mem = new uPlot(opts("Memory MB", [{ label: "used", stroke: "#16a34a" }, { label: "limit", stroke: "#dc2626" }]), [d[0], d[2], d[3]], document.getElementById("chart-mem"));
    } else {
      this.cpu.setData([d[0], d[1]]);
      this.mem.setData([d[0], d[2], d[3]]);
    }
  };

  function followJob(live) {
    var pane = new LogPane(document.getElementById("log"));
    var charts = new Charts();
    var state = document.getElementById("log-state");
    var source = new EventSource(live.getAttribute("data-events"));
    source.addEventListener("status", function (e) { document.getElementById("job-status").innerHTML = e.data; });
    source.addEventListener("log", function (e) { pane.append(e.data); });
    source.addEventListener("at", function (e) { pane.place(e.data); });
    source.addEventListener("reset", function () { pane.clear(); });
    source.addEventListener("skipped", function (e) {
      pane.clear();  // the pane's lines stay in one run: what was missed is loaded on demand
      state.textContent = e.data + " bytes went by unseen: load earlier to see them";
    });
    source.addEventListener("metrics", function (e) { charts.add(JSON.parse(e.data)); });
    source.addEventListener("end", function (e) {
      state.textContent = e.data ? "ended: " + e.data : "ended";
      state.setAttribute("data-ended", "1");
    });
    // every topic has ended (the job's final status came too): no reconnect
    source.addEventListener("done", function () { source.close(); });
    var search = document.getElementById("log-search");
    search.addEventListener("input", function () {
      var hits = [];
      var query = search.value;
      Array.prototype.forEach.call(pane.pre.children, function (chunk) {
        var hit = query !== "" && chunk.textContent.indexOf(query) !== -1;
        chunk.classList.toggle("hit", hit);
        if (hit) { hits.push(chunk); }
      });
      if (hits.length) {
        document.getElementById("log-follow").checked = false;  // stay at what was found
        hits[0].scrollIntoView({ block: "center" });
      }
    });
    var pause = document.getElementById("log-pause");
    pause.addEventListener("change", function () { pane.pause(pause.checked); });
    var earlier = document.getElementById("log-earlier");
    earlier.addEventListener("click", function () { loadEarlier(pane, earlier, earlier.getAttribute("data-url")); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    signInFromFragment();
    var live = document.getElementById("live");
    if (live) { followJob(live); }
  });
})();
