/** Our pages' form posts: only urlencoded, small, and a body that cannot be read is a 400, not a crash. */
import { bodyParser } from '@koa/bodyparser';

export const readForm = bodyParser({
  enableTypes: ['form'],
  formLimit: '16kb',
  onError: (_error, ctx) => ctx.throw(400, 'the form could not be read'),
});
