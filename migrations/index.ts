/**
 * The list of migrations, in order. Listed here rather than discovered from the folder, so the same code runs
 * under tsx, jest and the compiled build. Migrations are forward-only: add a new file, never edit an applied one.
 */
import type { Knex } from 'knex';
import * as initial from './20261124_0001_initial.js';
import * as security from './20261125_0002_security.js';
import * as ownerIndexes from './20261204_0003_owner_indexes.js';
import * as modelsFillfactor from './20261204_0004_models_fillfactor.js';
import * as deviceClients from './20261205_0005_device_clients.js';
import * as refreshForks from './20261206_0006_refresh_forks.js';
import * as twoFactor from './20261206_0007_two_factor.js';
import * as emailLinks from './20261206_0008_email_links.js';
import * as emailChangeLinks from './20261206_0009_email_change_links.js';
import * as passkeys from './20261207_0010_passkeys.js';
import * as passwordChangeRequired from './20261207_0011_password_change_required.js';
import * as serverSettings from './20261207_0012_server_settings.js';
import * as userAttributes from './20261207_0013_user_attributes.js';
import * as linkedIdentities from './20261207_0014_linked_identities.js';
import * as clientRegistration from './20261207_0015_client_registration.js';
import * as passwordHistory from './20261207_0016_password_history.js';
import * as termsAcceptance from './20261207_0017_terms_acceptance.js';
import * as webhooks from './20261207_0018_webhooks.js';
import * as registrationUse from './20261207_0019_registration_use.js';
import * as dpopNonceSecret from './20261208_0020_dpop_nonce_secret.js';
import * as apiSigningAlg from './20261208_0021_api_signing_alg.js';
import * as groups from './20261208_0022_groups.js';

interface Migration {
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
  /** `{ transaction: false }` for a migration that cannot run in a transaction (knex reads it). */
  config?: { transaction?: boolean };
}

const migrations: Record<string, Migration> = {
  '20261124_0001_initial': initial,
  '20261125_0002_security': security,
  '20261204_0003_owner_indexes': ownerIndexes,
  '20261204_0004_models_fillfactor': modelsFillfactor,
  '20261205_0005_device_clients': deviceClients,
  '20261206_0006_refresh_forks': refreshForks,
  '20261206_0007_two_factor': twoFactor,
  '20261206_0008_email_links': emailLinks,
  '20261206_0009_email_change_links': emailChangeLinks,
  '20261207_0010_passkeys': passkeys,
  '20261207_0011_password_change_required': passwordChangeRequired,
  '20261207_0012_server_settings': serverSettings,
  '20261207_0013_user_attributes': userAttributes,
  '20261207_0014_linked_identities': linkedIdentities,
  '20261207_0015_client_registration': clientRegistration,
  '20261207_0016_password_history': passwordHistory,
  '20261207_0017_terms_acceptance': termsAcceptance,
  '20261207_0018_webhooks': webhooks,
  '20261207_0019_registration_use': registrationUse,
  '20261208_0020_dpop_nonce_secret': dpopNonceSecret,
  '20261208_0021_api_signing_alg': apiSigningAlg,
  '20261208_0022_groups': groups,
};

export const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: async () => Object.keys(migrations),
  getMigrationName: (name) => name,
  getMigration: async (name) => {
    const migration = migrations[name];
    if (!migration) throw new Error(`unknown migration ${name}`);
    return migration;
  },
};
