/**
 * The OpenAPI 3.1 document of the admin API, served without authentication at /admin/v1/openapi.json. Request
 * bodies and query parameters come from the zod schemas the handlers validate with (./schemas.ts); only the table
 * of paths below is written by hand.
 */
import { z } from 'zod';
import { ADMIN_API_PATH, ADMIN_READ_SCOPE, ADMIN_SCOPE, adminApiIndicator } from './auth.js';
import { bodySchemas, querySchemas } from './schemas.js';

type BodyName = keyof typeof bodySchemas;
type QueryName = keyof typeof querySchemas;

interface Operation {
  summary: string;
  body?: BodyName;
  query?: QueryName;
  /** Path parameters, in order. */
  params?: string[];
  /** The success status (200 unless given). */
  status?: number;
}

const PATHS: Record<string, Partial<Record<'get' | 'post' | 'patch' | 'delete', Operation>>> = {
  '/clients': {
    get: { summary: 'List clients' },
    post: { summary: 'Register a client; its secret, if it gets one, is in this response only', body: 'NewClient', status: 201 },
  },
  '/clients/{clientId}': {
    get: { summary: 'Show a client (never its secret)', params: ['clientId'] },
    patch: {
      summary: 'Change name, redirect URIs, scope, roles, first-party status, back-channel logout URI (null removes it) or the DPoP and PAR policies',
      body: 'ClientChanges',
      params: ['clientId'],
    },
    delete: { summary: 'Delete a client with its secrets, grants and refresh tokens', params: ['clientId'], status: 204 },
  },
  '/clients/{clientId}/secret': {
    post: { summary: 'Issue a new secret (shown once); the old ones keep working until the time given', body: 'RotateSecret', params: ['clientId'] },
  },
  '/clients/{clientId}/disable': { post: { summary: 'Refuse every request from the client', params: ['clientId'] } },
  '/clients/{clientId}/enable': { post: { summary: 'Re-enable a disabled client', params: ['clientId'] } },
  '/clients/{clientId}/lock': {
    get: { summary: 'Whether failed authentications have locked the client out, and until when (`lockedUntil`)', params: ['clientId'] },
    delete: { summary: 'Lift the client’s authentication lock and forget the failures (`wasLockedUntil`)', params: ['clientId'] },
  },
  '/users': {
    get: { summary: 'Search users (paged by `cursor`)', query: 'listUsers' },
    post: { summary: 'Create a user', body: 'NewUser', status: 201 },
  },
  '/users/{userId}': {
    get: { summary: 'Show a user', params: ['userId'] },
    patch: { summary: 'Change name, roles or emailVerified', body: 'UserChanges', params: ['userId'] },
  },
  '/users/{userId}/password': {
    post: { summary: 'Set the password; ends every session and token of the user (clients are sent logout tokens)', body: 'SetPassword', params: ['userId'] },
  },
  '/users/{userId}/disable': { post: { summary: 'Disable the user and end every session and token (clients are sent logout tokens)', params: ['userId'] } },
  '/users/{userId}/enable': { post: { summary: 'Re-enable a disabled user', params: ['userId'] } },
  '/users/{userId}/revoke-sessions': { post: { summary: 'Log the user out everywhere; clients with a back-channel logout URI are sent logout tokens', params: ['userId'] } },
  '/users/{userId}/lock': {
    get: { summary: 'Whether wrong passwords have locked the user out, and until when (`lockedUntil`, null when not locked)', params: ['userId'] },
    delete: { summary: 'Lift the user’s sign-in lock and forget the failures (`wasLockedUntil`, null when there was none)', params: ['userId'] },
  },
  '/users/{userId}/sessions': { get: { summary: 'List the user’s login sessions, newest first', params: ['userId'] } },
  '/users/{userId}/sessions/{uid}': {
    delete: { summary: 'End one session: that browser must sign in again, and its clients are sent logout tokens', params: ['userId', 'uid'], status: 204 },
  },
  '/users/{userId}/grants': { get: { summary: 'List the user’s grants (no token values)', params: ['userId'] } },
  '/users/{userId}/grants/{grantId}': {
    delete: { summary: 'Revoke one grant and the refresh tokens issued under it', params: ['userId', 'grantId'], status: 204 },
  },
  '/apis': {
    get: { summary: 'List APIs (resource servers)' },
    post: { summary: 'Register an API', body: 'NewApi', status: 201 },
  },
  '/apis/{indicator}': {
    patch: { summary: 'Change name, scopes, token lifetime or format, or the default (the indicator URL-encoded)', body: 'ApiChanges', params: ['indicator'] },
    delete: { summary: 'Delete an API (the indicator URL-encoded)', params: ['indicator'], status: 204 },
  },
  '/ips/{address}/locks': {
    get: { summary: 'An IP address’s locks: by wrong passwords (`signIn`) and by failed client authentication (`clientAuthentication`), each the time it ends or null', params: ['address'] },
    delete: { summary: 'Lift both of the address’s locks (`wasLockedUntil` says which there were)', params: ['address'] },
  },
  '/audit': { get: { summary: 'Query audit events, newest first (paged by `before`)', query: 'audit' } },
};

