/**
 * The command latency histogram as prom-client sees it: the serving threads count into shared
 * memory (ThreadStats.observe), and a scrape sums each (protocol, command) series over threads.
 */
import type { Metric, Registry } from 'prom-client';
import { LATENCY_BUCKETS, LATENCY_COMMANDS, PROTOCOLS, type ThreadStats } from '../threads/thread-stats.js';

interface Sample {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

export class SharedLatencyHistogram {
  /**
   * @param commands the LATENCY_COMMANDS series this metric shows
   * @param labelled false: one series without labels (a single command of the text protocol)
   */
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly threads: ThreadStats,
    registry: Registry,
    private readonly commands: ReadonlySet<string>,
    private readonly labelled = true,
  ) {
    // the registry only calls get(); it types its entries as its own metric classes
    registry.registerMetric(this as unknown as Metric);
  }

  /** prom-client's collection hook: cumulative buckets, sum and count per series that has data. */
  get(): { name: string; help: string; type: 'histogram'; values: Sample[]; aggregator: 'sum' } {
    const values: Sample[] = [];
    PROTOCOLS.forEach((protocol, p) => {
      LATENCY_COMMANDS.forEach((command, c) => {
        if (!this.commands.has(command)) return;
        const series = this.threads.latencySeries(p, c);
        if (series.count === 0) return;
        const labels: Record<string, string> = this.labelled ? { command, protocol } : {};
        let cumulative = 0;
        LATENCY_BUCKETS.forEach((le, i) => {
          cumulative += series.buckets[i]!;
          values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le }, value: cumulative });
        });
        values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: '+Inf' }, value: series.count });
        values.push({ metricName: `${this.name}_sum`, labels, value: series.sum });
        values.push({ metricName: `${this.name}_count`, labels, value: series.count });
      });
    });
    return { name: this.name, help: this.help, type: 'histogram', values, aggregator: 'sum' };
  }
}
