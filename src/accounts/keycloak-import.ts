/**
 * Keycloak's users as entries of our import (./user-import.ts): a realm export (`kc.sh export`, or the admin
 * console's partial export with users), a users file of `--users different_files`, or a bare array of its
 * UserRepresentation. What is kept: the id (as `sub`), email, first and last name, realm roles (less the ones
 * Keycloak gives everyone), emailVerified, enabled, the password credential's hash with its parameters, and two
 * required actions: "Update Password" (a temporary password) and "Configure OTP" (two-step verification asked for),
 * the user's attributes (Keycloak keeps each as a list: one value becomes text, more stay a list), and their
 * federated identities (the accounts at identity providers that sign in to them) as linked identities, and their
 * WebAuthn credentials as passkeys. Their groups too (a path, `/staff/admins`, becomes the name `staff/admins`),
 * and from a realm export each group's realm roles, with its parents' (a Keycloak subgroup's members hold them).
 *
 * Keycloak keeps a password credential as two JSON strings: `secretData` {value, salt} in base64 and
 * `credentialData` {hashIterations, algorithm, additionalParameters}. Its algorithms are pbkdf2 (HMAC-SHA-1),
 * pbkdf2-sha256, pbkdf2-sha512 and, from Keycloak 25, argon2 (parameters as lists of strings). Clients and client
 * roles are not users' data here and are not read.
 */
import { InputError } from '../errors.js';
import { argon2Phc, pbkdf2Phc } from './foreign-hashes.js';
import { z } from 'zod';
import { groupName } from './groups.js';
import { roleName } from './roles.js';
import type { ImportEntry } from './user-import.js';


/** Realm roles every Keycloak user has, which say nothing about the person. */
const BUILT_IN_ROLE = /^(default-roles-.+|offline_access|uma_authorization)$/;

/**
 * The users of a Keycloak export, each as an entry of our import file named by position and username, or with the
 * reason it cannot be one.
 */
export function keycloakEntries(document: unknown): ImportEntry[] {
  const users = Array.isArray(document) ? document : (document as { users?: unknown } | null)?.users;
  if (!Array.isArray(users)) throw new InputError('a Keycloak export holds a "users" array (a realm export with users, or a users file)');
  return users.map((user, index) => {
    const where = `user ${index + 1}${typeof user?.username === 'string' ? ` (${user.username})` : ''}`;
    try {
      return { where, value: fromKeycloak(user ?? {}) };
    } catch (error) {
      if (error instanceof InputError) return { where, problem: error.message };
      throw error;
    }
  });
}

interface KeycloakGroup {
  name?: unknown;
  path?: unknown;
  realmRoles?: unknown;
  subGroups?: unknown;
}