const jsonSchema = (schema: z.ZodType) => {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' });
  return rest;
};

const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } });

function queryParameters(name: QueryName) {
  const schema = jsonSchema(querySchemas[name]) as { properties?: Record<string, Record<string, unknown>> };
  return Object.entries(schema.properties ?? {}).map(([param, property]) => {
    const { description, ...rest } = property;
    return { name: param, in: 'query', required: false, ...(description ? { description } : {}), schema: rest };
  });
}

function operation(method: string, op: Operation) {
  const success = op.status ?? 200;
  return {
    summary: op.summary,
    security: [{ adminToken: [method === 'get' ? ADMIN_READ_SCOPE : ADMIN_SCOPE] }],
    parameters: [
      ...(op.params ?? []).map((param) => ({ name: param, in: 'path', required: true, schema: { type: 'string' } })),
      ...(op.query ? queryParameters(op.query) : []),
    ],
    ...(op.body
      ? { requestBody: { required: op.body !== 'RotateSecret', content: { 'application/json': { schema: { $ref: `#/components/schemas/${op.body}` } } } } }
      : {}),
    responses: {
      [success]: success === 204 ? { description: 'Done' } : { description: 'OK', content: { 'application/json': { schema: { type: 'object' } } } },
      400: errorResponse('The request was invalid: error_description says what to change'),
      401: errorResponse('No valid admin access token (see WWW-Authenticate)'),
      403: errorResponse('The token lacks the scope needed (see WWW-Authenticate)'),
      ...(op.params ? { 404: errorResponse('No such resource') } : {}),
      ...(method === 'post' && op.status === 201 ? { 409: errorResponse('It already exists') } : {}),
      ...(op.body ? { 413: errorResponse('The body is over 64 kB'), 415: errorResponse('The body is not JSON') } : {}),
      503: errorResponse('A store is unreachable; try again later'),
    },
  };
}

export function openApiDocument(issuer: string) {
  const paths = Object.fromEntries(
    Object.entries(PATHS).map(([path, methods]) => [
      path,
      Object.fromEntries(Object.entries(methods).map(([method, op]) => [method, operation(method, op)])),
    ]),
  );
  return {
    openapi: '3.1.0',
    info: {
      title: 'authz admin API',
      version: '1',
      description:
        `Manage clients, users, APIs, grants and the audit log. Authenticate with an access token from this server: client credentials ` +
        `of a service client registered with the scope "${ADMIN_SCOPE}" (or "${ADMIN_READ_SCOPE}" for reads), requesting resource=${adminApiIndicator(issuer)}.`,
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    servers: [{ url: `${issuer}${ADMIN_API_PATH}` }],
    paths,
    components: {
      securitySchemes: {
        adminToken: {
          type: 'oauth2',
          flows: {
            clientCredentials: {
              tokenUrl: `${issuer}/token`,
              scopes: { [ADMIN_SCOPE]: 'read and change everything', [ADMIN_READ_SCOPE]: 'read only' },
            },
          },
        },
      },
      schemas: {
        ...Object.fromEntries(Object.entries(bodySchemas).map(([name, schema]) => [name, jsonSchema(schema)])),
        Error: {
          type: 'object',
          properties: { error: { type: 'string' }, error_description: { type: 'string' } },
          required: ['error'],
        },
      },
    },
  };
}
