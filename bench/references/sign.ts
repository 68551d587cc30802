/** Signing ceiling: bare Koa signing one RS256 JWT (2048-bit key, jose) per request. Env: PORT, WORKERS. */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import Koa from 'koa';
import { SignJWT } from 'jose';
import { envNumber, runCluster } from './cluster.js';

runCluster(envNumber('WORKERS', 1), async () => {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const app = new Koa();
  app.use(async (ctx) => {
    const token = await new SignJWT({ client_id: 'reference', scope: 'read write' })
      .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: 'reference' })
      .setIssuer('https://id.bench.test')
      .setAudience('https://api.bench.test')
      .setSubject('reference')
      .setIssuedAt()
      .setExpirationTime('10m')
      .setJti(randomUUID())
      .sign(privateKey);
    ctx.body = { access_token: token, token_type: 'Bearer', expires_in: 600 };
  });
  app.listen(envNumber('PORT', 3100), '127.0.0.1');
});
