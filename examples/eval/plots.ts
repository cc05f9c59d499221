/**
 * Plain SVG plots of the evaluation (no plotting library: two small charts do not need one).
 * - cost ratio against ε, one line per population size, one panel per k;
 * - the segment profiles in real units, for the largest population at ε = 1 (or the nearest).
 */
import type { EvalResult } from "./main";

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const COLOURS = ["#1b6ca8", "#d1495b", "#2e933c", "#edae49", "#6d597a", "#00798c"];

export function costRatioPlot(results: readonly EvalResult[]): string {
  const ks = [...new Set(results.map((r) => r.k))].sort((a, b) => a - b);
  const populations = [...new Set(results.map((r) => r.population))];
  const epsilons = [...new Set(results.map((r) => r.epsilon))].sort((a, b) => (a ?? 1e9) - (b ?? 1e9));
  const panelW = 300;
  const panelH = 220;
  const pad = { l: 50, r: 10, t: 30, b: 40 };
  const width = ks.length * (panelW + pad.l + pad.r) + 160;
  const height = panelH + pad.t + pad.b;
  const ratios = results.map((r) => r.costRatio);
  const yMax = Math.max(1.1, ...ratios) * 1.02;
  const yMin = Math.min(1, ...ratios) * 0.99;
  const x = (i: number) =>
    pad.l + (epsilons.length === 1 ? panelW / 2 : (i / (epsilons.length - 1)) * panelW);
  const y = (v: number) => pad.t + panelH - ((v - yMin) / (yMax - yMin)) * panelH;
  const parts: string[] = [];
  ks.forEach((k, p) => {
    const ox = p * (panelW + pad.l + pad.r);
    parts.push(`<g transform="translate(${ox},0)">`);
    parts.push(
      `<text x="${pad.l + panelW / 2}" y="18" text-anchor="middle" font-weight="bold">k = ${k}</text>`,
    );
    parts.push(
      `<line x1="${pad.l}" y1="${pad.t + panelH}" x2="${pad.l + panelW}" y2="${pad.t + panelH}" stroke="#333"/>`,
    );
    parts.push(`<line x1="${pad.l}" y1="${pad.t}" x2="${pad.l}" y2="${pad.t + panelH}" stroke="#333"/>`);
    for (const tick of [1, 1.05, 1.1, 1.2, 1.5, 2].filter((t) => t >= yMin && t <= yMax)) {
      parts.push(
        `<line x1="${pad.l}" y1="${y(tick)}" x2="${pad.l + panelW}" y2="${y(tick)}" stroke="#ddd"/>`,
      );
      parts.push(
        `<text x="${pad.l - 6}" y="${y(tick) + 4}" text-anchor="end" font-size="11">${tick.toFixed(2)}</text>`,
      );
    }
    epsilons.forEach((e, i) => {
      parts.push(
        `<text x="${x(i)}" y="${pad.t + panelH + 16}" text-anchor="middle" font-size="11">${e === null ? "no DP" : `ε=${e}`}</text>`,
      );
    });
    populations.forEach((pop, c) => {
      const points = epsilons
        .map((e, i) => {
          const r = results.find((row) => row.k === k && row.population === pop && row.epsilon === e);
          return r ? `${x(i)},${y(r.costRatio)}` : null;
        })
        .filter((v): v is string => v !== null);
      const colour = COLOURS[c % COLOURS.length];
      parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" points="${points.join(" ")}"/>`);
      for (const pt of points) {
        const [px, py] = pt.split(",");
        parts.push(`<circle cx="${px}" cy="${py}" r="3" fill="${colour}"/>`);
      }
    });
    parts.push(
      `<text x="${pad.l + panelW / 2}" y="${height - 4}" text-anchor="middle" font-size="11">ε for the whole training</text>`,
    );
    parts.push("</g>");
  });
  const legendX = ks.length * (panelW + pad.l + pad.r) + 10;
  populations.forEach((pop, c) => {
    const n = results.find((r) => r.population === pop)?.n ?? 0;
    parts.push(
      `<rect x="${legendX}" y="${pad.t + c * 18}" width="12" height="12" fill="${COLOURS[c % COLOURS.length]}"/>`,
    );
    parts.push(
      `<text x="${legendX + 18}" y="${pad.t + c * 18 + 11}" font-size="12">${esc(pop)} (N = ${n.toLocaleString("en-GB")})</text>`,
    );
  });
  return svg(width, height, "cost ratio to centralised k-means++ against ε", parts);
}

export function segmentPlot(results: readonly EvalResult[]): string {
  const dp = results.filter((r) => r.epsilon !== null);
  const pool = dp.length > 0 ? dp : [...results];
  const largest = Math.max(...pool.map((r) => r.n));
  const candidates = pool.filter((r) => r.n === largest);
  const pick = [...candidates].sort(
    (a, b) =>
      Math.abs((a.epsilon ?? 99) - 1) - Math.abs((b.epsilon ?? 99) - 1) ||
      Math.abs(a.k - 4) - Math.abs(b.k - 4),
  )[0];
  if (!pick) return svg(400, 60, "no results", []);
  const metrics: Array<[string, string]> = [
    ["recency", "recency (days)"],
    ["frequency", "orders"],
    ["monetary", "monetary"],
    ["avg_order_value", "avg order"],
    ["tenure", "tenure (days)"],
  ];
  const rowH = 34;
  const labelW = 230;
  const colW = 130;
  const width = labelW + metrics.length * colW + 20;
  const height = 60 + pick.centroids.length * rowH;
  const parts: string[] = [];
  metrics.forEach(([, title], m) => {
    parts.push(
      `<text x="${labelW + m * colW + colW / 2}" y="44" text-anchor="middle" font-size="12" font-weight="bold">${esc(title)}</text>`,
    );
  });
  const maxOf = metrics.map(([key]) =>
    Math.max(1e-9, ...pick.centroids.map((c) => Math.abs(c.real[key] ?? 0))),
  );
  pick.centroids.forEach((c, i) => {
    const top = 54 + i * rowH;
    const size = pick.segmentSizes[i] ?? 0;
    parts.push(
      `<text x="6" y="${top + 20}" font-size="12">${esc(c.label)} (${size.toLocaleString("en-GB")})</text>`,
    );
    metrics.forEach(([key], m) => {
      const value = c.real[key] ?? 0;
      const w = ((colW - 20) * Math.abs(value)) / (maxOf[m] as number);
      parts.push(
        `<rect x="${labelW + m * colW}" y="${top + 6}" width="${w.toFixed(1)}" height="18" fill="${COLOURS[i % COLOURS.length]}" opacity="0.8"/>`,
      );
      parts.push(
        `<text x="${labelW + m * colW + 4}" y="${top + 20}" font-size="11">${value >= 100 ? value.toFixed(0) : value.toFixed(1)}</text>`,
      );
    });
  });
  return svg(
    width,
    height,
    `segments in real units: ${pick.population} (N = ${pick.n.toLocaleString("en-GB")}), k = ${pick.k}, ε = ${pick.epsilon ?? "none"}`,
    parts,
  );
}

function svg(width: number, height: number, title: string, parts: string[]): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height + 24}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="8" y="16" font-size="14" font-weight="bold">${esc(title)}</text>
<g transform="translate(0,24)">
${parts.join("\n")}
</g>
</svg>
`;
}
