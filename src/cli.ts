/**
 * The `authz` command line (`npx authz …`, `npm run authz -- …`); the commands are in ./cli/.
 */
import { runCli } from './cli/program.js';

process.exit(await runCli(process.argv.slice(2)));
