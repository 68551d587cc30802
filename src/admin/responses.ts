/**
 * The admin API's response bodies as they go over the wire (dates as ISO 8601 text), one schema per kind of
 * body. src/admin/openapi.ts turns them into the document's components, and the e2e tests check every
 * response the server sends against that document. Every object is strict (`additionalProperties: false`), so
 * a property renamed, added or dropped in a handler fails those tests instead of leaving the document wrong.
 */
import { z } from 'zod';
import { TOKEN_FORMATS } from '../apis/apis.js';
import { CLIENT_TYPES, TOKEN_ENDPOINT_AUTH_METHODS } from '../clients/clients.js';
import { ENCRYPTION_ALGS, ENCRYPTION_ENCS } from '../clients/response-encryption.js';
import { SUBJECT_TYPES } from '../clients/sector-identifiers.js';
import { SIGNING_ALGS } from '../keys/signing-keys.js';

/** What JSON.stringify makes of a Date. */
const dateTime = z.iso.datetime();

const strings = z.array(z.string());

const clientSecretExpiry = z.strictObject({
  expiresAt: dateTime.nullable().meta({ description: 'When this secret stops working; null until a rotation sets a time' }),
});

const clientProperties = {
  clientId: z.string(),
  name: z.string(),
  type: z.enum(CLIENT_TYPES).meta({ description: 'The preset the client was registered with; it fixes the grant types and how it authenticates' }),
  redirectUris: strings,
  postLogoutRedirectUris: strings,
  grantTypes: strings,
  tokenEndpointAuthMethod: z.enum(TOKEN_ENDPOINT_AUTH_METHODS),
  scope: z.string().meta({ description: 'Space-separated scopes the client may ask for; empty for a service client: every scope of the API it names' }),
  roles: strings.meta({ description: 'Roles of the client itself, carried in its client-credentials tokens' }),
  firstParty: z.boolean().meta({ description: 'First-party clients skip the consent page' }),
  metadata: z.record(z.string(), z.unknown()).meta({ description: 'Further OpenID Connect client metadata (jwks or jwks_uri for private_key_jwt and self_signed_tls_client_auth; the tls_client_auth_* subject it must present)' }),
  backchannelLogoutUri: z.string().nullable().meta({ description: 'Where logout tokens are sent when a session the client took part in ends; null: none are sent' }),
  backchannelLogoutSessionRequired: z.boolean().meta({ description: 'Whether logout tokens and ID tokens carry the session id `sid`' }),
  requireDpop: z.boolean().meta({ description: 'Token requests without a DPoP proof are refused (RFC 9449 §5.2)' }),
  certificateBoundTokens: z.boolean().meta({ description: 'Its tokens are bound to the TLS client certificate it presents, which it must (RFC 8705 §3)' }),
  requirePar: z.boolean().meta({ description: 'Authorization requests not pushed first are refused (RFC 9126 §6)' }),
  requireSignedRequestObject: z.boolean().meta({ description: 'Authorization requests not sent as a request object signed with its key are refused (RFC 9101, JAR)' }),
  requireMfa: z.boolean().meta({ description: 'Its users sign in with two steps (password and an authenticator app’s code), whatever the request’s acr_values' }),
  signedUserinfo: z.boolean().meta({ description: 'Userinfo answers it with a JWT signed with the server’s key (userinfo_signed_response_alg, in signingAlg) instead of plain JSON' }),
  signingAlg: z.enum(SIGNING_ALGS).meta({ description: 'What signs its ID tokens and the responses signed for it (userinfo, JARM, introspection)' }),
  responseEncryption: z
    .strictObject({ alg: z.enum(ENCRYPTION_ALGS), enc: z.enum(ENCRYPTION_ENCS) })
    .nullable()
    .meta({ description: 'What those responses are then encrypted to its own key with (JWE); null: signed only' }),
  fapi2: z.boolean().meta({ description: 'It follows the FAPI 2.0 Security Profile: pushed authorization requests with PKCE, sender-constrained tokens, no refresh-token rotation' }),
  clientUri: z.string().nullable().meta({ description: 'The app’s home page, linked on the consent page; null: none' }),
  policyUri: z.string().nullable().meta({ description: 'Its privacy policy, linked on the consent page; null: none' }),
  tosUri: z.string().nullable().meta({ description: 'Its terms of service, linked on the consent page; null: none' }),
  tokenExchangeFrom: strings.meta({
    description: 'The APIs whose users’ access tokens this client, their back end, may exchange for tokens to other APIs (RFC 8693); empty: it may not',
  }),
  subjectType: z.enum(SUBJECT_TYPES).meta({ description: 'pairwise: its users’ `sub` is one of its own sector (OpenID Connect Core §8); public: the user id' }),
  sectorIdentifierUri: z.string().nullable().meta({ description: 'The URL of the JSON list of its redirect URIs that names its sector; null: none registered' }),
  pairwiseSector: z.string().nullable().meta({ description: 'The host its pairwise subjects are made for, fixed at registration; null for a public client' }),
  disabledAt: dateTime.nullable().meta({ description: 'When the client was disabled; null while it is enabled' }),
  createdAt: dateTime,
  updatedAt: dateTime,
  secrets: z
    .array(clientSecretExpiry)
    .meta({ description: 'The live secrets (two during a rollover), newest first; only when each expires, never the secret or its hash' }),
};

