// A small hand-written SVG of the soak's memory over time (no plotting dependency): the agent's RSS and
// JS heap used, in MB, against minutes; the warm-up shaded, and the ±10 % band around the mean RSS after
// it drawn, so "flat within ±10 %" can be seen at a glance.
import { memoryStats } from './report.mjs';

const W = 720, H = 360, L = 64, R = 150, T = 40, B = 48;

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function niceStep(span, ticks) {
  const raw = span / ticks;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw);
}

/**
 * series: [{ name, color, points: [[minutes, MB]…], dash? }]; warmupMin; band: { lo, hi } MB or null;
 * title, subtitle.
 */
export function memoryPlot({ series, warmupMin, band, title, subtitle }) {
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).concat(band ? [band.lo, band.hi] : []);
  const xMax = Math.max(1, ...xs);
  const yStep = niceStep(Math.max(...ys) || 1, 6);
  const yMax = Math.ceil((Math.max(...ys) * 1.05) / yStep) * yStep;
  const xStep = niceStep(xMax, 10);
  const px = (x) => L + (x / xMax) * (W - L - R);
  const py = (y) => T + (1 - y / yMax) * (H - T - B);
  const f = (n) => n.toFixed(1);
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(`<text x="${L}" y="18" font-size="14" font-weight="bold">${esc(title)}</text>`);
  if (subtitle) out.push(`<text x="${L}" y="33" fill="#555">${esc(subtitle)}</text>`);
  if (warmupMin > 0) {
    out.push(`<rect x="${f(px(0))}" y="${T}" width="${f(px(Math.min(warmupMin, xMax)) - px(0))}" height="${H - T - B}" fill="#eee"/>`);
    out.push(`<text x="${f(px(0) + 4)}" y="${T + 14}" fill="#777">warm-up</text>`);
  }
  if (band) {
    out.push(`<rect x="${f(px(warmupMin))}" y="${f(py(band.hi))}" width="${f(px(xMax) - px(warmupMin))}" height="${f(py(band.lo) - py(band.hi))}" fill="#1f77b4" fill-opacity="0.08" stroke="#1f77b4" stroke-opacity="0.3" stroke-dasharray="3 3"/>`);
  }
  for (let y = 0; y <= yMax + 1e-9; y += yStep) {
    out.push(`<line x1="${L}" x2="${W - R}" y1="${f(py(y))}" y2="${f(py(y))}" stroke="#ddd"/>`);
    out.push(`<text x="${L - 6}" y="${f(py(y) + 4)}" text-anchor="end">${+y.toFixed(2)}</text>`);
  }
  for (let x = 0; x <= xMax + 1e-9; x += xStep) {
    out.push(`<line x1="${f(px(x))}" x2="${f(px(x))}" y1="${H - B}" y2="${H - B + 4}" stroke="#333"/>`);
    out.push(`<text x="${f(px(x))}" y="${H - B + 18}" text-anchor="middle">${+x.toFixed(2)}</text>`);
  }
  out.push(`<line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="#333"/><line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="#333"/>`);
  out.push(`<text x="${(L + W - R) / 2}" y="${H - 10}" text-anchor="middle">minutes</text>`);
  out.push(`<text transform="translate(16 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">MB</text>`);
  series.forEach((s, i) => {
    const d = s.points.map((p, j) => `${j ? 'L' : 'M'}${f(px(p[0]))} ${f(py(p[1]))}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.8"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
    const ly = T + 10 + i * 20;
    out.push(`<line x1="${W - R + 12}" x2="${W - R + 36}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
    out.push(`<text x="${W - R + 42}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  if (band) {
    const ly = T + 10 + series.length * 20;
    out.push(`<rect x="${W - R + 12}" y="${ly - 6}" width="24" height="12" fill="#1f77b4" fill-opacity="0.08" stroke="#1f77b4" stroke-opacity="0.3" stroke-dasharray="3 3"/>`);
    out.push(`<text x="${W - R + 42}" y="${ly + 4}">RSS mean ±10 %</text>`);
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** The soak's plot from its report (bench/soak/run.mjs): RSS, heap used and heap total over time. */
export function plotReport(report) {
  const s = { ...report.soak, samples: report.soak.samples.filter((x) => x.t <= report.soak.minutes * 60 + 3) }; // the load's window only
  const rate = (p) => s.perProtocol[p].madePerSec;
  const rss = memoryStats(s.samples, 'vmRssBytes', s.warmupSec);
  return memoryPlot({
    title: `tapwire agent: ${s.minutes} min soak, mixed HTTP/1 + gRPC + PostgreSQL on lo`,
    subtitle: `${report.date.slice(0, 10)} · made/s: http ${rate('http')}, grpc ${rate('grpc')}, postgres ${rate('postgres')} · agent ${s.cpu.agentCoresAfterWarmup} cores`,
    warmupMin: s.warmupSec / 60,
    band: rss ? { lo: rss.meanMB * 0.9, hi: rss.meanMB * 1.1 } : null,
    series: [
      { name: 'RSS (VmRSS)', color: '#1f77b4', points: s.samples.map((x) => [x.t / 60, x.vmRssBytes / 1e6]) },
      ...(s.samples.some((x) => x.ringRssBytes) ? [{ name: 'libpcap ring', color: '#2ca02c', dash: '6 3', points: s.samples.map((x) => [x.t / 60, x.ringRssBytes / 1e6]) }] : []),
      { name: 'JS heap used', color: '#d62728', points: s.samples.filter((x) => Number.isFinite(x.heapUsedBytes)).map((x) => [x.t / 60, x.heapUsedBytes / 1e6]) },
      { name: 'JS heap total', color: '#ff9896', dash: '4 3', points: s.samples.filter((x) => Number.isFinite(x.heapTotalBytes)).map((x) => [x.t / 60, x.heapTotalBytes / 1e6]) },
    ],
  });
}
