/**
 * The admin API's request schemas: one per body and per query string. Handlers validate with them and
 * src/admin/openapi.ts turns them into the OpenAPI document, so the two cannot drift. Bodies that create or
 * change a user, client or API are the repositories' own schemas: the CLI and this API accept the same input.
 */
import { z } from 'zod';
import { newUserSchema, userChangesSchema } from '../accounts/users.js';
import { groupChangesSchema, newGroupSchema } from '../accounts/groups.js';
import { apiChangesSchema, newApiSchema } from '../apis/apis.js';
import { MAX_KEEP_OLD_SECONDS, clientChangesSchema, newClientSchema } from '../clients/clients.js';

export { MAX_KEEP_OLD_SECONDS } from '../clients/clients.js';

export const rotateSecretBody = z
  .strictObject({
    keepOldUntil: z.iso.datetime({ offset: true, error: 'keepOldUntil must be an ISO 8601 date-time' }).optional(),
    keepOldForSeconds: z.number().int().min(0).max(MAX_KEEP_OLD_SECONDS).optional(),
  })
  .refine((body) => body.keepOldUntil === undefined || body.keepOldForSeconds === undefined, {
    error: 'give keepOldUntil or keepOldForSeconds, not both',
  })
  .meta({ description: 'How long the current secrets keep working; default one day, at most 90 days.' });

export const setPasswordBody = z.strictObject({
  password: z.string().min(1, 'password is required').max(1024),
  temporary: z
    .boolean()
    .default(false)
    .meta({ description: 'true: the user must choose their own password at the next sign-in (Keycloak\'s "Temporary")' }),
});

const MAX_BIGINT = 2n ** 63n - 1n;

const limit = (max: number, fallback: number) => z.coerce.number().int().min(1).max(max).default(fallback);

export const listUsersQuery = z.object({
  email: z.string().max(254).optional().meta({ description: 'exact email' }),
  q: z.string().trim().min(1).max(200).optional().meta({ description: 'part of the email or name' }),
  limit: limit(1000, 100),
  cursor: z.uuid({ error: 'cursor must be the `next` value of a previous page' }).optional(),
});

export const groupMembersQuery = z.object({
  limit: limit(1000, 100),
  cursor: z.uuid({ error: 'cursor must be the `next` value of a previous page' }).optional(),
});

export const auditQuery = z.object({
  type: z.string().max(100).optional().meta({ description: 'event type, e.g. client_created' }),
  user: z.string().max(254).optional().meta({ description: 'user id or email' }),
  client: z.string().max(200).optional().meta({ description: 'client id' }),
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
  limit: limit(1000, 50),
  before: z
    .string()
    // Audit ids are a bigint column: a larger number would overflow in the query.
    .refine((value) => /^[0-9]{1,20}$/.test(value) && BigInt(value) <= MAX_BIGINT, 'before must be the `next` value of a previous page')
    .optional(),
});

export const newRegistrationTokenBody = z
  .strictObject({
    uses: z.number().int().min(1).max(1000).default(1).meta({ description: 'How many apps it registers (default 1)' }),
    expiresInSeconds: z.number().int().min(60).max(365 * 86_400).default(86_400).meta({ description: 'How long it works (default one day)' }),
  })
  .meta({ description: 'An initial access token for dynamic client registration at <issuer>/reg (RFC 7591)' });

/** Request bodies by OpenAPI component name. */
export const bodySchemas = {
  NewClient: newClientSchema,
  ClientChanges: clientChangesSchema,
  RotateSecret: rotateSecretBody,
  NewUser: newUserSchema,
  UserChanges: userChangesSchema,
  SetPassword: setPasswordBody,
  NewApi: newApiSchema,
  ApiChanges: apiChangesSchema,
  NewGroup: newGroupSchema,
  GroupChanges: groupChangesSchema,
  NewRegistrationToken: newRegistrationTokenBody,
} as const;

export const querySchemas = {
  listUsers: listUsersQuery,
  groupMembers: groupMembersQuery,
  audit: auditQuery,
} as const;
