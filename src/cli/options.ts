/** Option parsers shared by commands; a bad value is a usage error (exit 2) with the reason. */
import { type Command, InvalidArgumentError } from 'commander';
import { parseDuration } from '../config.js';

export function durationOption(value: string): number {
  const seconds = parseDuration(value);
  if (seconds === undefined) throw new InvalidArgumentError(`"${value}" is not a duration: use seconds, or a number with s, m, h or d`);
  return seconds;
}

/**
 * Generated ids (client, session and grant ids) are base64url, so one in 64 starts with '-'; commander would take
 * it for an unknown option. A command given this takes such a word as its argument. A mistyped option still
 * fails: as an argument too many (exit 2), or as an id nothing has (exit 1).
 */
export function acceptsGeneratedIds(command: Command): Command {
  return command.allowUnknownOption();
}