export const clientResponse = z.strictObject(clientProperties).meta({ description: 'A registered client (never its secret)' });

export const clientWithSecretResponse = z
  .strictObject({
    ...clientProperties,
    clientSecret: z.string().optional().meta({ description: 'Present for a client that authenticates with a secret: shown in this response only' }),
  })
  .meta({ description: 'A client just registered, with its secret if it has one' });

export const clientListResponse = z.strictObject({ clients: z.array(clientResponse) });

export const rotatedSecretResponse = z.strictObject({
  clientId: z.string(),
  clientSecret: z.string().meta({ description: 'The new secret: shown in this response only' }),
  oldSecretsExpireAt: dateTime.meta({ description: 'When the secrets held before this rotation stop working' }),
});

export const userResponse = z
  .strictObject({
    id: z.uuid().meta({ description: 'The user id: the `sub` of their tokens' }),
    email: z.string().meta({ description: 'Lower-cased' }),
    name: z.string().nullable(),
    roles: strings.meta({ description: 'Their own roles' }),
    groups: strings.meta({ description: 'The groups they belong to' }),
    effectiveRoles: strings.meta({ description: 'The roles their tokens carry: their own and their groups’' }),
    emailVerified: z.boolean(),
    disabledAt: dateTime.nullable().meta({ description: 'When the user was disabled; null while they may sign in' }),
    passwordChangedAt: dateTime.nullable().meta({ description: 'When the password was last set; null while the user has none (never set, or removed)' }),
    passwordExpiresAt: dateTime.nullable().meta({ description: 'When the password expires (PASSWORD_MAX_AGE): the next sign-in with it asks for a new one; null when it does not' }),
    sessionsRevokedAt: dateTime.nullable().meta({ description: 'Sessions and tokens issued before this moment are void ("log out everywhere"); null when never' }),
    totpRequired: z.boolean().meta({ description: 'Asked to set up two-step verification (an authenticator app) at the next sign-in; users with a role in TOTP_REQUIRED_ROLES must too' }),
    totpEnrolledAt: dateTime.nullable().meta({ description: 'When the user set up two-step verification; null while they have not' }),
    passwordChangeRequired: z.boolean().meta({ description: 'Must choose a new password at the next sign-in (a temporary password, or asked to)' }),
    attributes: z
      .record(z.string(), z.union([z.string(), z.number(), z.boolean(), strings]))
      .meta({ description: 'The user’s own attributes; those USER_CLAIMS names are released as token claims' }),
    termsAccepted: z
      .strictObject({ version: z.string(), at: dateTime })
      .nullable()
      .meta({ description: 'The version of the terms of service (TERMS_VERSION) the user accepted, and when; null while they have not' }),
    createdAt: dateTime,
    updatedAt: dateTime,
  })
  .meta({ description: 'A user (never a password hash)' });

export const userPageResponse = z.strictObject({
  users: z.array(userResponse),
  next: z.uuid().nullable().meta({ description: 'The `cursor` of the next page; null on the last page' }),
});

export const sessionResponse = z
  .strictObject({
    uid: z.string().meta({ description: 'The session’s public identifier (not its cookie value), as DELETE /users/{userId}/sessions/{uid} takes it' }),
    signedInAt: dateTime.nullable(),
    expiresAt: dateTime.nullable(),
    remembered: z.boolean().meta({ description: 'The user chose to stay signed in: the browser keeps the session until expiresAt' }),
    clients: strings.meta({ description: 'Ids of the clients used in this session' }),
    amr: strings.meta({ description: 'How the user authenticated (OpenID Connect `amr` values)' }),
  })
  .meta({ description: 'One browser’s login session' });

export const sessionListResponse = z.strictObject({ sessions: z.array(sessionResponse) });

