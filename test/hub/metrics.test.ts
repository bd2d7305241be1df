import { describe, expect, it } from 'vitest';
import { relabel } from '../../src/hub/metrics.js';

/** The agents' metrics as the hub re-exposes them: one family per name, every sample labelled with its agent. */
describe('relabel', () => {
  const a = [
    '# HELP tapwire_flows_total Flow records built',
    '# TYPE tapwire_flows_total counter',
    'tapwire_flows_total{protocol="http"} 3',
    '# HELP tapwire_store_flows Flows held',
    '# TYPE tapwire_store_flows gauge',
    'tapwire_store_flows 7',
    '# HELP tapwire_lag_seconds Lag',
    '# TYPE tapwire_lag_seconds histogram',
    'tapwire_lag_seconds_bucket{le="0.1"} 1',
    'tapwire_lag_seconds_bucket{le="+Inf"} 2',
    'tapwire_lag_seconds_sum 0.3',
    'tapwire_lag_seconds_count 2',
    '',
  ].join('\n');
  const b = a.replace('{protocol="http"} 3', '{protocol="http"} 5').replace('tapwire_store_flows 7', 'tapwire_store_flows 9');
  const out = relabel([{ agent: 'http://10.0.0.1:8899', text: a }, { agent: 'http://10.0.0.2:8899', text: b }]);

  it('keeps each family together under one HELP and TYPE, with both agents\' samples', () => {
    expect(out.split('\n').slice(0, 4)).toEqual([
      '# HELP tapwire_flows_total Flow records built',
      '# TYPE tapwire_flows_total counter',
      'tapwire_flows_total{agent="http://10.0.0.1:8899",protocol="http"} 3',
      'tapwire_flows_total{agent="http://10.0.0.2:8899",protocol="http"} 5',
    ]);
    expect(out.match(/^# TYPE /gm)).toHaveLength(3);
  });

  it('labels samples that had no labels, and keeps a histogram\'s series with their family', () => {
    expect(out).toContain('tapwire_store_flows{agent="http://10.0.0.2:8899"} 9');
    const histogram = out.slice(out.indexOf('# TYPE tapwire_lag_seconds histogram'));
    expect(histogram.split('\n').filter((l) => l.startsWith('tapwire_lag_seconds'))).toHaveLength(8);
    expect(histogram).toContain('tapwire_lag_seconds_count{agent="http://10.0.0.1:8899"} 2');
  });
});