/** A Keycloak group path as a group name here: `/staff/admins` is `staff/admins`. */
const groupNameOf = (path: unknown) => (typeof path === 'string' ? path.replace(/^\//, '') : path);

/** Realm roles as roles here: those Keycloak gives everyone left out. */
const realmRolesOf = (roles: unknown) => (Array.isArray(roles) ? roles.filter((role) => typeof role !== 'string' || !BUILT_IN_ROLE.test(role)) : []);

/**
 * The groups of a realm export (none in a users file), each with its realm roles and its parents': in Keycloak a
 * subgroup's members hold what the groups above it give. A name that cannot be one here is refused by its path.
 */
export function keycloakGroups(document: unknown): { name: string; roles: string[] }[] {
  const top = Array.isArray(document) ? undefined : (document as { groups?: unknown } | null)?.groups;
  const groups: { name: string; roles: string[] }[] = [];
  const walk = (list: unknown, parentPath: string, inherited: string[]) => {
    if (!Array.isArray(list)) return;
    for (const group of list as KeycloakGroup[]) {
      const path = typeof group?.path === 'string' ? group.path : `${parentPath}/${String(group?.name)}`;
      const name = groupName.safeParse(groupNameOf(path));
      if (!name.success) throw new InputError(`the Keycloak group ${path}: ${name.error.issues[0]?.message}`);
      const own = z.array(roleName).safeParse(realmRolesOf(group.realmRoles));
      if (!own.success) throw new InputError(`the Keycloak group ${path}: ${own.error.issues[0]?.message}`);
      const roles = [...new Set([...inherited, ...own.data])];
      groups.push({ name: name.data, roles });
      walk(group.subGroups, path, roles);
    }
  };
  walk(top, '', []);
  return groups;
}

interface KeycloakUser {
  id?: unknown;
  email?: unknown;
  firstName?: unknown;
  lastName?: unknown;
  emailVerified?: unknown;
  enabled?: unknown;
  realmRoles?: unknown;
  groups?: unknown;
  credentials?: unknown;
  requiredActions?: unknown;
  attributes?: unknown;
  federatedIdentities?: unknown;
}

function fromKeycloak(user: KeycloakUser): Record<string, unknown> {
  const name = [user.firstName, user.lastName].filter((part) => typeof part === 'string' && part.trim() !== '').join(' ');
  const roles = realmRolesOf(user.realmRoles);
  const passwordHash = passwordHashOf(user.credentials);
  const passwordHistory = passwordHistoryOf(user.credentials);
  const actions = Array.isArray(user.requiredActions) ? user.requiredActions : [];
  return {
    ...(user.id !== undefined ? { id: user.id } : {}),
    email: user.email,
    ...(name ? { name } : {}),
    roles,
    ...(Array.isArray(user.groups) ? { groups: user.groups.map(groupNameOf) } : {}),
    emailVerified: user.emailVerified === true,
    disabled: user.enabled === false,
    ...(passwordHash ? { passwordHash } : {}),
    ...(passwordHistory.length > 0 ? { passwordHistory } : {}),
    passwordChangeRequired: actions.includes('UPDATE_PASSWORD'),
    totpRequired: actions.includes('CONFIGURE_TOTP'),
    ...attributesOf(user.attributes),
    ...linkedIdentitiesOf(user.federatedIdentities),
    ...passkeysOf(user.credentials),
  };
}

/** Keycloak's WebAuthn credential types: passkeys ("passwordless") and security keys used as a second step. */
const WEBAUTHN_TYPES = new Set(['webauthn-passwordless', 'webauthn']);

/**
 * Keycloak's WebAuthn credentials as passkeys: its `credentialData` keeps the credential id in base64 and the COSE
 * key in base64url, with the counter, AAGUID and transports. A "webauthn" one (a second step) may not be
 * discoverable: it then signs in at the second step's page, not from the email field.
 */
function passkeysOf(credentials: unknown): { passkeys?: unknown[] } {
  const webauthn = Array.isArray(credentials) ? credentials.filter((credential) => WEBAUTHN_TYPES.has(credential?.type)) : [];
  if (webauthn.length === 0) return {};
  return {
    passkeys: webauthn.map((credential) => {
      const data = parseEmbeddedJson(credential.credentialData, 'credentialData', 'WebAuthn credential') as {
        credentialId?: unknown;
        credentialPublicKey?: unknown;
        counter?: unknown;
        aaguid?: unknown;
        transports?: unknown;
      };
      if (typeof data.credentialId !== 'string' || typeof data.credentialPublicKey !== 'string') {
        throw new InputError('its WebAuthn credential lacks credentialId or credentialPublicKey');
      }
      return {
        id: Buffer.from(data.credentialId, 'base64').toString('base64url'),
        publicKey: data.credentialPublicKey.replace(/=+$/, ''),
        ...(typeof credential.userLabel === 'string' && credential.userLabel.trim() ? { name: credential.userLabel.trim().slice(0, 100) } : {}),
        ...(typeof data.counter === 'number' ? { signCount: data.counter } : {}),
        ...(typeof data.aaguid === 'string' ? { aaguid: data.aaguid } : {}),
        ...(Array.isArray(data.transports) ? { transports: data.transports } : {}),
      };
    }),
  };
}

/**
 * Keycloak's links to identity providers, by the provider's alias lower-cased: give the provider that id in
 * IDENTITY_PROVIDERS_FILE, and each person's Google (or other) sign-in keeps working.
 */
function linkedIdentitiesOf(federated: unknown): { linkedIdentities?: unknown[] } {
  if (!Array.isArray(federated) || federated.length === 0) return {};
  return {
    linkedIdentities: federated.map((link: { identityProvider?: unknown; userId?: unknown; userName?: unknown } | null) => ({
      provider: typeof link?.identityProvider === 'string' ? link.identityProvider.toLowerCase() : link?.identityProvider,
      subject: link?.userId,
      ...(typeof link?.userName === 'string' && link.userName.includes('@') ? { email: link.userName.toLowerCase() } : {}),
    })),
  };
}

/** Keycloak's `{ name: [values] }` as ours; an attribute with no value is left out. */
function attributesOf(attributes: unknown): { attributes?: Record<string, unknown> } {
  if (attributes === null || typeof attributes !== 'object' || Array.isArray(attributes)) return {};
  const entries = Object.entries(attributes as Record<string, unknown>)
    .map(([name, values]) => [name, Array.isArray(values) && values.length === 1 ? values[0] : values] as const)
    .filter(([, value]) => !(Array.isArray(value) && value.length === 0));
  return entries.length ? { attributes: Object.fromEntries(entries) } : {};
}

interface CredentialData {
  hashIterations?: number;
  algorithm?: string;
  additionalParameters?: Record<string, string[] | undefined>;
}

/** The password credential's hash in PHC form; undefined when the user has none (they need a password set). */
function passwordHashOf(credentials: unknown): string | undefined {
  const password = Array.isArray(credentials) ? credentials.find((credential) => credential?.type === 'password') : undefined;
  return password ? hashOf(password) : undefined;
}

/**
 * The hashes of Keycloak's "password-history" credentials (kept under its "Not Recently Used" policy), newest
 * first, so that PASSWORD_HISTORY goes on refusing the passwords people had there.
 */
function passwordHistoryOf(credentials: unknown): string[] {
  const history = Array.isArray(credentials) ? credentials.filter((credential) => credential?.type === 'password-history') : [];
  const createdAt = (credential: { createdDate?: unknown }) => (typeof credential.createdDate === 'number' ? credential.createdDate : 0);
  return history.sort((a, b) => createdAt(b) - createdAt(a)).map(hashOf);
}

/** A password or password-history credential's hash in PHC form. */
function hashOf(password: { secretData?: unknown; credentialData?: unknown }): string {
  const secret = parseEmbeddedJson(password.secretData, 'secretData') as { value?: string; salt?: string };
  const data = parseEmbeddedJson(password.credentialData, 'credentialData') as CredentialData;
  if (typeof secret.value !== 'string' || typeof secret.salt !== 'string' || typeof data.hashIterations !== 'number') {
    throw new InputError('its password credential lacks value, salt or hashIterations');
  }
  const [hash, salt] = [Buffer.from(secret.value, 'base64'), Buffer.from(secret.salt, 'base64')];
  switch (data.algorithm) {
    case 'pbkdf2':
      return pbkdf2Phc('sha1', data.hashIterations, salt, hash);
    case 'pbkdf2-sha256':
      return pbkdf2Phc('sha256', data.hashIterations, salt, hash);
    case 'pbkdf2-sha512':
      return pbkdf2Phc('sha512', data.hashIterations, salt, hash);
    case 'argon2':
      return argon2HashOf(data, salt, hash);
    default:
      throw new InputError(`its password is hashed with "${data.algorithm}", which cannot be imported (pbkdf2, pbkdf2-sha256, pbkdf2-sha512 and argon2 can)`);
  }
}

function argon2HashOf(data: CredentialData, salt: Buffer, hash: Buffer): string {
  const parameter = (name: string, fallback: string) => data.additionalParameters?.[name]?.[0] ?? fallback;
  // Keycloak's defaults, for a credential written without them.
  if (parameter('version', '1.3') !== '1.3') throw new InputError('its Argon2 hash is of version 1.0, which cannot be imported (1.3 can)');
  const variant = { id: 'argon2id', i: 'argon2i', d: 'argon2d' }[parameter('type', 'id')];
  if (!variant) throw new InputError(`its Argon2 type "${parameter('type', 'id')}" is unknown`);
  return argon2Phc(variant, Number(parameter('memory', '7168')), data.hashIterations ?? 5, Number(parameter('parallelism', '1')), salt, hash);
}

function parseEmbeddedJson(text: unknown, field: string, credential = 'password credential'): unknown {
  if (typeof text !== 'string') throw new InputError(`its ${credential} has no ${field}`);
  try {
    return JSON.parse(text) ?? {};
  } catch {
    throw new InputError(`its ${credential}'s ${field} is not JSON`);
  }
}
