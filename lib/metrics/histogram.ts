/**
 * A histogram for hot paths: each label combination is a child created up front, and observing
 * is a bucket search plus three additions (prom-client's Histogram hashes its labels on every
 * observation, which costs more than a cache lookup). It plugs into a prom-client Registry.
 */
import type { Metric, Registry } from 'prom-client';

export class HistogramChild {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Record<string, string>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    if (i < bounds.length) this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

interface Sample {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

export class FastHistogram {
  private readonly children: HistogramChild[] = [];

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
    registry: Registry,
  ) {
    // the registry only calls get(); it types its entries as its own metric classes
    registry.registerMetric(this as unknown as Metric);
  }

  child(labels: Record<string, string>): HistogramChild {
    const child = new HistogramChild(labels, this.bounds);
    this.children.push(child);
    return child;
  }

  /** prom-client's collection hook: cumulative buckets, sum and count per child. */
  get(): { name: string; help: string; type: 'histogram'; values: Sample[]; aggregator: 'sum' } {
    const values: Sample[] = [];
    for (const child of this.children) {
      if (child.count === 0) continue;
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += child.counts[i]!;
        values.push({ metricName: `${this.name}_bucket`, labels: { ...child.labels, le }, value: cumulative });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { ...child.labels, le: '+Inf' }, value: child.count });
      values.push({ metricName: `${this.name}_sum`, labels: child.labels, value: child.sum });
      values.push({ metricName: `${this.name}_count`, labels: child.labels, value: child.count });
    }
    return { name: this.name, help: this.help, type: 'histogram', values, aggregator: 'sum' };
  }
}
