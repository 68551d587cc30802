/** `authz clients …`: applications that ask us for tokens. */
import { readFileSync } from 'node:fs';
import { type Command, Option } from 'commander';
import { jwksOfCertificates } from '../clients/client-certificates.js';
import { InputError } from '../errors.js';
import { CLIENT_TYPES, type ClientRecord } from '../clients/clients.js';
import { SUBJECT_TYPES } from '../clients/sector-identifiers.js';
import { DEFAULT_ENC, ENCRYPTION_ALGS, ENCRYPTION_ENCS, type ResponseEncryption } from '../clients/response-encryption.js';
import { SIGNING_ALGS } from '../keys/signing-keys.js';
import type { CliContext } from './context.js';
import { acceptsGeneratedIds, durationOption } from './options.js';
import { registerClientRegistrationCommands } from './client-registration.js';
import { collect, isoDate, printJson, printTable, splitList } from './output.js';

const summary = (client: ClientRecord) => ({
  client_id: client.clientId,
  name: client.name,
  type: client.type,
  auth: client.tokenEndpointAuthMethod,
  first_party: client.firstParty,
  status: client.disabledAt ? 'disabled' : 'active',
  created: isoDate(client.createdAt),
});

const details = (client: ClientRecord) => ({
  ...summary(client),
  grant_types: client.grantTypes,
  redirect_uris: client.redirectUris,
  post_logout_redirect_uris: client.postLogoutRedirectUris,
  backchannel_logout_uri: client.backchannelLogoutUri,
  backchannel_logout_session_required: client.backchannelLogoutUri ? client.backchannelLogoutSessionRequired : null,
  require_dpop: client.requireDpop,
  certificate_bound_tokens: client.certificateBoundTokens,
  require_par: client.requirePar,
  require_signed_request_object: client.requireSignedRequestObject,
  require_mfa: client.requireMfa,
  signed_userinfo: client.signedUserinfo,
  signing_alg: client.signingAlg,
  response_encryption: client.responseEncryption,
  fapi2: client.fapi2,
  token_exchange_from: client.tokenExchangeFrom,
  client_uri: client.clientUri,
  policy_uri: client.policyUri,
  tos_uri: client.tosUri,
  subject_type: client.subjectType,
  sector_identifier_uri: client.sectorIdentifierUri,
  pairwise_sector: client.pairwiseSector,
  scope: client.scope,
  roles: client.roles,
});

const BACKCHANNEL_URI_HELP = 'where to POST a logout token when a user’s session ends (web clients; https, or http on localhost outside production)';
const SESSION_REQUIRED_HELP = 'logout tokens (and ID tokens) carry the session id `sid` (the default with a back-channel logout URI)';
const NO_SESSION_REQUIRED_HELP = 'logout tokens name only the user (`sub`), for apps that log the user out of every session they have';
const REQUIRE_DPOP_HELP = 'refuse its token requests without a DPoP proof: every token it gets is bound to its key (RFC 9449)';
const NO_REQUIRE_DPOP_HELP = 'accept Bearer token requests too (the default)';
const CERTIFICATE_BOUND_HELP = 'bind its tokens to the TLS client certificate it presents, which it must (RFC 8705; needs MTLS_CERTIFICATE_HEADER)';
const NO_CERTIFICATE_BOUND_HELP = 'tokens not bound to a certificate (the default)';
const REQUIRE_PAR_HELP = 'refuse its authorization requests unless pushed first (RFC 9126; web and spa clients)';
const NO_REQUIRE_PAR_HELP = 'accept plain authorization URLs too (the default)';
const REQUIRE_SIGNED_REQUEST_HELP = 'refuse its authorization requests unless sent as a request object signed with its key (RFC 9101; web and spa clients with keys)';
const NO_REQUIRE_SIGNED_REQUEST_HELP = 'accept unsigned authorization requests too (the default)';
const TOKEN_EXCHANGE_FROM_HELP =
  'web and service clients: it is the back end of this API (its resource indicator; repeat for more) and may exchange its users’ access tokens for tokens to the APIs it is registered for (RFC 8693); on update the list replaces the old one';
