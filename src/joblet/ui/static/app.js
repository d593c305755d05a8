// The dashboard's one hand-written script: sign-in from the URL fragment, the
// job page's live pane (one EventSource for status, log, metrics and summary)
// and the host page's charts (one EventSource too).
"use strict";
(function () {
  var MAX_LINES = 10000;
  var EARLIER_LINES = 5000;
  var MAX_POINTS = 3000;  // per chart: an hour of samples a second

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

  // One uPlot chart in a div, drawn at its first points; `data-points` says
  // how many it has (the tests wait on it).
  var COLOURS = ["#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];
  function Chart(el, title, labels) {
    this.el = el;
    this.title = title;
    this.labels = labels;
    this.data = [[]].concat(labels.map(function () { return []; }));
    this.plot = null;
  }
  Chart.prototype.add = function (time, values) {
    var d = this.data;
    d[0].push(time);
    values.forEach(function (v, i) { d[i + 1].push(v); });
    if (d[0].length > MAX_POINTS) { d.forEach(function (col) { col.shift(); }); }
  };
  Chart.prototype.clear = function () {
    this.data.forEach(function (col) { col.length = 0; });
  };
  Chart.prototype.draw = function () {
    this.el.setAttribute("data-points", String(this.data[0].length));
    if (typeof uPlot === "undefined") { return; }
    if (this.plot) { this.plot.setData(this.data); return; }
    var series = [{}].concat(this.labels.map(function (label, i) {
      return { label: label, stroke: COLOURS[i % COLOURS.length] };
    }));
    var width = Math.max(this.el.clientWidth, 300);
    this.plot = new uPlot({ title: this.title, width: width, height: 170, series: series }, this.data, this.el);
  };

  var MB = 1048576;
  var KB = 1024;
  function scaled(v, by) { return v === null ? null : v / by; }

  function JobCharts() {
    var charts = this.charts = [];
    function chart(id, title, labels, pick) {
      var el = document.getElementById(id);
      if (el) { charts.push({ chart: new Chart(el, title, labels), pick: pick }); }
    }
    // a point: [time, CPU %, memory, limit, read, write, rx, tx, GPU %, GPU memory]
    chart("chart-cpu", "CPU %", ["CPU %"], function (p) { return [p[1]]; });
    chart("chart-mem", "Memory MB", ["used", "limit"], function (p) { return [scaled(p[2], MB), scaled(p[3], MB)]; });
    chart("chart-io", "IO KB/s", ["read", "write"], function (p) { return [scaled(p[4], KB), scaled(p[5], KB)]; });
    chart("chart-net", "Network KB/s", ["rx", "tx"], function (p) { return [scaled(p[6], KB), scaled(p[7], KB)]; });
    chart("chart-gpu", "GPU", ["utilisation %", "memory MB"], function (p) { return [p[8], scaled(p[9], MB)]; });
  }
  // a new connection sends every sample again: the charts start over
  JobCharts.prototype.clear = function () {
    this.charts.forEach(function (c) { c.chart.clear(); });
  };
  JobCharts.prototype.add = function (points) {
    this.charts.forEach(function (c) {
      points.forEach(function (p) { c.chart.add(p[0], c.pick(p)); });
      c.chart.draw();
    });
  };

  function HostCharts() {
    this.cores = null;
    this.memory = new Chart(document.getElementById("chart-host-mem"), "Memory GB", ["used", "total"]);
    this.network = new Chart(document.getElementById("chart-host-net"), "Network KB/s", ["rx", "tx"]);
    this.disk = new Chart(document.getElementById("chart-host-disk"), "Disk IO KB/s", ["read", "write"]);
  }
  HostCharts.prototype.clear = function () {
    [this.cores, this.memory, this.network, this.disk].forEach(function (c) { if (c) { c.clear(); } });
  };
  HostCharts.prototype.add = function (p) {
    if (!this.cores) {  // one series per core: known at the first sample
      var labels = p.cores.map(function (_, i) { return "cpu" + i; });
      this.cores = new Chart(document.getElementById("chart-host-cpu"), "CPU % per core", labels);
    }
    var GB = 1073741824;
    this.cores.add(p.time, p.cores);
    this.memory.add(p.time, [p.memory[0] / GB, p.memory[1] / GB]);
    this.network.add(p.time, [p.network[0] / KB, p.network[1] / KB]);
    this.disk.add(p.time, [p.disk[0] / KB, p.disk[1] / KB]);
    [this.cores, this.memory, this.network, this.disk].forEach(function (c) { c.draw(); });
  };

  function followHost(live) {
    var charts = new HostCharts();
    var source = new EventSource(live.getAttribute("data-events"));
    source.addEventListener("host", function (e) { document.getElementById("host-live").innerHTML = e.data; });
    source.addEventListener("chartsreset", function () { charts.clear(); });
    source.addEventListener("hostpoints", function (e) { JSON.parse(e.data).forEach(function (p) { charts.add(p); }); });
  }

  function followJob(live) {
    var pane = new LogPane(document.getElementById("log"));
    var charts = new JobCharts();
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
    source.addEventListener("chartsreset", function () { charts.clear(); });
    source.addEventListener("metrics", function (e) { charts.add(JSON.parse(e.data)); });
    source.addEventListener("summary", function (e) { document.getElementById("job-summary").innerHTML = e.data; });
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
    var host = document.getElementById("host-page");
    if (host) { followHost(host); }
  });
})();
