/**
 * The OpenAPI 3.1 document of the admin API, served without authentication at /admin/v1/openapi.json. Request
 * bodies and query parameters come from the zod schemas the handlers validate with (./schemas.ts), response
 * bodies from those of ./responses.ts; only the table of paths below is written by hand.
 */
import { z } from 'zod';
import { ADMIN_API_PATH, ADMIN_READ_SCOPE, ADMIN_SCOPE, adminApiIndicator } from './auth.js';
import { responseSchemas } from './responses.js';
import { bodySchemas, querySchemas } from './schemas.js';

type BodyName = keyof typeof bodySchemas;
type QueryName = keyof typeof querySchemas;
type ResponseName = keyof typeof responseSchemas;

/** An operation answers either 204 with no body, or 200 (201 when given) with a documented one. */
type Operation = {
  summary: string;
  body?: BodyName;
  query?: QueryName;
  /** Path parameters, in order. */
  params?: string[];
  /** Refusals particular to this operation, by status, beyond those every operation may answer. */
  errors?: Record<number, string>;
} & ({ status: 204 } | { status?: 200 | 201; response: ResponseName });

const PATHS: Record<string, Partial<Record<'get' | 'post' | 'patch' | 'delete', Operation>>> = {
  '/clients': {
    get: { summary: 'List clients', response: 'ClientList' },
    post: { summary: 'Register a client; its secret, if it gets one, is in this response only', body: 'NewClient', status: 201, response: 'ClientWithSecret' },
  },
  '/clients/{clientId}/subjects/{sub}': {
    get: {
      summary: 'The user a client knows by `sub`: its pairwise subject (each account’s made again to find it), or the user’s id for any other client',
      params: ['clientId', 'sub'],
      response: 'User',
      errors: { 404: 'No such client, or no user is that sub to it' },
    },
  },
  '/clients/{clientId}': {
    get: { summary: 'Show a client (never its secret)', params: ['clientId'], response: 'Client' },
    patch: {
      summary:
        'Change name, redirect URIs (a pairwise client’s must still fit its sector), scope, roles, first-party status, back-channel logout URI (null removes it) or the DPoP, PAR and two-step policies',
      body: 'ClientChanges',
      params: ['clientId'],
      response: 'Client',
    },
    delete: { summary: 'Delete a client with its secrets, grants and refresh tokens', params: ['clientId'], status: 204 },
  },
  '/clients/{clientId}/secret': {
    post: { summary: 'Issue a new secret (shown once); the old ones keep working until the time given', body: 'RotateSecret', params: ['clientId'], response: 'RotatedSecret' },
  },
  '/clients/{clientId}/disable': { post: { summary: 'Refuse every request from the client', params: ['clientId'], response: 'Client' } },
  '/clients/{clientId}/enable': { post: { summary: 'Re-enable a disabled client', params: ['clientId'], response: 'Client' } },
  '/clients/{clientId}/lock': {
    get: { summary: 'Whether failed authentications have locked the client out, and until when (`lockedUntil`)', params: ['clientId'], response: 'LockState' },
    delete: { summary: 'Lift the client’s authentication lock and forget the failures (`wasLockedUntil`)', params: ['clientId'], response: 'LiftedLock' },
  },
  '/client-registration-tokens': {
    get: { summary: 'List the initial access tokens that can still register an app (dynamic client registration)', response: 'RegistrationTokenList' },
    post: {
      summary: 'Make an initial access token, with which apps register themselves at <issuer>/reg when CLIENT_REGISTRATION is token (or open, for a service); the token is shown once',
      body: 'NewRegistrationToken',
      status: 201,
      response: 'CreatedRegistrationToken',
    },
  },
  '/client-registration-tokens/{tokenId}': {
    delete: { summary: 'Revoke an initial access token: it registers no more apps (those it registered stay)', params: ['tokenId'], status: 204, errors: { 404: 'No such token' } },
  },
  '/users': {
    get: { summary: 'Search users (paged by `cursor`)', query: 'listUsers', response: 'UserPage' },
    post: { summary: 'Create a user', body: 'NewUser', status: 201, response: 'User' },
  },
  '/users/{userId}': {
    get: { summary: 'Show a user', params: ['userId'], response: 'User' },
    patch: {
      summary:
        'Change email (a new address is unconfirmed unless emailVerified is given), name, roles, emailVerified, totpRequired (true: the user sets up two-step verification at the next sign-in; false does not remove an app set up), passwordChangeRequired (true: the user chooses a new password at the next sign-in) or attributes (merged; null removes one)',
      body: 'UserChanges',
      params: ['userId'],
      response: 'User',
      errors: { 409: 'Another user has that email' },
    },
    delete: {
      summary:
        'Delete the user (the right to erasure) with their passkeys, consents, refresh tokens and sessions; clients are sent logout tokens. Audit events stay until AUDIT_RETENTION',
      params: ['userId'],
      status: 204,
    },
  },
  '/users/{userId}/password': {
    post: { summary: 'Set the password; ends every session and token of the user (clients are sent logout tokens). 400 when the password policy refuses it, or it repeats one of the user\'s latest (PASSWORD_HISTORY, PASSWORD_HISTORY_DAYS)', body: 'SetPassword', params: ['userId'], response: 'User' },
    delete: {
      summary:
        'Remove the password (Keycloak\'s credential deletion): the user signs in with passkeys or another identity provider only, or sets a password again through "Forgot your password?"; reset links already mailed stop working. Sessions stay: see revoke-sessions',
      params: ['userId'],
      response: 'User',
    },
  },
  '/users/{userId}/disable': { post: { summary: 'Disable the user and end every session and token (clients are sent logout tokens)', params: ['userId'], response: 'User' } },
  '/users/{userId}/enable': { post: { summary: 'Re-enable a disabled user', params: ['userId'], response: 'User' } },
  '/users/{userId}/revoke-sessions': { post: { summary: 'Log the user out everywhere; clients with a back-channel logout URI are sent logout tokens', params: ['userId'], response: 'User' } },
  '/users/{userId}/totp': {
    delete: {
      summary:
        'Reset two-step verification (a lost phone): the authenticator app and recovery codes stop working; the user sets up a new app at the next sign-in when it is required of them (totpRequired or a role in TOTP_REQUIRED_ROLES). Sessions stay: see revoke-sessions',
      params: ['userId'],
      response: 'User',
    },
  },
  '/users/{userId}/password-reset-mail': {
    post: {
      summary: 'Send the user a link to choose a new password, as "Forgot your password?" does (single-use, for EMAIL_LINK_TTL)',
      params: ['userId'],
      response: 'SentLink',
      errors: { 409: 'The user is disabled, or this server sends no mail (SMTP_URL is unset)', 502: 'The mail relay refused the mail or could not be reached' },
    },
  },
  '/users/{userId}/email-confirmation-mail': {
    post: {
      summary: 'Send the user a link that confirms their address (sets emailVerified once its button is pressed)',
      params: ['userId'],
      response: 'SentLink',
      errors: { 409: 'The address is confirmed already, the user is disabled, or this server sends no mail', 502: 'The mail relay refused the mail or could not be reached' },
    },
  },
  '/users/{userId}/lock': {
    get: { summary: 'Whether wrong passwords have locked the user out, and until when (`lockedUntil`, null when not locked)', params: ['userId'], response: 'LockState' },
    delete: { summary: 'Lift the user’s sign-in lock and forget the failures (`wasLockedUntil`, null when there was none)', params: ['userId'], response: 'LiftedLock' },
  },
  '/users/{userId}/sessions': { get: { summary: 'List the user’s login sessions, newest first', params: ['userId'], response: 'SessionList' } },
  '/users/{userId}/sessions/{uid}': {
    delete: { summary: 'End one session: that browser must sign in again, and its clients are sent logout tokens', params: ['userId', 'uid'], status: 204 },
  },
  '/users/{userId}/passkeys': { get: { summary: 'List the user’s passkeys, oldest first', params: ['userId'], response: 'PasskeyList' } },
  '/users/{userId}/passkeys/{passkeyId}': {
    delete: {
      summary: 'Remove one passkey: it signs the user in no more (their sessions stay: see revoke-sessions)',
      params: ['userId', 'passkeyId'],
      status: 204,
      errors: { 404: 'The user has no such passkey' },
    },
  },
  '/users/{userId}/identities': {
    get: { summary: 'List the accounts at other identity providers linked to the user, oldest first', params: ['userId'], response: 'LinkedIdentityList' },
  },
  '/users/{userId}/identities/{provider}': {
    delete: {
      summary: 'Unlink the user’s account at an identity provider: signing in there no longer signs in to this user (their sessions stay)',
      params: ['userId', 'provider'],
      status: 204,
      errors: { 404: 'The user has no account of that provider linked' },
    },
  },
  '/users/{userId}/grants': { get: { summary: 'List the user’s grants (no token values)', params: ['userId'], response: 'GrantList' } },
  '/users/{userId}/grants/{grantId}': {
    delete: { summary: 'Revoke one grant and the refresh tokens issued under it', params: ['userId', 'grantId'], status: 204 },
  },
  '/groups': {
    get: { summary: 'List groups', response: 'GroupList' },
    post: { summary: 'Create a group; its roles are in every member’s tokens', body: 'NewGroup', status: 201, response: 'Group' },
  },
  '/groups/{name}': {
    get: { summary: 'Show a group (the name URL-encoded)', params: ['name'], response: 'Group' },
    patch: { summary: 'Change its description or roles; members hold the new roles in their next tokens', body: 'GroupChanges', params: ['name'], response: 'Group' },
    delete: { summary: 'Delete a group and take it off its members (they keep their own roles)', params: ['name'], status: 204 },
  },
  '/groups/{name}/members': {
    get: { summary: 'The group’s members, by id, a page at a time', params: ['name'], query: 'groupMembers', response: 'GroupMemberPage' },
  },
  '/apis': {
    get: { summary: 'List APIs (resource servers)', response: 'ApiList' },
    post: { summary: 'Register an API', body: 'NewApi', status: 201, response: 'Api' },
  },
  '/apis/{indicator}': {
    patch: { summary: 'Change name, scopes, token lifetime or format, or the default (the indicator URL-encoded)', body: 'ApiChanges', params: ['indicator'], response: 'Api' },
    delete: { summary: 'Delete an API (the indicator URL-encoded)', params: ['indicator'], status: 204 },
  },
  '/ips/{address}/locks': {
    get: { summary: 'An IP address’s locks: by wrong passwords (`signIn`) and by failed client authentication (`clientAuthentication`), each the time it ends or null', params: ['address'], response: 'IpLocks' },
    delete: { summary: 'Lift both of the address’s locks (`wasLockedUntil` says which there were)', params: ['address'], response: 'LiftedIpLocks' },
  },
  '/webhook': {
    get: {
      summary: 'Where delivery to WEBHOOK_URL stands: the last event delivered, how many wait, and the failures of the event the queue is held at',
      response: 'WebhookState',
      errors: { 404: 'WEBHOOK_URL is not set, or no server has sent to it yet' },
    },
  },
  '/webhook/retry': {
    post: { summary: 'Try the held event again at the next run (within a second), not after its wait', response: 'WebhookState', errors: { 404: 'WEBHOOK_URL is not set, or no server has sent to it yet' } },
  },
  '/webhook/skip': {
    post: {
      summary: 'Skip the event the queue is held at (one the endpoint will never take); audited `webhook_event_skipped`',
      response: 'SkippedWebhookEvent',
      errors: { 404: 'WEBHOOK_URL is not set, or no server has sent to it yet' },
    },
  },
  '/audit': { get: { summary: 'Query audit events, newest first (paged by `before`)', query: 'audit', response: 'AuditPage' } },
};

