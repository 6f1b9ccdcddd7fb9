// The gridhub dashboard: reads /api/overview every few seconds and draws it.
// Plain JavaScript and SVG, served by the hub: nothing is fetched from elsewhere.
"use strict";

const TEXT = {
  zh: {
    title: "gridhub 数据汇聚", switch: "English", ok: "正常", bad: "异常",
    updated: "更新于", flow: "数据流转：各数据源 → 处理 → ClickHouse",
    chart_rates: "各数据源拉取速率（条/秒，近 1 小时）", chart_lag: "积压消息数（近 1 小时）",
    chart_fresh: "入库延迟（秒，p50 / p99，近 1 小时）", dead_letters: "死信（原因与样例，已脱敏）",
    waiting: "各社区待定位、待关联记录", source: "数据源", entity: "数据类型", reason: "原因",
    count: "数量", sample: "样例", community: "社区代码", unplaced: "未定位居民",
    unlinked: "待关联记录", records: "条", per_s: "条/秒", errors: "错误", last: "上次成功",
    never: "从未", routed: "路由", merged: "合并", stored: "入库", lag: "积压",
    clickhouse: "ClickHouse", unknown: "（未知社区）", none: "无", no_data: "数据收集中…",
    party: "党建", police: "公安", civil: "民政", hotline: "12345 热线",
  },
  en: {
    title: "gridhub data hub", switch: "中文", ok: "healthy", bad: "unhealthy",
    updated: "updated", flow: "Flow: sources → stages → ClickHouse",
    chart_rates: "Records pulled per source (per second, last hour)",
    chart_lag: "Messages waiting (last hour)",
    chart_fresh: "Freshness (seconds to queryable, p50 / p99, last hour)",
    dead_letters: "Dead letters (reasons and a masked sample)",
    waiting: "Unplaced and unlinked records per community", source: "source",
    entity: "entity", reason: "reason", count: "count", sample: "sample",
    community: "community", unplaced: "unplaced residents", unlinked: "unlinked records",
    records: "records", per_s: "/s", errors: "errors", last: "last success", never: "never",
    routed: "routed", merged: "merged", stored: "stored", lag: "waiting",
    clickhouse: "ClickHouse", unknown: "(community unknown)", none: "none",
    no_data: "collecting data…",
    party: "party-building", police: "public security", civil: "civil affairs",
    hotline: "12345 hotline",
  },
};
const COLOURS = ["#2680c2", "#e12d39", "#3ebd93", "#f0b429", "#8719e0", "#486581"];
const params = new URLSearchParams(location.search);
let lang = params.get("lang") || localStorage.getItem("gridhub-lang") || "zh";
let last = null;

function t(key) { return (TEXT[lang] || TEXT.zh)[key] || key; }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const child of children) node.append(child);
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

function fmt(n) {
  if (n === null || n === undefined) return "–";
  return Math.abs(n) >= 100 ? Math.round(n).toLocaleString() : Number(n.toFixed(2)).toString();
}

function compact(n) {  // axis labels: 652k, not 652,463
  for (const [size, unit] of [[1e9, "G"], [1e6, "M"], [1e3, "k"]]) {
    if (Math.abs(n) >= size) return Number((n / size).toFixed(1)) + unit;
  }
  return fmt(n);
}

function clock(iso) {
  return new Date(iso).toLocaleTimeString(lang === "zh" ? "zh-CN" : "en-GB");
}

function lineChart(target, series) {
  target.replaceChildren();
  const points = series.flatMap((s) => s.points);
  if (points.length < 2) { target.append(el("p", {class: "muted"}, t("no_data"))); return; }
  const W = 600, H = 200, L = 46, B = 22;
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1);
  const y1 = Math.max(...ys, 1) * 1.1;
  const X = (x) => L + (x - x0) / (x1 - x0) * (W - L - 8);
  const Y = (y) => H - B - y / y1 * (H - B - 8);
  const chart = svg("svg", {viewBox: `0 0 ${W} ${H}`, role: "img"});
  chart.append(svg("line", {class: "axis", x1: L, y1: H - B, x2: W, y2: H - B}));
  chart.append(svg("line", {class: "axis", x1: L, y1: 4, x2: L, y2: H - B}));
  for (const v of [0, y1 / 2, y1]) {
    const label = svg("text", {x: L - 4, y: Y(v) + 4, "text-anchor": "end"});
    label.textContent = compact(v);
    chart.append(label);
  }
  for (const [x, anchor] of [[x0, "start"], [x1, "end"]]) {
    const label = svg("text", {x: X(x), y: H - 6, "text-anchor": anchor});
    label.textContent = clock(x * 1000);
    chart.append(label);
  }
  const legend = el("div", {class: "legend"});
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const shown = s.points.filter((p) => p[1] !== null);
    if (shown.length) {
      const d = shown.map((p, j) => `${j ? "L" : "M"}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`);
      chart.append(svg("path", {class: "line", d: d.join(" "), stroke: colour, "data-series": s.name}));
    }
    legend.append(el("span", {style: `color:${colour}`}, "■ " + s.label));
  });
  target.append(chart, legend);
}

