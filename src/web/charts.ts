/**
 * Charts with ECharts (SVG renderer, its aria description on), loaded on first use so the Hospital
 * view never waits for them. Each chart also writes the values it draws into `data-chart`, which is
 * what the end-to-end test compares with the API, and every view shows the same values in a table.
 */
type ECharts = typeof import('./echarts-setup.ts');
let loading: Promise<ECharts> | null = null;

function echarts(): Promise<ECharts> {
  loading ??= import('./echarts-setup.ts');
  return loading;
}

export interface Series {
  readonly name: string;
  readonly values: readonly (number | null)[];
  readonly kind: 'bar' | 'line';
  readonly color: string;
  readonly dashed?: boolean;
}

export async function drawChart(container: HTMLElement, options: { categories: readonly string[]; series: readonly Series[]; yName: string; horizontal?: boolean; logScale?: boolean }): Promise<() => void> {
  container.setAttribute('data-chart', JSON.stringify({ categories: options.categories, series: options.series.map((series) => ({ name: series.name, values: series.values })) }));
  const core = await echarts();
  const chart = core.init(container, undefined, { renderer: 'svg' });
  const categoryAxis = { type: 'category' as const, data: [...options.categories], axisLabel: { interval: 0, rotate: options.horizontal ? 0 : 40, fontSize: 12 } };
  // A log scale when targets span 5 s to a day; values of 0 are drawn at its floor.
  const valueAxis = options.logScale ? { type: 'log' as const, name: options.yName, logBase: 10, min: 1 } : { type: 'value' as const, name: options.yName };
  chart.setOption({
    aria: { enabled: true },
    animation: false,
    tooltip: { trigger: 'axis' },
    legend: { top: 0 },
    grid: { left: options.horizontal ? 160 : 60, right: 20, bottom: options.horizontal ? 30 : 110, top: 40 },
    xAxis: options.horizontal ? valueAxis : categoryAxis,
    yAxis: options.horizontal ? categoryAxis : valueAxis,
    series: options.series.map((series) => ({
      name: series.name,
      type: series.kind,
      data: options.logScale ? series.values.map((value) => (value === null ? null : Math.max(1, value))) : [...series.values],
      itemStyle: { color: series.color },
      lineStyle: series.dashed ? { type: 'dashed' } : undefined,
      symbol: series.kind === 'line' ? 'none' : undefined,
    })),
  });
  const resize = () => chart.resize();
  window.addEventListener('resize', resize);
  return () => {
    window.removeEventListener('resize', resize);
    chart.dispose();
  };
}