const JSON_SCHEMA_OPTIONS = { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' } as const;

const jsonSchema = (schema: z.ZodType) => {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, JSON_SCHEMA_OPTIONS);
  return rest;
};

/**
 * The response schemas as components. They are converted together so that one nested in another (a Client in a
 * ClientList) is a $ref to its own component, not a copy of it.
 */
function responseComponents() {
  const named = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(responseSchemas)) named.add(schema, { id });
  const { schemas } = z.toJSONSchema(named, { ...JSON_SCHEMA_OPTIONS, uri: (id) => `#/components/schemas/${id}` });
  // Each comes as a document of its own; as a component it takes the OpenAPI document's dialect and base.
  return Object.fromEntries(Object.entries(schemas).map(([id, { $schema: _dialect, $id: _base, ...schema }]) => [id, schema]));
}

/** 204 with no body, or the status and the body's component. */
function successResponse(op: Operation) {
  if (op.status === 204) return { 204: { description: 'Done' } };
  const status = op.status ?? 200;
  const content = { 'application/json': { schema: { $ref: `#/components/schemas/${op.response}` } } };
  return { [status]: { description: status === 201 ? 'Created' : 'OK', content } };
}

const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } });

function queryParameters(name: QueryName) {
  const schema = jsonSchema(querySchemas[name]) as { properties?: Record<string, Record<string, unknown>> };
  return Object.entries(schema.properties ?? {}).map(([param, property]) => {
    const { description, ...rest } = property;
    return { name: param, in: 'query', required: false, ...(description ? { description } : {}), schema: rest };
  });
}

function operation(method: string, op: Operation) {
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
      ...successResponse(op),
      400: errorResponse('The request was invalid: error_description says what to change'),
      401: errorResponse('No valid admin access token (see WWW-Authenticate)'),
      403: errorResponse('The token lacks the scope needed (see WWW-Authenticate)'),
      ...(op.params ? { 404: errorResponse('No such resource') } : {}),
      ...(method === 'post' && op.status === 201 ? { 409: errorResponse('It already exists') } : {}),
      ...(op.body ? { 413: errorResponse('The body is over 64 kB'), 415: errorResponse('The body is not JSON') } : {}),
      ...Object.fromEntries(Object.entries(op.errors ?? {}).map(([status, description]) => [status, errorResponse(description)])),
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
        ...responseComponents(),
        Error: {
          type: 'object',
          properties: { error: { type: 'string' }, error_description: { type: 'string' } },
          required: ['error'],
        },
      },
    },
  };
}
