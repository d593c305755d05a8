// The dashboard's one hand-written script: sign-in from the URL fragment and
// the job page's live pane (one EventSource for status, log and metrics).
"use strict";
(function () {
  var MAX_LINES = 10000;

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
    this.lines = [];  // line count of each text node, oldest first
    this.total = 0;
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
    var count = (text.match(/\n/g) || []).length;
    this.pre.appendChild(this.render(text));
    this.lines.push(count);
    this.total += count;
    while (this.total > MAX_LINES && this.pre.firstChild && this.lines.length > 1) {
      this.pre.removeChild(this.pre.firstChild);
      this.total -= this.lines.shift();
    }
    var follow = document.getElementById("log-follow");
    if (!follow || follow.checked) { this.pre.scrollTop = this.pre.scrollHeight; }
  };
  LogPane.prototype.clear = function () {
    this.pre.textContent = "";
    this.style = "";
    this.lines = [];
    this.total = 0;
  };

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
    source.addEventListener("reset", function () { pane.clear(); });
    source.addEventListener("skipped", function (e) { pane.append("[" + e.data + " bytes not shown]\n"); });
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
    var download = document.getElementById("log-download");
    download.addEventListener("click", function () {
      download.href = URL.createObjectURL(new Blob([pane.pre.textContent], { type: "text/plain" }));
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    signInFromFragment();
    var live = document.getElementById("live");
    if (live) { followJob(live); }
  });
})();
