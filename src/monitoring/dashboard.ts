/**
 * The bgserve Grafana dashboard, built with @grafana/grafana-foundation-sdk from the query catalogue.
 * `npm run dashboards` writes it to deploy/grafana/dashboards/bgserve.json.
 */
import * as common from '@grafana/grafana-foundation-sdk/common';
import {
  AnnotationQueryBuilder,
  DashboardBuilder,
  DashboardCursorSync,
  MappingType,
  RowBuilder,
  type Dashboard,
} from '@grafana/grafana-foundation-sdk/dashboard';
import * as heatmap from '@grafana/grafana-foundation-sdk/heatmap';
import { DataqueryBuilder, PromQueryFormat } from '@grafana/grafana-foundation-sdk/prometheus';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as statetimeline from '@grafana/grafana-foundation-sdk/statetimeline';
import * as table from '@grafana/grafana-foundation-sdk/table';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import { COLORS, type Color } from '../config/defaults.js';
import {
  JOBS,
  RECORDED,
  colorMatcher,
  controllerWeights,
  modelVersions,
  predictionBuckets,
  predictionQuantile,
  releasePhase,
  releasesFinished,
  rollbackSecondsP99,
  routerRequestRate,
  routerWeights,
} from './queries.js';

/** The provisioned datasource's uid (deploy/grafana/provisioning/datasources/prometheus.yml). */
export const DATASOURCE_UID = 'bgserve-prometheus';
export const DASHBOARD_UID = 'bgserve';
const datasource: common.DataSourceRef = { type: 'prometheus', uid: DATASOURCE_UID };

/** Grafana's own range variable, so panels follow the scrape interval. */
const RATE = '$__rate_interval';

/** Panel titles, exported for tests and docs. */
export const PANEL_TITLES = {
  traffic: 'Traffic by color',
  weights: 'Weights',
  errorRatio: 'Error ratio',
  latency: 'Latency percentiles',
  predictionDistribution: 'Prediction distribution by color',
  predictionHeatmap: (color: string) => `Predicted values: ${color}`,
  modelVersions: 'Model versions',
  targetsUp: 'Targets up',
  releasePhase: 'Release phase',
  rollbackTime: 'Time to roll back (p99)',
} as const;

function query(expr: string, legend: string, refId: string): DataqueryBuilder {
  return new DataqueryBuilder().datasource(datasource).expr(expr).legendFormat(legend).refId(refId);
}

/** Series legends are hidden by the SDK unless asked for; every time series panel shows one. */
function legend(calcs: string[] = []): common.VizLegendOptionsBuilder {
  return new common.VizLegendOptionsBuilder()
    .showLegend(true)
    .displayMode(calcs.length > 0 ? common.LegendDisplayMode.Table : common.LegendDisplayMode.List)
    .placement(common.LegendPlacement.Bottom)
    .calcs(calcs);
}

function timeSeries(title: string, description: string, unit: string): timeseries.PanelBuilder {
  return (
    new timeseries.PanelBuilder()
      .title(title)
      .description(description)
      .datasource(datasource)
      .unit(unit)
      .height(8)
      .span(12)
      .lineWidth(2)
      .fillOpacity(10)
      .legend(legend(['mean', 'max', 'lastNotNull']))
      // Both colors in one tooltip: comparing them is the point of every panel here.
      .tooltip(new common.VizTooltipOptionsBuilder().mode(common.TooltipDisplayMode.Multi).sort(common.SortOrder.Descending))
  );
}

function refIds(): () => string {
  let next = 0;
  return () => String.fromCharCode(65 + next++);
}

function trafficPanel(): timeseries.PanelBuilder {
  const ref = refIds();
  return timeSeries(PANEL_TITLES.traffic, 'Predictions per second answered by each color, and through the router.', 'reqps')
    .min(0)
    .withTarget(query(RECORDED.requestRate, 'instance {{color}}', ref()))
    .withTarget(query(routerRequestRate({ window: RATE }), 'router → {{color}}', ref()));
}

function weightsPanel(): timeseries.PanelBuilder {
  const ref = refIds();
  return timeSeries(PANEL_TITLES.weights, 'Share of traffic per color: what the controller decided and what the router applies.', 'percent')
    .min(0)
    .max(100)
    .lineInterpolation(common.LineInterpolation.StepAfter)
    .withTarget(query(controllerWeights(), 'controller {{color}}', ref()))
    .withTarget(query(routerWeights(), 'router {{color}}', ref()));
}

function errorRatioPanel(): timeseries.PanelBuilder {
  const ref = refIds();
  return timeSeries(PANEL_TITLES.errorRatio, 'Rejected or failed predictions over all predictions, and the 5xx share alone.', 'percentunit')
    .min(0)
    .withTarget(query(RECORDED.errorRatio, '{{color}} all errors', ref()))
    .withTarget(query(RECORDED.serverErrorRatio, '{{color}} 5xx', ref()));
}

function latencyPanel(): timeseries.PanelBuilder {
  const ref = refIds();
  return timeSeries(PANEL_TITLES.latency, 'Validation + inference time inside each instance.', 's')
    .min(0)
    .withTarget(query(RECORDED.latencyP50, '{{color}} p50', ref()))
    .withTarget(query(RECORDED.latencyP95, '{{color}} p95', ref()))
    .withTarget(query(RECORDED.latencyP99, '{{color}} p99', ref()));
}

