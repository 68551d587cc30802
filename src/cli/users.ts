/** `authz users …`: people who can sign in. */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { type Command, Option } from 'commander';
import { type ImportFormat, groupsOfFile, parseUserFile } from '../accounts/user-import.js';
import { passkeyView } from '../accounts/passkeys.js';
import type { TwoFactor } from '../accounts/two-factor.js';
import type { User, UserRepository } from '../accounts/users.js';
import { passwordExpiresAt } from '../accounts/password-expiry.js';
import { ConflictError, InputError, NotFoundError } from '../errors.js';
import { MailNotSentError } from '../mail/outbox.js';
import { accountOfSubject } from '../oidc/pairwise-subjects.js';
import type { CliContext } from './context.js';
import { acceptsGeneratedIds } from './options.js';
import { commaList, isoDate, printJson, printTable, splitList } from './output.js';

/** Two-step verification as the `2-step` column shows it: on (an app is set up), required (at the next sign-in), off. */
const twoStepOf = (twoFactor: TwoFactor, user: User) => ({ verify: 'on', enroll: 'required', none: 'off' })[twoFactor.stepFor(user)];

const summary = (user: User, twoFactor: TwoFactor) => ({
  id: user.id,
  email: user.email,
  name: user.name,
  roles: user.roles.join(',') || undefined,
  status: user.disabledAt ? 'disabled' : 'active',
  '2-step': twoStepOf(twoFactor, user),
  created: isoDate(user.createdAt),
});

/** A user as `--json` prints it: the table's keys (`twoStep` for `2-step`), roles always as an array, and the record's flags. */
const userJson = (user: User, twoFactor: TwoFactor, passwordMaxAgeSeconds: number) => {
  const { '2-step': twoStep, ...table } = summary(user, twoFactor);
  return {
    ...table,
    roles: user.roles,
    groups: user.groups,
    emailVerified: user.emailVerified,
    disabledAt: user.disabledAt,
    twoStep,
    totpRequired: user.totpRequired,
    totpEnrolledAt: user.totpEnrolledAt,
    /** null: no password of their own (they sign in with a passkey or another identity provider). */
    passwordChangedAt: user.passwordChangedAt,
    /** PASSWORD_MAX_AGE: when the next sign-in with the password asks for a new one; null when it does not expire. */
    passwordExpiresAt: passwordExpiresAt(user, passwordMaxAgeSeconds) ?? null,
    passwordChangeRequired: user.passwordChangeRequired,
    /** The version of the terms of service accepted (TERMS_VERSION), and when; null while not. */
    termsAccepted: user.termsAccepted,
    attributes: user.attributes,
  };
};

/** Why two-step verification is required of a user, as an operator would check it; empty when it is not. */
function requiredBecause(twoFactor: TwoFactor, user: User): string[] {
  const roles = twoFactor.requiringRoles(user);
  return [
    ...(user.totpRequired ? ['asked with users require-totp'] : []),
    ...(roles.length ? [`role ${roles.join(', ')} in TOTP_REQUIRED_ROLES`] : []),
  ];
}

/** What the user meets after their password at the next sign-in, once their app was removed or never set up. */
function withoutAppNextSignIn(twoFactor: TwoFactor, user: User): string {
  const reasons = requiredBecause(twoFactor, user);
  return reasons.length
    ? `they must set up an authenticator app at their next sign-in (required: ${reasons.join('; ')})`
    : 'they sign in with their password alone (two-step verification is not required of them)';
}

/** Every user, oldest first: page by page (keyset on id, as the admin API pages), however many there are. */
async function allUsers(repository: UserRepository): Promise<User[]> {
  const users: User[] = [];
  let after: string | undefined;
  do {
    const page = await repository.search({ limit: 1000, after });
    users.push(...page.users);
    after = page.next ?? undefined;
  } while (after);
  return users.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.id.localeCompare(b.id));
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** A password from stdin (first line), so it stays out of shell history and `ps`. */
async function readPasswordFromStdin(): Promise<string> {
  return (await readStdin()).split(/\r?\n/)[0] ?? '';
}

