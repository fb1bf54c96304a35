/**
 * SVG charts for the report, drawn with Vega-Lite compiled to Vega and rendered headless
 * (`view.toSVG()`, no browser, no canvas). Charts a reader can trust at a glance: one
 * distinct colour per series, min–max whiskers from the rounds, the anchors as dashed
 * reference lines, and a log axis where the data spans orders of magnitude (so a 1 ms
 * series does not flatten a 1 µs one to zero). The charting libraries are optional
 * (devDependencies of the repository, never installed with the package) and loaded only
 * when a report is written; if they are missing the report is still written, without
 * charts, and says how to add them (CHARTS_MISSING).
 */
import type { Chart } from './scenario.js';

/** The report's line when the charting libraries cannot be loaded. */
export const CHARTS_MISSING =
  'charts were not drawn: vega and vega-lite are not installed (add them with `npm install vega vega-lite`)';

interface VegaModules {
  compile(spec: object): { spec: object };
  render(spec: object): Promise<string>;
}

let modules: Promise<VegaModules | null> | undefined;

async function load(): Promise<VegaModules | null> {
  try {
    const vl = await import('vega-lite');
    const vega = await import('vega');
    return {
      compile: (spec) => vl.compile(spec as Parameters<typeof vl.compile>[0]),
      render: (spec) =>
        new vega.View(vega.parse(spec as Parameters<typeof vega.parse>[0]), { renderer: 'none' }).toSVG(),
    };
  } catch {
    return null;
  }
}

/** Twenty colours a reader can tell apart, so that no two series of one chart share one. */
export const PALETTE = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
  '#aec7e8',
  '#ffbb78',
  '#98df8a',
  '#ff9896',
  '#c5b0d5',
  '#c49c94',
  '#f7b6d2',
  '#c7c7c7',
  '#dbdb8d',
  '#9edae5',
];

/** Whether y values span at least two orders of magnitude (and are all positive): a log axis reads them. */
export function spansDecades(ys: readonly number[], decades = 2): boolean {
  const v = ys.filter(Number.isFinite);
  if (v.length < 2 || v.some((y) => y <= 0)) return false;
  return Math.max(...v) / Math.min(...v) >= 10 ** decades;
}

interface Datum {
  x: number;
  y: number;
  lo?: number;
  hi?: number;
  series: string;
  anchor: string;
}

/**
 * The points a chart can draw: x and y finite numbers (a point whose every round failed is
 * NaN, and is left out rather than labelled "y: NaN"), the whisker only where both ends are.
 */
function data(c: Chart): Datum[] {
  return c.series.flatMap((s) =>
    s.points
      .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))
      .map(([x, y, lo, hi]) => ({
        x,
        y,
        ...(Number.isFinite(lo) && Number.isFinite(hi) ? { lo, hi } : {}),
        series: s.name,
        anchor: s.anchor ? 'anchor' : 'rawio',
      })),
  );
}

/** Whether a chart has a point to draw: one with none (every run behind it failed) is left out. */
export function hasData(c: Chart): boolean {
  return data(c).length > 0;
}

/**
 * The Vega-Lite spec of a chart: one line (or bar group) per series, each its own colour;
 * min–max whiskers where the points carry them; anchors dashed; a log y axis where the
 * values span orders of magnitude.
 */
export function vegaLiteSpec(c: Chart): object {
  const values = data(c);
  const bar = c.kind === 'bar';
  const logY = c.logY ?? spansDecades(values.flatMap((d) => [d.y, d.lo ?? d.y, d.hi ?? d.y]));
  const names = c.series.map((s) => s.name);
  const x = bar
    ? { field: 'x', type: 'ordinal', title: c.xLabel }
    : { field: 'x', type: 'quantitative', title: c.xLabel, scale: c.logX ? { type: 'log' } : {} };
  const y = { field: 'y', type: 'quantitative', title: c.yLabel, scale: logY ? { type: 'log' } : {} };
  const color = {
    field: 'series',
    type: 'nominal',
    title: null,
    legend: { labelLimit: 240 },
    scale: { domain: names, range: names.map((_, i) => PALETTE[i % PALETTE.length]) },
  };
  const offset = bar ? { xOffset: { field: 'series' } } : {};
  const main = {
    mark: bar ? { type: 'bar' } : { type: 'line', point: true },
    encoding: {
      x,
      ...offset,
      y,
      color,
      ...(bar
        ? {}
        : {
            strokeDash: {
              field: 'anchor',
              type: 'nominal',
              title: null,
              legend: null,
              scale: {
                domain: ['rawio', 'anchor'],
                range: [
                  [1, 0],
                  [6, 4],
                ],
              },
            },
          }),
      tooltip: [{ field: 'series' }, { field: 'x' }, { field: 'y', format: ',.0f' }],
    },
  };
  const whiskers = {
    transform: [{ filter: 'isValid(datum.lo)' }],
    mark: { type: 'rule', strokeWidth: 1.5 },
    encoding: { x, ...offset, y: { ...y, field: 'lo' }, y2: { field: 'hi' }, color },
  };
  const layer: object[] = [main];
  if (bar && values.some((d) => d.anchor === 'anchor')) {
    // bars for rawio; each anchor a dashed line across its x group, the bar it is read against
    Object.assign(main, { transform: [{ filter: "datum.anchor === 'rawio'" }] });
    Object.assign(whiskers, { transform: [{ filter: "isValid(datum.lo) && datum.anchor === 'rawio'" }] });
    layer.push({
      transform: [{ filter: "datum.anchor === 'anchor'" }],
      mark: { type: 'tick', thickness: 2, strokeDash: [6, 4] },
      encoding: { x, y, color },
    });
  }
  if (values.some((d) => d.lo !== undefined)) layer.push(whiskers);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: c.title,
    width: 520,
    height: 300,
    data: { values },
    layer,
    config: { font: 'sans-serif' },
  };
}

/** The chart as an SVG document, or null when the charting libraries are not installed. */
export async function renderSvg(c: Chart): Promise<string | null> {
  modules ??= load();
  const m = await modules;
  if (!m) return null;
  return m.render(m.compile(vegaLiteSpec(c)).spec);
}
