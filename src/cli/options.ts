/** Option parsers shared by commands; a bad value is a usage error (exit 2) with the reason. */
import { InvalidArgumentError } from 'commander';
import { parseDuration } from '../config.js';

export function durationOption(value: string): number {
  const seconds = parseDuration(value);
  if (seconds === undefined) throw new InvalidArgumentError(`"${value}" is not a duration: use seconds, or a number with s, m, h or d`);
  return seconds;
}