export const passkeyResponse = z
  .strictObject({
    id: z.string().meta({ description: 'The credential id (base64url), as DELETE /users/{userId}/passkeys/{passkeyId} takes it' }),
    name: z.string().meta({ description: 'What the user called it when adding it' }),
    synced: z.boolean().meta({ description: 'The authenticator says the passkey is synced between devices (a password manager, a platform keychain)' }),
    authenticator: z
      .string()
      .nullable()
      .meta({ description: 'The make of authenticator that holds it (such as "Google Password Manager"), from its AAGUID; null when it did not say or is not known' }),
    aaguid: z.string().nullable().meta({ description: 'The AAGUID the authenticator reported when the passkey was made (all zeros: it did not say)' }),
    transports: strings.meta({ description: 'How the browser said it reaches the authenticator (internal, usb, nfc, ble, hybrid)' }),
    createdAt: dateTime,
    lastUsedAt: dateTime.nullable(),
  })
  .meta({ description: 'A passkey (WebAuthn credential) the user signs in with; its public key is not shown' });

export const passkeyListResponse = z.strictObject({ passkeys: z.array(passkeyResponse) });

export const linkedIdentityResponse = z
  .strictObject({
    provider: z.string().meta({ description: 'The identity provider’s id in IDENTITY_PROVIDERS_FILE, as DELETE /users/{userId}/identities/{provider} takes it' }),
    subject: z.string().meta({ description: 'The person’s `sub` at that provider' }),
    email: z.string().nullable().meta({ description: 'The address the provider gave at the last sign-in' }),
    createdAt: dateTime,
    lastUsedAt: dateTime.nullable(),
  })
  .meta({ description: 'An account at another identity provider that signs in to this user' });

export const linkedIdentityListResponse = z.strictObject({ identities: z.array(linkedIdentityResponse) });

export const grantResponse = z
  .strictObject({
    grantId: z.string().meta({ description: 'As DELETE /users/{userId}/grants/{grantId} takes it' }),
    clientId: z.string().nullable(),
    scopes: strings.meta({ description: 'OpenID Connect scopes granted' }),
    resources: z.record(z.string(), strings).meta({ description: 'API scopes granted, by resource indicator' }),
    createdAt: dateTime.nullable(),
    expiresAt: dateTime.nullable(),
  })
  .meta({ description: 'What a user granted a client (no token values)' });

export const grantListResponse = z.strictObject({ grants: z.array(grantResponse) });

export const apiResponse = z
  .strictObject({
    id: z.uuid(),
    indicator: z.string().meta({ description: 'The resource indicator (RFC 8707): the `aud` of the API’s access tokens' }),
    name: z.string(),
    scopes: strings,
    accessTokenTtl: z.int().meta({ description: 'Lifetime of the API’s access tokens, in seconds' }),
    accessTokenFormat: z.enum(TOKEN_FORMATS).meta({ description: 'jwt: validated offline from JWKS (RFC 9068); opaque: by introspection' }),
    signingAlg: z.enum(SIGNING_ALGS).meta({ description: 'What signs its JWT access tokens' }),
    isDefault: z.boolean().meta({ description: 'The API of client-credentials requests that name no resource' }),
    createdAt: dateTime,
    updatedAt: dateTime,
  })
  .meta({ description: 'An API (resource server) that accepts this issuer’s access tokens' });

export const apiListResponse = z.strictObject({ apis: z.array(apiResponse) });

export const groupResponse = z
  .strictObject({
    name: z.string().meta({ description: 'Letters, digits, spaces, ".", "_", ":" or "-", in parts separated by "/" (the URL-encoded name in paths)' }),
    description: z.string().nullable(),
    roles: strings.meta({ description: 'What every member holds, besides their own roles' }),
    createdAt: dateTime,
    updatedAt: dateTime,
  })
  .meta({ description: 'A group of users: its roles are in every member’s tokens; its name in their `groups` claim' });

export const groupListResponse = z.strictObject({ groups: z.array(groupResponse) });

export const groupMemberPageResponse = z.strictObject({
  members: z.array(z.strictObject({ id: z.uuid(), email: z.string(), name: z.string().nullable() })),
  next: z.uuid().nullable().meta({ description: 'The `cursor` of the next page; null on the last page' }),
});

export const lockStateResponse = z.strictObject({
  lockedUntil: dateTime.nullable().meta({ description: 'When the lock ends; null when there is none' }),
});

export const liftedLockResponse = z.strictObject({
  wasLockedUntil: dateTime.nullable().meta({ description: 'When the lock just lifted would have ended; null when there was none' }),
});

export const sentLinkResponse = z
  .strictObject({
    sentTo: z.string().meta({ description: 'The address the mail was sent to' }),
    expiresAt: dateTime.meta({ description: 'When the link stops working (it also stops once used)' }),
  })
  .meta({ description: 'A link sent by mail, which the relay accepted' });

export const ipLocksResponse = z
  .strictObject({
    signIn: dateTime.nullable().meta({ description: 'When the lock by wrong passwords from the address ends; null when there is none' }),
    clientAuthentication: dateTime.nullable().meta({ description: 'When the lock by failed client authentication from the address ends; null when there is none' }),
  })
  .meta({ description: 'An IP address’s locks' });

