/**
 * The pages' colours meet WCAG 2.1 contrast, computed from the custom properties in views/assets/style.css, in
 * the light scheme and the dark one: text 4.5:1 (1.4.3), a control's boundary and the focus ring 3:1 (1.4.11).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';

const css = await readFile(path.join(import.meta.dirname, '../../views/assets/style.css'), 'utf8');

function propertiesIn(block: string): Record<string, string> {
  return Object.fromEntries([...block.matchAll(/--([\w-]+):\s*(#[0-9a-f]{3,6})/gi)].map(([, name, value]) => [name, value]));
}

const light = propertiesIn(css.slice(css.indexOf(':root'), css.indexOf('}')));
const darkBlock = css.slice(css.indexOf('@media (prefers-color-scheme: dark)'));
const dark = { ...light, ...propertiesIn(darkBlock.slice(0, darkBlock.indexOf('}'))) };

function luminance(hex: string): number {
  const digits = hex.length === 4 ? [...hex.slice(1)].map((digit) => digit + digit).join('') : hex.slice(1);
  const weights = [0.2126, 0.7152, 0.0722];
  return weights.reduce((sum, weight, index) => {
    const channel = Number.parseInt(digits.slice(index * 2, index * 2 + 2), 16) / 255;
    return sum + weight * (channel <= 0.03928 ? channel / 12.92 : ((channel + 0.055) / 1.055) ** 2.4);
  }, 0);
}

function contrast(a: string | undefined, b: string | undefined): number {
  if (!a || !b) throw new Error('a colour is not defined in style.css');
  const [one, other] = [luminance(a), luminance(b)];
  return (Math.max(one, other) + 0.05) / (Math.min(one, other) + 0.05);
}

describe.each([
  ['light', light],
  ['dark', dark],
])('the %s scheme', (_scheme, colours) => {
  test('defines every colour the checks need', () => {
    for (const name of ['accent', 'accent-text', 'muted', 'danger', 'surface', 'page', 'field-border']) expect(colours[name]).toMatch(/^#/);
  });
  test('the primary button text is at least 4.5:1 on its background', () => {
    expect(contrast(colours['accent-text'], colours.accent)).toBeGreaterThanOrEqual(4.5);
  });
  test('muted and error text are at least 4.5:1 on the card', () => {
    expect(contrast(colours.muted, colours.surface)).toBeGreaterThanOrEqual(4.5);
    expect(contrast(colours.danger, colours.surface)).toBeGreaterThanOrEqual(4.5);
  });
  test('a text field edge and the focus ring are at least 3:1 on the card', () => {
    expect(contrast(colours['field-border'], colours.surface)).toBeGreaterThanOrEqual(3);
    expect(contrast(colours.accent, colours.surface)).toBeGreaterThanOrEqual(3);
  });
});
