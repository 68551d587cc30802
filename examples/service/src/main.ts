/**
 * Runs the example job once:
 *   ISSUER=http://localhost:3000 CLIENT_ID=... CLIENT_SECRET=... API_URL=http://localhost:4000 \
 *   npx tsx examples/service/src/main.ts
 */
import { TokenSource } from './client.js';

const required = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`set ${name}`);
  return value;
};

const source = new TokenSource({
  issuer: process.env.ISSUER || 'http://localhost:3000',
  clientId: required('CLIENT_ID'),
  clientSecret: required('CLIENT_SECRET'),
  apiUrl: process.env.API_URL || 'http://localhost:4000',
  resource: process.env.API_RESOURCE || undefined,
  scope: process.env.SCOPE || undefined,
});

const response = await source.callApi('/messages');
console.log(response.status, JSON.stringify(await response.json(), null, 2));
if (!response.ok) process.exitCode = 1;