function rates(history, pick) {
  const out = [];
  for (let i = 1; i < history.length; i++) {
    const dt = history[i].t - history[i - 1].t;
    const a = pick(history[i - 1]), b = pick(history[i]);
    if (dt > 0 && a !== undefined && b !== undefined) out.push([history[i].t, Math.max(0, (b - a) / dt)]);
  }
  return out;
}

function node(title, lines, healthy) {
  return el("div", {class: "node" + (healthy ? "" : " bad")}, el("b", {}, title),
    ...lines.map((line) => el("div", {class: line.bad ? "bad" : "muted"}, line.text)));
}

function render(data) {
  const status = data.status, history = data.history;
  const sources = Object.entries(status.sources);
  const healthy = sources.every(([, s]) => s.healthy) && !status.store_error;
  const overall = document.getElementById("overall");
  overall.textContent = healthy ? t("ok") : t("bad");
  overall.className = "badge " + (healthy ? "ok" : "bad");
  document.getElementById("updated").textContent =
    `${t("updated")} ${clock(data.generated_at)}`;

  const lastRate = (pick) => { const r = rates(history.slice(-7), pick); return r.length ? r[r.length - 1][1] : null; };
  const column = el("div", {class: "sources"});
  for (const [name, s] of sources) {
    const lines = [{text: `${fmt(s.records)} ${t("records")} · ${fmt(lastRate((h) => h.pulled[name]))} ${t("per_s")}`},
                   {text: `${t("last")}: ${s.last_success ? clock(s.last_success) : t("never")}`}];
    if (!s.healthy) lines.push({text: s.reason, bad: true});
    column.append(node(`${t(name)} (${name})`, lines, s.healthy));
  }
  const stages = status.stages;
  const flow = document.getElementById("flow");
  flow.replaceChildren(column, el("span", {class: "arrow"}, "→"),
    node(t("routed"), [{text: `${fmt(stages.routed)} · ${fmt(lastRate((h) => h.routed))} ${t("per_s")}`}], true),
    el("span", {class: "arrow"}, "→"),
    node(t("merged"), [{text: `${fmt(stages.merged)} · ${fmt(lastRate((h) => h.merged))} ${t("per_s")}`}], true),
    el("span", {class: "arrow"}, "→"),
    node(t("clickhouse"), [{text: `${t("stored")} ${fmt(stages.sunk_rows)}`},
                           {text: `${t("lag")} ${fmt(status.lag)}`},
                           ...(status.store_error ? [{text: status.store_error, bad: true}] : [])],
         !status.store_error));

  lineChart(document.getElementById("chart-rates"), sources.map(([name]) => (
    {name, label: t(name), points: rates(history, (h) => h.pulled[name])})));
  lineChart(document.getElementById("chart-lag"), [
    {name: "lag", label: t("lag"), points: history.map((h) => [h.t, h.lag])}]);
  lineChart(document.getElementById("chart-fresh"), [
    {name: "p50", label: "p50", points: history.map((h) => [h.t, h.fresh_p50])},
    {name: "p99", label: "p99", points: history.map((h) => [h.t, h.fresh_p99])}]);

  const dead = document.querySelector("#dead tbody");
  dead.replaceChildren(...(data.dead_letters.length ? data.dead_letters.map((d) => el("tr", {},
    el("td", {}, t(d.source) === d.source ? d.source : `${t(d.source)} (${d.source})`), el("td", {}, d.entity),
    el("td", {}, d.reason), el("td", {class: "num"}, fmt(d.count)), el("td", {class: "sample"}, d.sample)))
    : [el("tr", {}, el("td", {colspan: "5", class: "muted"}, t("none")))]));
  const waiting = document.querySelector("#communities tbody");
  waiting.replaceChildren(...(data.communities.length ? data.communities.map((c) => el("tr", {},
    el("td", {}, c.community_code || t("unknown")), el("td", {class: "num"}, fmt(c.unplaced)),
    el("td", {class: "num"}, fmt(c.unlinked))))
    : [el("tr", {}, el("td", {colspan: "3", class: "muted"}, t("none")))]));
}

function translate() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.title = t("title");
  for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
  document.getElementById("lang").textContent = t("switch");
  if (last) render(last);
}

async function refresh() {
  try {
    const answer = await fetch("/api/overview", {cache: "no-store"});
    last = await answer.json();
    render(last);
    document.body.dataset.ready = "1";
  } catch (error) {
    document.getElementById("updated").textContent = String(error);
  }
}

document.getElementById("lang").addEventListener("click", () => {
  lang = lang === "zh" ? "en" : "zh";
  localStorage.setItem("gridhub-lang", lang);
  translate();
});
translate();
refresh();
setInterval(refresh, 5000);
