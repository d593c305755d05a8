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
  LogPane.prototype.append = function (text) {
    var count = (text.match(/\n/g) || []).length;
    this.pre.appendChild(document.createTextNode(text));
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
      source.close();
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
