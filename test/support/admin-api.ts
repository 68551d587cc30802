/**
 * The admin API as an operator's script calls it: a service client with the `admin` scope gets a token for the
 * admin API by client credentials (openid-client), then sends JSON with it.
 */
import * as oidc from 'openid-client';
import { adminApiIndicator } from '../../src/admin/index.js';
import { discover } from './relying-party.js';
import type { TestServer } from './server.js';

export interface AdminApi {
  // biome-ignore lint/suspicious/noExplicitAny: JSON bodies are checked with toMatchObject
  call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  /** The access token it calls with. */
  token: string;
}

export async function adminApiOf(server: TestServer, scope = 'admin'): Promise<AdminApi> {
  const { client, secret } = await server.services.clients.create({ type: 'service', name: `ops ${scope}`, scope });
  const ops = await discover(server, client.clientId, secret as string);
  const token = (await oidc.clientCredentialsGrant(ops, { resource: adminApiIndicator(server.issuer) })).access_token;
  return {
    token,
    async call(method, path, body) {
      const response = await fetch(`${server.url}/admin/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      return { status: response.status, body: text ? JSON.parse(text) : undefined };
    },
  };
}
