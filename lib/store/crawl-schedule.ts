/**
 * When the background crawl runs, as memcached's LRU maintainer schedules its crawler
 * (items.c, lru_maintainer_crawler_check): a pass over the index that freed less than 1% of the
 * items it looked at puts the next pass 60 s further off, up to an hour; one that paid brings it
 * 60 s nearer. An idle or long-lived cache is then walked once an hour instead of 2,000 items
 * every 100 ms per shard for ever; expired items in the meantime are still reclaimed when they
 * are fetched and before anything is evicted.
 */
import type { CrawlStep } from './crawler.js';

export const CRAWL_WAIT_STEP_S = 60;
export const CRAWL_WAIT_MAX_S = 3600;

export class CrawlSchedule {
  private waitS = 0;
  private nextPassAt = 0;
  private checked = 0;
  private reclaimed = 0;

  /** Whether a crawl step is due at `now` (seconds). */
  due(now: number): boolean {
    return now >= this.nextPassAt;
  }

  /** Account for a step taken at `now`; at the end of a pass, set when the next one starts. */
  stepped(now: number, step: CrawlStep): void {
    this.checked += step.checked;
    this.reclaimed += step.reclaimed;
    if (!step.passEnded) return;
    const paid = this.reclaimed > this.checked / 100;
    this.waitS = paid ? Math.max(0, this.waitS - CRAWL_WAIT_STEP_S) : Math.min(CRAWL_WAIT_MAX_S, this.waitS + CRAWL_WAIT_STEP_S);
    this.nextPassAt = now + this.waitS;
    this.checked = 0;
    this.reclaimed = 0;
  }

  /** Seconds between the end of the last pass and the start of the next. */
  get wait(): number {
    return this.waitS;
  }
}