/** An import file's text; `-` is standard input. A file that cannot be read is refused in one line. */
async function readImportFile(file: string): Promise<string> {
  if (file === '-') return readStdin();
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new InputError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/** Mails a new user the link to choose their password; the user stays when the mail fails, and the error says how to resend. */
async function invite(context: CliContext, user: User): Promise<{ expiresAt: Date }> {
  try {
    return await (await context.linkMails()).send(user, 'password_reset');
  } catch (error) {
    if (!(error instanceof MailNotSentError || error instanceof ConflictError)) throw error;
    throw new InputError(`created user ${user.email}, but ${error.message}; send it with: authz users send-password-reset ${user.email}`);
  }
}

async function choosePassword(options: { passwordStdin?: boolean; password?: string }): Promise<{ password: string; generated: boolean }> {
  if (options.passwordStdin) return { password: await readPasswordFromStdin(), generated: false };
  if (options.password) return { password: options.password, generated: false };
  return { password: randomBytes(15).toString('base64url'), generated: true };
}

export function registerUserCommands(program: Command, context: CliContext): void {
  const users = program.command('users').description('people who can sign in');

  users
    .command('add')
    .description('create a user (prints a generated password unless one is given, or --invite mails them a link to choose one)')
    .requiredOption('--email <email>', 'sign-in email, unique')
    .option('--name <name>', 'display name')
    .option('--roles <roles>', 'comma-separated roles, e.g. admin,editor', splitList, [])
    .option('--password-stdin', 'read the password from standard input')
    .option('--password <password>', 'the password (visible in shell history: prefer --password-stdin)')
    .option('--invite', 'no password: mail the user a link to choose their own (needs SMTP_URL)')
    .option('--email-verified', 'mark the email as verified')
    .option('--temporary', 'the password is temporary: they choose their own at the first sign-in')
    .option('--json', 'print JSON')
    .action(async (options) => {
      if (options.invite && (options.password || options.passwordStdin)) throw new InputError('--invite mails a link to choose a password: give no password with it');
      if (options.invite && options.temporary) throw new InputError('--invite lets them choose their own password already: --temporary is for a password you give them');
      // Found out before the user is created, not after.
      if (options.invite && !(await context.linkMails()).sendsMail) throw new InputError('--invite needs mail, and this server sends none: set SMTP_URL');
      const { password, generated } = options.invite ? { password: undefined, generated: false } : await choosePassword(options);
      const services = await context.services();
      const user = await services.users.create({
        email: options.email,
        name: options.name,
        roles: options.roles,
        password,
        temporaryPassword: Boolean(options.temporary),
        emailVerified: Boolean(options.emailVerified),
      });
      const invitation = options.invite ? await invite(context, user) : undefined;
      if (options.json) return printJson({ ...userJson(user, services.twoFactor, context.config.passwords.maxAgeSeconds), ...(generated ? { password } : {}), ...(invitation ? { invitationExpiresAt: invitation.expiresAt } : {}) });
      process.stdout.write(`created user ${user.email} (sub ${user.id})\n`);
      if (generated) process.stdout.write(`password: ${password}\n(shown once; change it with: authz users set-password --email ${user.email} --password-stdin)\n`);
      if (user.passwordChangeRequired) process.stdout.write('they choose their own password at their first sign-in\n');
      if (invitation) process.stdout.write(`mailed a link to choose a password; it works once, until ${isoDate(invitation.expiresAt)}\n`);
    });

  users
    .command('import')
    .description(
      'create users from another identity provider: a JSON Lines file (or a JSON array; - reads standard input) of ' +
        '{ email, name, roles, emailVerified, disabled, id, passwordHash }, or a Keycloak export; keeps each password hash ' +
        '(bcrypt, PBKDF2, Argon2) and id (sub) given; all or none',
    )
    .argument('<file>', 'the file, or - for standard input')
    .addOption(new Option('--format <format>', 'lines: ours (JSON Lines or a JSON array); keycloak: a realm or users export').choices(['lines', 'keycloak']).default('lines'))
    .option('--skip-existing', 'leave out users whose email exists already, instead of refusing the file')
    .option('--json', 'print JSON')
    .action(async (file: string, options) => {
      const text = await readImportFile(file);
      const users = parseUserFile(text, options.format as ImportFormat);
      const groups = groupsOfFile(text, options.format as ImportFormat);
      const services = await context.services();
      const { created, skipped, createdGroups } = await services.users.importUsers(users, { skipExisting: Boolean(options.skipExisting), groups });
      if (options.json) return printJson({ created: created.map((user) => userJson(user, services.twoFactor, context.config.passwords.maxAgeSeconds)), skipped, createdGroups });
      const createdEmails = new Set(created.map((user) => user.email));
      const withoutPassword = users.filter((user) => !user.passwordHash && createdEmails.has(user.email)).length;
      process.stdout.write(`imported ${created.length} user${created.length === 1 ? '' : 's'}`);
      process.stdout.write(skipped.length ? `; skipped ${skipped.length} whose email exists already\n` : '\n');
      if (withoutPassword) process.stdout.write(`${withoutPassword} came without a password hash: set one with authz users set-password before they can sign in\n`);
      if (createdGroups.length) process.stdout.write(`created the groups ${createdGroups.join(', ')} (give roles to any that came without: authz groups update <name> --roles …)\n`);
    });

  users
    .command('list')
    .description('list users, with their two-step verification: on (an app is set up), required (at the next sign-in), off')
    .option('--json', 'print JSON')
    .action(async (options) => {
      const { users: repository, twoFactor } = await context.services();
      const users = await allUsers(repository);
      if (options.json) printJson(users.map((user) => userJson(user, twoFactor, context.config.passwords.maxAgeSeconds)));
      else printTable(users.map((user) => summary(user, twoFactor)), 'no users yet: add one with `authz users add --email …`');
    });

  users
    .command('set-password')
    .description('set a user’s password (prints a generated one unless one is given)')
    .requiredOption('--email <email>', 'the user’s email (or --email <sub>)')
    .option('--password-stdin', 'read the password from standard input')
    .option('--password <password>', 'the password (visible in shell history: prefer --password-stdin)')
    .option('--temporary', 'they must choose their own at their next sign-in (as Keycloak’s "Temporary")')
    .action(async (options) => {
      const { password, generated } = await choosePassword(options);
      const user = await (await context.services()).users.setPassword(options.email, password, { temporary: Boolean(options.temporary) });
      process.stdout.write(`password changed for ${user.email}${user.passwordChangeRequired ? '; they choose their own at their next sign-in' : ''}\n`);
      if (generated) process.stdout.write(`password: ${password}\n(shown once)\n`);
    });

  users
    .command('set-email')
    .description('change a user’s sign-in address (unconfirmed until they confirm it: see send-email-confirmation)')
    .argument('<email>', 'the user’s email or sub')
    .argument('<new-email>', 'the new address')
    .action(async (email: string, newEmail: string) => {
      const user = await (await context.services()).users.update(email, { email: newEmail });
      process.stdout.write(`${user.email} is the user’s address now${user.emailVerified ? '' : `, unconfirmed; to ask them to confirm it: authz users send-email-confirmation ${user.email}`}\n`);
    });

  users
    .command('set-roles')
    .description('replace a user’s roles')
    .argument('<email>', 'the user’s email or sub')
    .argument('<roles>', 'comma-separated roles ("" for none)', splitList)
    .action(async (email: string, roles: string[]) => {
      const user = await (await context.services()).users.setRoles(email, roles);
      process.stdout.write(`${user.email} now has roles: ${user.roles.join(', ') || '(none)'}\n`);
    });

  users
    .command('set-groups')
    .description('put a user in exactly these groups, whose roles they then hold too (`authz groups add` makes one)')
    .argument('<email>', 'the user’s email or sub')
    .argument('<groups>', 'comma-separated group names ("" for none)', commaList)
    .action(async (email: string, groups: string[]) => {
      const user = await (await context.services()).users.setGroups(email, groups);
      process.stdout.write(`${user.email} is now in: ${user.groups.join(', ') || '(no group)'}
`);
    });

  users
    .command('revoke-sessions')
    .description('log a user out everywhere: end every session, consent, refresh token and opaque access token')
    .argument('<email>', 'the user’s email or sub')
    .action(async (email: string) => {
      const user = await (await context.services()).users.revokeSessions(email);
      process.stdout.write(`${user.email} is signed out everywhere; JWT access tokens already issued expire within their lifetime\n`);
    });

  users
    .command('sessions')
    .description('the browsers a user is signed in with')
    .argument('<email>', 'the user’s email or sub')
    .option('--json', 'print JSON')
    .action(async (email: string, options) => {
      const services = await context.services();
      const user = await services.users.require(email);
      const sessions = await services.sessions.list(user.id);
      if (options.json) return printJson(sessions);
      printTable(
        sessions.map((session) => ({
          session: session.uid,
          'signed in': isoDate(session.signedInAt),
          expires: isoDate(session.expiresAt),
          remembered: session.remembered ? 'yes' : 'no (ends with the browser)',
          clients: session.clients.join(', ') || undefined,
        })),
        'no sessions',
      );
    });

  acceptsGeneratedIds(users.command('end-session'))
    .description('sign one browser out (see `users sessions`); consents and tokens stay')
    .argument('<email>', 'the user’s email or sub')
    .argument('<session>', 'the session id shown by `users sessions`')
    .action(async (email: string, uid: string) => {
      const services = await context.services();
      const user = await services.users.require(email);
      await services.sessions.end(user.id, uid);
      process.stdout.write(`session ${uid} ended\n`);
    });

  users
    .command('grants')
    .description('the consents a user has given, by client (never token values)')
    .argument('<email>', 'the user’s email or sub')
    .option('--json', 'print JSON')
    .action(async (email: string, options) => {
      const grants = await (await context.services()).users.listGrants(email);
      if (options.json) return printJson(grants);
      printTable(
        grants.map((grant) => ({
          grant: grant.grantId,
          client: grant.clientId,
          scopes: grant.scopes.join(' ') || undefined,
          apis: Object.entries(grant.resources).map(([api, scopes]) => `${api} (${scopes.join(' ')})`).join(', ') || undefined,
          expires: isoDate(grant.expiresAt),
        })),
        'no grants',
      );
    });

  acceptsGeneratedIds(users.command('revoke-grant'))
    .description('withdraw one consent: the grant and every token issued under it')
    .argument('<email>', 'the user’s email or sub')
    .argument('<grant-id>', 'as shown by `users grants`')
    .action(async (email: string, grantId: string) => {
      await (await context.services()).users.revokeGrant(email, grantId);
      process.stdout.write(`grant ${grantId} revoked\n`);
    });

  users
    .command('passkeys')
    .description('the passkeys a user signs in with (never their keys)')
    .argument('<email>', 'the user’s email or sub')
    .option('--json', 'print JSON')
    .action(async (email: string, options) => {
      const services = await context.services();
      const user = await services.users.require(email);
      const passkeys = await services.passkeys.list(user.id);
      if (options.json) return printJson(passkeys.map(passkeyView));
      printTable(
        passkeys.map((passkey) => ({
          passkey: passkey.id,
          name: passkey.name,
          synced: passkey.backedUp ? 'yes' : 'no',
          authenticator: passkey.authenticator ?? '',
          added: isoDate(passkey.createdAt),
          'last used': isoDate(passkey.lastUsedAt) ?? 'never',
        })),
        'no passkeys',
      );
    });

  acceptsGeneratedIds(users.command('remove-passkey'))
    .description('remove one passkey: it signs the user in no more (their sessions stay: see revoke-sessions)')
    .argument('<email>', 'the user’s email or sub')
    .argument('<passkey-id>', 'as shown by `users passkeys`')
    .action(async (email: string, passkeyId: string) => {
      const services = await context.services();
      const user = await services.users.require(email);
      const removed = await services.passkeys.remove(user.id, passkeyId);
      if (!removed) throw new NotFoundError(`no passkey ${passkeyId} of user ${user.email}`);
      process.stdout.write(`passkey "${removed.name}" of ${user.email} removed\n`);
    });

  users
    .command('find-subject')
    .description('the user an app knows by <sub>: for a pairwise client its own subject, for any other the user’s id')
    .argument('<client-id>', 'the client whose `sub` it is')
    .argument('<sub>', 'the subject, as the app has it (one beginning with "-" goes after --: users find-subject -- <client-id> <sub>)')
    .option('--json', 'print JSON')
    .action(async (clientId: string, subject: string, options) => {
      const services = await context.services();
      const client = await services.clients.require(clientId);
      const accountId = await accountOfSubject(services.db, services.pairwiseSalt, client, subject);
      const user = accountId ? await services.users.findById(accountId) : undefined;
      if (!user) throw new NotFoundError(`no user is ${subject} to ${clientId}`);
      if (options.json) return printJson(summary(user, services.twoFactor));
      process.stdout.write(`${user.email} (${user.id})\n`);
    });

  users
    .command('identities')
    .description('the accounts at other identity providers (IDENTITY_PROVIDERS_FILE) linked to a user')
    .argument('<email>', 'the user’s email or sub')
    .option('--json', 'print JSON')
    .action(async (email: string, options) => {
      const services = await context.services();
      const user = await services.users.require(email);
      const links = await services.linkedIdentities.listFor(user.id);
      if (options.json) return printJson(links);
      printTable(
        links.map((link) => ({
          provider: link.provider,
          subject: link.subject,
          email: link.email ?? '',
          linked: isoDate(link.createdAt),
          'last used': isoDate(link.lastUsedAt) ?? 'never',
        })),
        'no linked identities',
      );
    });

  users
    .command('unlink-identity')
    .description('unlink a user’s account at an identity provider: signing in there no longer signs in to this user')
    .argument('<email>', 'the user’s email or sub')
    .argument('<provider>', 'the provider’s id, as shown by `users identities`')
    .action(async (email: string, provider: string) => {
      const services = await context.services();
      const user = await services.users.require(email);
      await services.linkedIdentities.unlink(user.id, provider);
      process.stdout.write(`${provider} sign-in of ${user.email} unlinked\n`);
    });

  users
    .command('unlock')
    .description('lift the sign-in lock that wrong passwords put on a user, and forget those failures')
    .argument('<email>', 'the user’s email or sub')
    .action(async (email: string) => {
      const services = await context.services();
      const user = await services.users.require(email);
      const until = await services.locks.unlockAccount(user);
      process.stdout.write(until ? `${user.email} was locked until ${isoDate(until)}; unlocked\n` : `${user.email} was not locked\n`);
    });

  for (const [name, purpose, what] of [
    ['send-password-reset', 'password_reset', 'a link to choose a new password (as "Forgot your password?" does)'],
    ['send-email-confirmation', 'email_confirmation', 'a link that confirms their email address'],
  ] as const) {
    users
      .command(name)
      .description(`mail a user ${what}; it works once, for EMAIL_LINK_TTL`)
      .argument('<email>', 'the user’s email or sub')
      .action(async (email: string) => {
        const user = await (await context.services()).users.require(email);
        const { sentTo, expiresAt } = await (await context.linkMails()).send(user, purpose);
        process.stdout.write(`sent to ${sentTo}; the link works once, until ${isoDate(expiresAt)}\n`);
      });
  }

  users
    .command('require-totp')
    .description('make a user use two-step verification (an authenticator app): they set it up at their next sign-in')
    .argument('<email>', 'the user’s email or sub')
    .action(async (email: string) => {
      const user = await (await context.services()).users.update(email, { totpRequired: true });
      process.stdout.write(
        user.totpEnrolledAt
          ? `${user.email} must use two-step verification; they use an authenticator app already (set up ${isoDate(user.totpEnrolledAt)})\n`
          : `${user.email} must set up two-step verification (an authenticator app) at their next sign-in\n`,
      );
    });

  users
    .command('no-require-totp')
    .description('stop asking a user for two-step verification (an app they set up stays in use: see reset-totp)')
    .argument('<email>', 'the user’s email or sub')
    .action(async (email: string) => {
      const { users: repository, twoFactor } = await context.services();
      const user = await repository.update(email, { totpRequired: false });
      process.stdout.write(`${user.email} is no longer asked for two-step verification\n`);
      // The flag is one of the reasons only: an app set up, or a role, keeps it in use.
      if (user.totpEnrolledAt) process.stdout.write(`they keep using the authenticator app they set up; to remove it: authz users reset-totp ${user.email}\n`);
      else process.stdout.write(`${withoutAppNextSignIn(twoFactor, user)}\n`);
    });

  users
    .command('set-attribute')
    .description('set one of a user’s attributes (several values make a list); USER_CLAIMS makes an attribute a token claim')
    .argument('<email>', 'the user’s email or sub')
    .argument('<name>', 'the attribute, e.g. tenant_id')
    .argument('<values...>', 'its value, or values')
    .action(async (email: string, name: string, values: string[]) => {
      const user = await (await context.services()).users.update(email, { attributes: { [name]: values.length === 1 ? (values[0] as string) : values } });
      process.stdout.write(`${user.email}: ${name} = ${JSON.stringify(user.attributes[name])}\n`);
    });

  users
    .command('unset-attribute')
    .description('remove one of a user’s attributes')
    .argument('<email>', 'the user’s email or sub')
    .argument('<name>', 'the attribute')
    .action(async (email: string, name: string) => {
      const user = await (await context.services()).users.update(email, { attributes: { [name]: null } });
      process.stdout.write(`${user.email}: ${name} removed\n`);
    });

  users
    .command('delete')
    .description('delete a user with their passkeys, consents, refresh tokens and sessions (apps are sent logout tokens)')
    .argument('<email>', 'the user’s email or sub')
    .action(async (email: string) => {
      const user = await (await context.services()).users.remove(email);
      process.stdout.write(`deleted user ${user.email} (sub ${user.id})\n`);
    });

  users
    .command('require-password-change')
    .description('make a user choose a new password at their next sign-in (as Keycloak’s "Update Password" required action)')
    .argument('<email>', 'the user’s email or sub')
    .action(async (email: string) => {
      const user = await (await context.services()).users.update(email, { passwordChangeRequired: true });
      process.stdout.write(`${user.email} must choose a new password at their next sign-in (an open session is held at it too)\n`);
    });

  users
    .command('no-require-password-change')
    .description('stop asking a user to choose a new password')
    .argument('<email>', 'the user’s email or sub')
    .action(async (email: string) => {
      const user = await (await context.services()).users.update(email, { passwordChangeRequired: false });
      process.stdout.write(`${user.email} is no longer asked to choose a new password\n`);
    });

  users
    .command('remove-password')
    .description('remove a user’s password: they sign in with passkeys or another identity provider, or set one again by "Forgot your password?"')
    .argument('<email>', 'the user’s email or sub')
    .action(async (email: string) => {
      const { users: repository, passkeys, linkedIdentities } = await context.services();
      const user = await repository.removePassword(email);
      const [keys, links] = await Promise.all([passkeys.list(user.id), linkedIdentities.listFor(user.id)]);
      process.stdout.write(`removed the password of ${user.email}; their sessions stay (authz users revoke-sessions ${user.email} ends them)\n`);
      if (keys.length === 0 && links.length === 0) process.stdout.write('they have no passkey nor other sign-in: they sign in again only after "Forgot your password?"\n');
    });

  users
    .command('reset-totp')
    .description('remove a user’s authenticator app and recovery codes (a lost phone); they set it up again if it is required of them')
    .argument('<email>', 'the user’s email or sub')
    .action(async (email: string) => {
      const { users: repository, twoFactor } = await context.services();
      const { user, removedEnrollmentOf } = await repository.resetTwoFactor(email);
      process.stdout.write(
        removedEnrollmentOf
          ? `removed the authenticator app and recovery codes of ${user.email} (set up ${isoDate(removedEnrollmentOf)})\n`
          : `${user.email} had no authenticator app set up; nothing to remove\n`,
      );
      process.stdout.write(`${withoutAppNextSignIn(twoFactor, user)}\n`);
      // Sessions outlive a reset (UserRepository.resetTwoFactor); with a lost phone they may be the thief's too.
      if (removedEnrollmentOf) process.stdout.write(`their sessions stay; to sign them out everywhere: authz users revoke-sessions ${user.email}\n`);
    });

  for (const [name, verb] of [
    ['disable', 'disabled'],
    ['enable', 'enabled'],
  ] as const) {
    users
      .command(name)
      .description(name === 'disable' ? 'stop a user from signing in and end their sessions and tokens' : 're-enable a disabled user')
      .argument('<email>', 'the user’s email or sub')
      .action(async (email: string) => {
        const repository = (await context.services()).users;
        const user = await (name === 'disable' ? repository.disable(email) : repository.enable(email));
        process.stdout.write(`${user.email} ${verb}\n`);
      });
  }
}
