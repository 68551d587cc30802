/** Command output: aligned plain-text tables for people, `--json` for scripts. */

export type Row = Record<string, string | number | boolean | null | undefined>;

const text = (value: Row[string]) => (value === null || value === undefined ? '-' : String(value));

export function printTable(rows: Row[], empty = 'nothing to show'): void {
  const first = rows[0];
  if (!first) {
    process.stdout.write(`${empty}\n`);
    return;
  }
  const columns = Object.keys(first);
  const widths = columns.map((column) => Math.max(column.length, ...rows.map((row) => text(row[column]).length)));
  const line = (cells: string[]) => cells.map((cell, index) => cell.padEnd(widths[index] ?? 0)).join('  ').trimEnd();
  process.stdout.write(`${[line(columns), ...rows.map((row) => line(columns.map((column) => text(row[column]))))].join('\n')}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** `a,b c` → ['a', 'b', 'c'] for list options. */
export const splitList = (value: string): string[] => value.split(/[\s,]+/).filter(Boolean);
/** A comma-separated list whose items may hold spaces (group names: `night shift`). */
export const commaList = (value: string): string[] => value.split(',').map((item) => item.trim()).filter(Boolean);

/** Repeatable options collect into an array. */
export const collect = (value: string, previous: string[] = []) => [...previous, value];

export const isoDate = (date: Date | null | undefined) => (date ? date.toISOString().replace(/\.\d{3}Z$/, 'Z') : undefined);
