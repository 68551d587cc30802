/**
 * The `authz` command line (`npx authz …`, `npm run authz -- …`); the commands are in ./cli/.
 */
import { runCli } from './cli/program.js';

const code = await runCli(process.argv.slice(2));
// Output to a pipe that the reader has not taken yet is written in the background, and process.exit would cut it
// off (a `users list --json` of a thousand users is 300 KB): exit once both streams have flushed.
const flushed = (stream: NodeJS.WriteStream) => new Promise<void>((resolve) => stream.write('', () => resolve()));
await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
process.exit(code);