function predictionDistributionPanel(): timeseries.PanelBuilder {
  const ref = refIds();
  return timeSeries(
    PANEL_TITLES.predictionDistribution,
    'Mean and 10th/50th/90th percentiles of the predicted values per color: a release that shifts them shows here first.',
    'none',
  )
    .withTarget(query(RECORDED.predictionMean, '{{color}} mean', ref()))
    .withTarget(query(predictionQuantile(0.1, { window: RATE }), '{{color}} p10', ref()))
    .withTarget(query(predictionQuantile(0.5, { window: RATE }), '{{color}} p50', ref()))
    .withTarget(query(predictionQuantile(0.9, { window: RATE }), '{{color}} p90', ref()));
}

function predictionHeatmap(color: Color): heatmap.PanelBuilder {
  const buckets = predictionBuckets({ window: RATE, matchers: colorMatcher(color) });
  return new heatmap.PanelBuilder()
    .title(PANEL_TITLES.predictionHeatmap(color))
    .description(`How many predictions of ${color} fell in each value bucket.`)
    .datasource(datasource)
    .height(8)
    .span(12)
    .calculate(false)
    .showLegend()
    .color(
      new heatmap.HeatmapColorOptionsBuilder()
        .mode(heatmap.HeatmapColorMode.Scheme)
        .scheme(color === 'blue' ? 'Blues' : 'Greens')
        .steps(32),
    )
    .withTarget(query(buckets, '{{le}}', 'A').format(PromQueryFormat.Heatmap));
}

function modelVersionsPanel(): table.PanelBuilder {
  return new table.PanelBuilder()
    .title(PANEL_TITLES.modelVersions)
    .description('The model bundle each color serves right now.')
    .datasource(datasource)
    .height(6)
    .span(12)
    .withTarget(query(modelVersions(), '', 'A').format(PromQueryFormat.Table).instant())
    .withTransformation({
      id: 'organize',
      options: { excludeByName: { Time: true, Value: true }, indexByName: { color: 0, model_name: 1, model_version: 2 } },
    });
}

function targetsUpPanel(): stat.PanelBuilder {
  const ref = refIds();
  return new stat.PanelBuilder()
    .title(PANEL_TITLES.targetsUp)
    .description('1 when Prometheus can scrape the target.')
    .datasource(datasource)
    .height(6)
    .span(6)
    .colorMode(common.BigValueColorMode.Background)
    .graphMode(common.BigValueGraphMode.None)
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']))
    .mappings([{ type: MappingType.ValueToText, options: { '0': { text: 'DOWN', color: 'red' }, '1': { text: 'UP', color: 'green' } } }])
    .withTarget(query(`up{job="${JOBS.instances}"}`, '{{color}}', ref()))
    .withTarget(query(`up{job="${JOBS.control}"}`, 'control API', ref()));
}

function rollbackTimePanel(): stat.PanelBuilder {
  return new stat.PanelBuilder()
    .title(PANEL_TITLES.rollbackTime)
    .description('From a failing verdict or a rollback command to all traffic on the stable color, last 24h.')
    .datasource(datasource)
    .unit('s')
    .height(6)
    .span(6)
    .graphMode(common.BigValueGraphMode.None)
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']))
    .withTarget(query(rollbackSecondsP99({ window: '24h' }), 'p99', 'A'));
}

function releasePhasePanel(): statetimeline.PanelBuilder {
  return new statetimeline.PanelBuilder()
    .title(PANEL_TITLES.releasePhase)
    .description('Phase of the release in progress, over time.')
    .datasource(datasource)
    .height(6)
    .span(24)
    .showValue(common.VisibilityMode.Auto)
    .legend(legend())
    .withTarget(query(releasePhase(), '{{release_id}} {{phase}}', 'A'));
}

function releaseAnnotations(): AnnotationQueryBuilder[] {
  return [
    new AnnotationQueryBuilder()
      .name('Releases finished')
      .datasource(datasource)
      .enable(true)
      .iconColor('purple')
      .expr(`${releasesFinished({ window: '1m' })} > 0`)
      .step('1m')
      .titleFormat('Release {{outcome}}')
      .textFormat('{{strategy}} release {{outcome}}')
      .tagKeys('strategy,outcome'),
    new AnnotationQueryBuilder()
      .name('Release phases')
      .datasource(datasource)
      .enable(true)
      .iconColor('blue')
      .expr(releasePhase())
      .step('15s')
      .titleFormat('{{phase}}')
      .textFormat('release {{release_id}} ({{strategy}}): {{phase}}')
      .tagKeys('release_id,phase'),
  ];
}

export function buildDashboard(): Dashboard {
  return new DashboardBuilder('bgserve')
    .uid(DASHBOARD_UID)
    .description('Blue and green instances side by side, the router, and releases in progress.')
    .tags(['bgserve', 'generated'])
    .editable()
    .tooltip(DashboardCursorSync.Crosshair)
    .refresh('10s')
    .time({ from: 'now-30m', to: 'now' })
    .timezone('browser')
    .annotations(releaseAnnotations())
    .withRow(new RowBuilder('Traffic'))
    .withPanel(trafficPanel())
    .withPanel(weightsPanel())
    .withRow(new RowBuilder('Errors and latency'))
    .withPanel(errorRatioPanel())
    .withPanel(latencyPanel())
    .withRow(new RowBuilder('Predictions'))
    .withPanel(predictionDistributionPanel())
    .withPanel(modelVersionsPanel())
    .withPanel(predictionHeatmap(COLORS[0]))
    .withPanel(predictionHeatmap(COLORS[1]))
    .withRow(new RowBuilder('Releases and targets'))
    .withPanel(releasePhasePanel())
    .withPanel(targetsUpPanel())
    .withPanel(rollbackTimePanel())
    .build();
}

export function renderDashboardJson(): string {
  return `${JSON.stringify(buildDashboard(), null, 2)}\n`;
}