const REQUIRE_MFA_HELP = 'its users sign in with two steps: password and an authenticator app’s code (set up at their next sign-in if they have none)';
const SIGNED_USERINFO_HELP = 'userinfo answers it with a JWT signed with the server’s key (userinfo_signed_response_alg) instead of plain JSON';
const SIGNING_ALG_HELP = 'what signs its ID tokens and signed responses: RS256 (the default), or PS256, ES256 or EdDSA once keys/ holds such a key (`authz keys rotate --alg <alg>`)';
const ENCRYPT_RESPONSES_HELP =
  'encrypt its ID tokens, JARM responses, JWT introspection answers and signed userinfo to its own key (JWE; needs --jwks-uri with a key for the algorithm, or jwks through the admin API)';
const FAPI2_HELP =
  'the FAPI 2.0 Security Profile: web clients with --auth-method private_key_jwt or mutual TLS, --require-dpop or --certificate-bound-tokens and --signing-alg PS256, ES256 or EdDSA; their requests must be pushed (PAR) with PKCE, and refresh tokens do not rotate';
const NO_SIGNED_USERINFO_HELP = 'userinfo answers it with plain JSON (the default)';
const NO_REQUIRE_MFA_HELP = 'two steps only for users who use them, or when the app asks (acr_values; the default)';

/** The options `clients add` and `clients update` share: the back-channel logout registration and the policies. */
function withLogoutAndPolicyOptions(command: Command): Command {
  return command
    .option('--backchannel-logout-uri <uri>', BACKCHANNEL_URI_HELP)
    .option('--backchannel-logout-session-required', SESSION_REQUIRED_HELP)
    .option('--no-backchannel-logout-session-required', NO_SESSION_REQUIRED_HELP)
    .option('--require-dpop', REQUIRE_DPOP_HELP)
    .option('--no-require-dpop', NO_REQUIRE_DPOP_HELP)
    .option('--certificate-bound-tokens', CERTIFICATE_BOUND_HELP)
    .option('--no-certificate-bound-tokens', NO_CERTIFICATE_BOUND_HELP)
    .option('--require-par', REQUIRE_PAR_HELP)
    .option('--no-require-par', NO_REQUIRE_PAR_HELP)
    .option('--require-signed-request', REQUIRE_SIGNED_REQUEST_HELP)
    .option('--no-require-signed-request', NO_REQUIRE_SIGNED_REQUEST_HELP)
    .option('--require-mfa', REQUIRE_MFA_HELP)
    .option('--no-require-mfa', NO_REQUIRE_MFA_HELP)
    .option('--signed-userinfo', SIGNED_USERINFO_HELP)
    .option('--no-signed-userinfo', NO_SIGNED_USERINFO_HELP)
    .addOption(new Option('--signing-alg <alg>', SIGNING_ALG_HELP).choices([...SIGNING_ALGS]))
    .addOption(new Option('--encrypt-responses <alg>', ENCRYPT_RESPONSES_HELP).choices([...ENCRYPTION_ALGS]))
    .addOption(new Option('--encryption-enc <enc>', `with --encrypt-responses: the content encryption (default ${DEFAULT_ENC})`).choices([...ENCRYPTION_ENCS]))
    .option('--no-encrypt-responses', 'responses signed only, not encrypted (the default)')
    .option('--fapi2', FAPI2_HELP)
    .option('--no-fapi2', 'no FAPI 2.0 profile (the default)')
    .option('--token-exchange-from <indicator>', TOKEN_EXCHANGE_FROM_HELP, collect)
    .option('--client-uri <url>', 'its home page, linked on the consent page ("" removes it)')
    .option('--policy-uri <url>', 'its privacy policy, linked on the consent page ("" removes it)')
    .option('--tos-uri <url>', 'its terms of service, linked on the consent page ("" removes it)');
}

/**
 * --encrypt-responses and --encryption-enc as the repository takes them: the encryption, null for
 * --no-encrypt-responses, undefined when neither is given. An enc without its alg is a usage error.
 */