export const liftedIpLocksResponse = z
  .strictObject({ wasLockedUntil: ipLocksResponse })
  .meta({ description: 'The address’s locks just lifted, each as when it would have ended (null: there was none)' });

export const auditEventResponse = z
  .strictObject({
    id: z.string().regex(/^[0-9]+$/).meta({ description: 'A 64-bit integer as decimal text; later events have larger ids' }),
    at: dateTime,
    type: z.string().meta({ description: 'What happened, e.g. client_created, login_failed' }),
    outcome: z.enum(['success', 'failure']),
    accountId: z.string().nullable().meta({ description: 'The user concerned' }),
    clientId: z.string().nullable().meta({ description: 'The client concerned (for a change made through this API, the admin client is detail.adminClientId)' }),
    ip: z.string().nullable(),
    userAgent: z.string().nullable(),
    requestId: z.string().nullable(),
    detail: z.record(z.string(), z.unknown()).meta({ description: 'Facts that depend on the type; never secrets or tokens' }),
  })
  .meta({ description: 'One entry of the audit log' });

export const auditPageResponse = z.strictObject({
  events: z.array(auditEventResponse).meta({ description: 'Newest first' }),
  next: z.string().nullable().meta({ description: 'The `before` of the next (older) page; null on the last page' }),
});

const registrationTokenFields = {
  id: z.string().meta({ description: 'As DELETE /client-registration-tokens/{tokenId} takes it' }),
  usesLeft: z.number().int().meta({ description: 'How many more apps it registers' }),
  expiresAt: dateTime,
  createdBy: z.string().meta({ description: 'cli, admin-api, …' }),
  createdAt: dateTime,
};

export const registrationTokenResponse = z.strictObject(registrationTokenFields).meta({ description: 'An initial access token (never the token itself)' });

export const registrationTokenListResponse = z.strictObject({ tokens: z.array(registrationTokenResponse) });

export const createdRegistrationTokenResponse = z
  .strictObject({
    ...registrationTokenFields,
    initialAccessToken: z.string().meta({ description: 'The token, shown once: an app sends it as `Authorization: Bearer` to <issuer>/reg' }),
  })
  .meta({ description: 'A new initial access token, with the token itself' });

export const webhookStateResponse = z
  .strictObject({
    url: z.string().meta({ description: 'WEBHOOK_URL' }),
    lastEventId: z.string().nullable().meta({ description: 'The audit event last delivered (or skipped); null before the first' }),
    pending: z.number().int().meta({ description: 'Events written since that are still to send' }),
    failures: z.number().int().meta({ description: 'Failed tries of the event the queue is held at; 0 when it is not held' }),
    retryAt: dateTime.nullable().meta({ description: 'When the held event is tried again; null when none is held' }),
    lastError: z.string().nullable().meta({ description: 'Why the last try failed; null after a success' }),
    updatedAt: dateTime,
  })
  .meta({ description: 'Where delivery of audit events to WEBHOOK_URL stands' });

export const skippedWebhookEventResponse = z
  .strictObject({
    skipped: z
      .strictObject({ id: z.string().meta({ description: 'The audit event’s id' }), type: z.string() })
      .nullable()
      .meta({ description: 'The event skipped; null when none was waiting' }),
  })
  .meta({ description: 'The held event, passed over' });

/** Response bodies by OpenAPI component name. */
export const responseSchemas = {
  Client: clientResponse,
  ClientWithSecret: clientWithSecretResponse,
  ClientList: clientListResponse,
  RotatedSecret: rotatedSecretResponse,
  User: userResponse,
  UserPage: userPageResponse,
  Session: sessionResponse,
  SessionList: sessionListResponse,
  Passkey: passkeyResponse,
  PasskeyList: passkeyListResponse,
  LinkedIdentity: linkedIdentityResponse,
  LinkedIdentityList: linkedIdentityListResponse,
  RegistrationToken: registrationTokenResponse,
  RegistrationTokenList: registrationTokenListResponse,
  CreatedRegistrationToken: createdRegistrationTokenResponse,
  Grant: grantResponse,
  GrantList: grantListResponse,
  Api: apiResponse,
  ApiList: apiListResponse,
  Group: groupResponse,
  GroupList: groupListResponse,
  GroupMemberPage: groupMemberPageResponse,
  LockState: lockStateResponse,
  LiftedLock: liftedLockResponse,
  SentLink: sentLinkResponse,
  IpLocks: ipLocksResponse,
  LiftedIpLocks: liftedIpLocksResponse,
  WebhookState: webhookStateResponse,
  SkippedWebhookEvent: skippedWebhookEventResponse,
  AuditEvent: auditEventResponse,
  AuditPage: auditPageResponse,
} as const;
