/**
 * PGlite is a single-process database: two processes writing one data folder corrupt it. Whoever opens it (the
 * server or the CLI) holds a lock file with its pid; a second process is refused with a clear message, and a lock
 * left by a process that died is taken over.
 */
import { rmSync } from 'node:fs';
import { readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { InputError } from '../errors.js';

const LOCK_NAME = 'authz.lock';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the lock on `dir` or throws naming the process that holds it. Resolves to the release function. */
export async function lockEmbeddedDatabase(dir: string): Promise<() => Promise<void>> {
  const file = path.join(dir, LOCK_NAME);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(file, `${process.pid}\n`, { flag: 'wx' });
      // Also on an abrupt exit; a kill -9 leaves the file, which the next process sees is stale.
      const onExit = () => rmSync(file, { force: true });
      process.once('exit', onExit);
      return async () => {
        process.off('exit', onExit);
        await unlink(file).catch(() => undefined);
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number.parseInt(await readFile(file, 'utf8').catch(() => ''), 10);
      if (Number.isInteger(holder) && holder !== process.pid && isAlive(holder)) {
        throw new InputError(
          `the embedded database in ${dir} is open in another process (pid ${holder}); PGlite allows one process at a time: ` +
            'stop that process first, or use PostgreSQL (DATABASE_URL) to run the server and the CLI side by side',
        );
      }
      await unlink(file).catch(() => undefined); // left behind by a process that died
    }
  }
  throw new InputError(`could not take the lock on the embedded database in ${dir}`);
}
