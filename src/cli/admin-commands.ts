import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import argon2 from 'argon2';
import { HASH_PARAMS } from '../auth/password-hasher.js';
import type { LoadedConfig } from '../config/load.js';
import { NAME } from '../partners/partner-file.js';
import { deleteTokensOf, findAccount, insertAccount, listAccounts, updateAccount } from '../store/admin-repo.js';
import { cliActor, recordChange } from '../store/change-log.js';
import type { AdminRole } from '../store/schema.js';
import { withStore } from './store-cli.js';

// `ftpsd admin list|reset`: the way back in when the admin password is lost (or the first start's one-time password
// was missed), from the shell of the server. A reset gives a new one-time password, shown once, to be changed at the
// next login; the account's logins end and its second factor is turned off.

export interface AdminCommandDeps {
  loadConfig: (file?: string) => LoadedConfig;
}

const ROLES: readonly AdminRole[] = ['admin', 'operator', 'auditor'];

export function registerAdminCommands(program: Command, deps: AdminCommandDeps): void {
  const admin = program.command('admin').description('admin accounts of the web admin and the REST API');

  admin
    .command('list')
    .description('list admin accounts with role and state')
    .option('-c, --config <file>', 'configuration file')
    .action(async (opts: { config?: string }) => {
      await withStore(deps.loadConfig(opts.config), async (store) => {
        const accounts = await listAccounts(store.db);
        if (accounts.length === 0) console.log(`no admin accounts in ${store.location}`);
        for (const a of accounts) {
          const state = [a.disabled ? 'disabled' : 'enabled', a.totpSecret === null ? '' : 'totp', a.mustChangePassword ? 'one-time password' : ''].filter((x) => x !== '').join(', ');
          console.log(`${a.name}\t${a.role}\t${state}\tlast login ${a.lastLoginAt === null ? 'never' : new Date(a.lastLoginAt).toISOString()}`);
        }
      });
    });

  admin
    .command('reset')
    .description('give an admin account a new one-time password (creating it when missing), enable it and turn its second factor off')
    .argument('<name>', 'account name')
    .option('--role <role>', `role of an account created now: ${ROLES.join(', ')}`, 'admin')
    .option('-c, --config <file>', 'configuration file')
    .action(async (name: string, opts: { role: string; config?: string }) => {
      if (!NAME.test(name)) throw new Error(`invalid account name "${name}": use letters, digits and . _ @ - (at most 64)`);
      if (!ROLES.includes(opts.role as AdminRole)) throw new Error(`--role must be one of ${ROLES.join(', ')}`);
      const password = randomBytes(12).toString('base64url');
      const hash = await argon2.hash(password, HASH_PARAMS);
      const created = await withStore(deps.loadConfig(opts.config), (store) =>
        store.db.transaction().execute(async (trx) => {
          const now = Date.now();
          const before = await findAccount(trx, name);
          if (before === null) await insertAccount(trx, { name, role: opts.role as AdminRole, passwordHash: hash, mustChangePassword: true }, now);
          else {
            await updateAccount(trx, name, { passwordHash: hash, mustChangePassword: true, disabled: false, totpSecret: null, totpPending: null }, now);
            await deleteTokensOf(trx, name);
          }
          await recordChange(trx, { actor: cliActor(), action: before === null ? 'create' : 'password_reset', entityKind: 'admin', entityName: name, ...(before === null ? {} : { before: { disabled: before.disabled, totp: before.totpSecret !== null } }), after: { role: before?.role ?? opts.role, disabled: false, totp: false, mustChangePassword: true } }, now);
          return before === null;
        }),
      );
      console.log(`admin account ${name} ${created ? `created (role ${opts.role})` : 'reset'}; one-time password, shown only now:\n${password}`);
    });
}
