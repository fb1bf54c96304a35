/**
 * SVG charts for the report, drawn with Vega-Lite compiled to Vega and rendered headless
 * (`view.toSVG()`, no browser, no canvas). The charting libraries are optional
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

/** The Vega-Lite spec of a chart: one line (or bar group) per series. */
export function vegaLiteSpec(c: Chart): object {
  const values = c.series.flatMap((s) => s.points.map(([x, y]) => ({ x, y, series: s.name })));
  const bar = c.kind === 'bar';
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: c.title,
    width: 520,
    height: 300,
    data: { values },
    mark: bar ? { type: 'bar' } : { type: 'line', point: true },
    encoding: {
      x: bar
        ? { field: 'x', type: 'ordinal', title: c.xLabel }
        : { field: 'x', type: 'quantitative', title: c.xLabel, scale: c.logX ? { type: 'log' } : {} },
      ...(bar ? { xOffset: { field: 'series' } } : {}),
      y: { field: 'y', type: 'quantitative', title: c.yLabel },
      color: { field: 'series', type: 'nominal', title: null },
      tooltip: [{ field: 'series' }, { field: 'x' }, { field: 'y', format: ',.0f' }],
    },
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
