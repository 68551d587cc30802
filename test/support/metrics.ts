/** Reading a server's /metrics as a test does: one series at a time, and how much it grew between two scrapes. */
import type { TestServer } from './server.js';

/** The value of one series in a /metrics scrape ("name{labels}"), 0 when it has not been counted yet. */
export function seriesValue(scrape: string, series: string): number {
  const line = scrape.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/** Scrapes /metrics now; `since` then tells how much each series grew from this scrape to a later one. */
export async function scrapeMetrics(target: TestServer) {
  const response = await fetch(`${target.url}/metrics`);
  if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`);
  const before = await response.text();
  return {
    before: (series: string) => seriesValue(before, series),
    async since(): Promise<(series: string) => number> {
      const after = await (await fetch(`${target.url}/metrics`)).text();
      return (series) => seriesValue(after, series) - seriesValue(before, series);
    },
  };
}