function responseEncryptionOption(program: Command, options: { encryptResponses?: ResponseEncryption['alg'] | false; encryptionEnc?: ResponseEncryption['enc'] }) {
  if (options.encryptResponses === false) return null;
  if (options.encryptResponses) return { alg: options.encryptResponses, enc: options.encryptionEnc ?? DEFAULT_ENC };
  if (options.encryptionEnc) program.error('error: --encryption-enc goes with --encrypt-responses <alg>', { exitCode: 2 });
  return undefined;
}

/** A --certificate-file's PEM; one that cannot be read is a refused input, naming it. */
function readCertificateFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new InputError(`--certificate-file: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
}

/** --client-uri, --policy-uri, --tos-uri as changes: "" removes one (null), an absent option leaves it. */
function appLinkChanges(options: { clientUri?: string; policyUri?: string; tosUri?: string }) {
  const change = (value: string | undefined) => (value === undefined ? undefined : value || null);
  return { clientUri: change(options.clientUri), policyUri: change(options.policyUri), tosUri: change(options.tosUri) };
}

export function registerClientCommands(program: Command, context: CliContext): void {
  const clients = program.command('clients').description('applications that ask for tokens');
  registerClientRegistrationCommands(clients, context);

  withLogoutAndPolicyOptions(clients.command('add'))
    .description('register a client; a secret, if it gets one, is printed once')
    .requiredOption('--type <type>', `web (server-side app), spa (browser or mobile app, PKCE), service (client credentials), device (TV or command-line tool: the user enters a code on another screen)`)
    .requiredOption('--name <name>', 'shown on the consent page')
    .option('--redirect-uri <uri>', 'an allowed redirect URI (repeat for more)', collect, [])
    .option('--post-logout-redirect-uri <uri>', 'an allowed post-logout redirect URI (repeat for more)', collect, [])
    .option('--first-party', 'your own app: users are not asked for consent')
    .option('--native', 'spa clients: a native app (desktop, mobile, command line; RFC 8252): any loopback port on the way back, consent each time')
    .option('--allow-password-grant', 'legacy first-party apps only: accept grant_type=password (discouraged, RFC 9700 §2.4)')
    .option('--auth-method <method>', 'client_secret_basic (default), client_secret_post, private_key_jwt, or with mutual TLS tls_client_auth or self_signed_tls_client_auth')
    .option('--jwks-uri <url>', 'where the client publishes its public keys (private_key_jwt; self_signed_tls_client_auth with x5c)')
    .option('--certificate-file <pem>', 'self_signed_tls_client_auth: the certificate it presents (its public key and x5c become its jwks; repeat for a rollover)', collect)
    .option('--tls-subject-dn <dn>', 'tls_client_auth: the subject DN its certificate must have, as RFC 4514 writes it (CN=…,O=…,C=…)')
    .option('--tls-san-dns <name>', 'tls_client_auth: a DNS name its certificate must list (instead of the DN)')
    .option('--tls-san-uri <uri>', 'tls_client_auth: a URI its certificate must list')
    .option('--tls-san-ip <address>', 'tls_client_auth: an IP address its certificate must list')
    .option('--tls-san-email <address>', 'tls_client_auth: an email address its certificate must list')
    .option('--scope <scopes>', 'scopes it may ask for, space- or comma-separated')
    .option('--roles <roles>', 'roles of the client itself, for its client-credentials tokens', splitList, [])
    .option('--client-id <id>', 'choose the client id (default: random)')
    .addOption(
      new Option('--subject-type <type>', 'pairwise: its users get a `sub` of their own for its sector (OpenID Connect Core §8), so apps cannot match them up')
        .choices([...SUBJECT_TYPES])
        .default('public'),
    )
    .option('--sector-identifier-uri <url>', 'pairwise with redirect URIs on more than one host: a URL answering a JSON array of them all')
    .option('--json', 'print JSON')
    .action(async (options) => {
      if (!(CLIENT_TYPES as readonly string[]).includes(options.type)) {
        program.error(`error: --type must be one of ${CLIENT_TYPES.join(', ')}`, { exitCode: 2 });
      }
      const { client, secret } = await (await context.services()).clients.create({
        type: options.type,
        name: options.name,
        clientId: options.clientId,
        redirectUris: options.redirectUri,
        postLogoutRedirectUris: options.postLogoutRedirectUri,
        firstParty: Boolean(options.firstParty),
        nativeApp: Boolean(options.native),
        allowPasswordGrant: Boolean(options.allowPasswordGrant),
        tokenEndpointAuthMethod: options.authMethod,
        jwksUri: options.jwksUri,
        jwks: options.certificateFile ? jwksOfCertificates(options.certificateFile.map(readCertificateFile)) : undefined,
        tlsClientAuthSubjectDn: options.tlsSubjectDn,
        tlsClientAuthSanDns: options.tlsSanDns,
        tlsClientAuthSanUri: options.tlsSanUri,
        tlsClientAuthSanIp: options.tlsSanIp,
        tlsClientAuthSanEmail: options.tlsSanEmail,
        certificateBoundTokens: options.certificateBoundTokens,
        scope: options.scope ? splitList(options.scope).join(' ') : undefined,
        roles: options.roles,
        backchannelLogoutUri: options.backchannelLogoutUri,
        backchannelLogoutSessionRequired: options.backchannelLogoutSessionRequired,
        requireDpop: options.requireDpop,
        requirePar: options.requirePar,
        requireSignedRequestObject: options.requireSignedRequest,
        requireMfa: options.requireMfa,
        signedUserinfo: options.signedUserinfo,
        signingAlg: options.signingAlg,
        responseEncryption: responseEncryptionOption(program, options) ?? undefined,
        fapi2: options.fapi2,
        tokenExchangeFrom: options.tokenExchangeFrom,
        clientUri: options.clientUri || undefined,
        policyUri: options.policyUri || undefined,
        tosUri: options.tosUri || undefined,
        subjectType: options.subjectType,
        sectorIdentifierUri: options.sectorIdentifierUri,
      });
      if (options.json) return printJson({ ...details(client), ...(secret ? { client_secret: secret } : {}) });
      process.stdout.write(`created ${client.type} client "${client.name}"\nclient_id:     ${client.clientId}\n`);
      if (client.pairwiseSector) process.stdout.write(`subjects:      pairwise, for the sector ${client.pairwiseSector}\n`);
      if (secret) process.stdout.write(`client_secret: ${secret}\n(the secret is shown once and stored only as a hash)\n`);
    });

  clients
    .command('list')
    .description('list clients')
    .option('--json', 'print JSON')
    .action(async (options) => {
      const records = await (await context.services()).clients.list();
      if (options.json) printJson(records.map(details));
      else printTable(records.map(summary), 'no clients yet: add one with `authz clients add --type … --name …`');
    });

  acceptsGeneratedIds(clients.command('show'))
    .description('show one client (as JSON, with or without --json)')
    .argument('<client-id>')
    .option('--json', 'print JSON (the default here)')
    .action(async (clientId: string) => {
      printJson(details(await (await context.services()).clients.require(clientId)));
    });

  acceptsGeneratedIds(withLogoutAndPolicyOptions(clients.command('update')))
    .description('change a client; a list given replaces the old one, --add-… and --remove-… edit it')
    .argument('<client-id>')
    .option('--name <name>', 'shown on the consent page')
    .option('--redirect-uri <uri>', 'the allowed redirect URIs, replacing the old ones (repeat for more)', collect)
    .option('--add-redirect-uri <uri>', 'allow one more redirect URI (repeatable)', collect)
    .option('--remove-redirect-uri <uri>', 'no longer allow a redirect URI (repeatable)', collect)
    .option('--post-logout-redirect-uri <uri>', 'the allowed post-logout redirect URIs, replacing the old ones (repeatable)', collect)
    .option('--scope <scopes>', 'scopes it may ask for, space- or comma-separated ("" for none)')
    .option('--roles <roles>', 'roles of the client itself, comma-separated ("" for none)', splitList)
    .option('--first-party', 'your own app: users are not asked for consent')
    .option('--no-first-party', 'users are asked for consent')
    .option('--no-backchannel-logout-uri', 'send the client no more logout tokens')
    .option('--no-token-exchange', 'it may exchange tokens no more (clears --token-exchange-from)')
    .option('--json', 'print JSON')
    .action(async (clientId: string, options) => {
      const repository = (await context.services()).clients;
      const current = await repository.require(clientId);
      const edited = editedList(current.redirectUris, options.redirectUri, options.addRedirectUri, options.removeRedirectUri);
      const changes = {
        name: options.name,
        redirectUris: edited,
        postLogoutRedirectUris: options.postLogoutRedirectUri,
        scope: options.scope === undefined ? undefined : splitList(options.scope).join(' '),
        roles: options.roles,
        firstParty: options.firstParty,
        // --no-backchannel-logout-uri gives false: remove it.
        backchannelLogoutUri: options.backchannelLogoutUri === false ? null : options.backchannelLogoutUri,
        backchannelLogoutSessionRequired: options.backchannelLogoutSessionRequired,
        requireDpop: options.requireDpop,
        certificateBoundTokens: options.certificateBoundTokens,
        requirePar: options.requirePar,
        requireSignedRequestObject: options.requireSignedRequest,
        requireMfa: options.requireMfa,
        signedUserinfo: options.signedUserinfo,
        signingAlg: options.signingAlg,
        responseEncryption: responseEncryptionOption(program, options),
        fapi2: options.fapi2,
        // --no-token-exchange gives false: exchange no more.
        tokenExchangeFrom: options.tokenExchange === false ? [] : options.tokenExchangeFrom,
        ...appLinkChanges(options),
      };
      if (Object.values(changes).every((value) => value === undefined)) {
        program.error('error: nothing to change: give at least one option (see --help)', { exitCode: 2 });
      }
      const client = await repository.update(clientId, changes);
      if (options.json) return printJson(details(client));
      process.stdout.write(`updated client ${client.clientId}\n`);
    });

  acceptsGeneratedIds(clients.command('rotate-secret'))
    .description('issue a new secret; the old one keeps working for --keep-old-for')
    .argument('<client-id>')
    .option('--keep-old-for <duration>', 'how long the old secret still works (0 = stop now)', durationOption, 86_400)
    .option('--json', 'print JSON')
    .action(async (clientId: string, options) => {
      const { secret, oldSecretsExpireAt } = await (await context.services()).clients.rotateSecret(clientId, options.keepOldFor);
      if (options.json) return printJson({ client_id: clientId, client_secret: secret, old_secrets_expire_at: isoDate(oldSecretsExpireAt) });
      process.stdout.write(`client_secret: ${secret}\n(shown once; the previous secret stops working at ${isoDate(oldSecretsExpireAt)})\n`);
    });

  acceptsGeneratedIds(clients.command('remove'))
    .description('delete a client with its secrets, grants and refresh tokens')
    .argument('<client-id>')
    .action(async (clientId: string) => {
      await (await context.services()).clients.remove(clientId);
      process.stdout.write(`removed client ${clientId}\n`);
    });

  acceptsGeneratedIds(clients.command('unlock'))
    .description('lift the lock that failed authentications put on a client, and forget those failures')
    .argument('<client-id>')
    .action(async (clientId: string) => {
      const services = await context.services();
      await services.clients.require(clientId);
      const until = await services.locks.unlockClient(clientId);
      process.stdout.write(until ? `client ${clientId} was locked until ${isoDate(until)}; unlocked\n` : `client ${clientId} was not locked\n`);
    });

  for (const name of ['disable', 'enable'] as const) {
    acceptsGeneratedIds(clients.command(name))
      .description(name === 'disable' ? 'refuse every request from a client (reversible)' : 're-enable a disabled client')
      .argument('<client-id>')
      .action(async (clientId: string) => {
        const repository = (await context.services()).clients;
        await (name === 'disable' ? repository.disable(clientId) : repository.enable(clientId));
        process.stdout.write(`client ${clientId} ${name}d\n`);
      });
  }
}

/** A list replaced by `replacement`, or edited by `added` and `removed`; undefined when none of them is given. */
function editedList(current: string[], replacement?: string[], added?: string[], removed?: string[]): string[] | undefined {
  if (!replacement && !added && !removed) return undefined;
  const base = replacement ?? current;
  return [...new Set([...base, ...(added ?? [])])].filter((item) => !removed?.includes(item));
}
