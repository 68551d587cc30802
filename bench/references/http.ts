/** HTTP ceiling: bare Koa answering a small JSON body. Env: PORT, WORKERS. */
import Koa from 'koa';
import { envNumber, runCluster } from './cluster.js';

runCluster(envNumber('WORKERS', 1), async () => {
  const app = new Koa();
  app.use((ctx) => {
    ctx.body = { ok: true, service: 'reference' };
  });
  app.listen(envNumber('PORT', 3100), '127.0.0.1');
});
