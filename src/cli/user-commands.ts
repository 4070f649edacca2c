import type { Command } from 'commander';
import argon2 from 'argon2';
import { HASH_PARAMS } from '../auth/password-hasher.js';
import { ALL_PERMISSIONS, parsePermissions } from '../auth/users-file.js';
import type { LoadedConfig } from '../config/load.js';
import { execute } from '../partners/apply.js';
import { NAME } from '../partners/partner-file.js';
import { cliActor } from '../store/change-log.js';
import type { UserSpec } from '../store/partner-model.js';
import { loadPartners } from '../store/partner-repo.js';
import { readPassword } from './password-input.js';
import { withStore } from './store-cli.js';
import { describeUser } from './user-show.js';

export interface UserCommandDeps {
  loadConfig: (file?: string) => LoadedConfig;
}

/**
 * `ftpsd user add|passwd|del|list|show|disable|enable`: changes the store, each change in one transaction with its
 * change-log record (the running server writes it to the audit trail). A running server sees a change at the next
 * login; disabling or deleting also closes the user's open sessions within store.pollIntervalMs.
 */
export function registerUserCommands(program: Command, deps: UserCommandDeps): void {
  const user = program.command('user').description('manage FTP users in the store (argon2id password hashes)');
  const actor = cliActor();

  /** Loads the user, lets `change` produce its new state, stores it with a change-log record. */
  const changeUser = (opts: { config?: string }, name: string, action: string, change: (u: UserSpec) => Promise<UserSpec> | UserSpec) =>
    withStore(deps.loadConfig(opts.config), (store) =>
      store.db.transaction().execute(async (trx) => {
        const before = (await loadPartners(trx, { user: name })).users[name];
        if (before === undefined) throw new Error(`no user "${name}" in the store (${store.location})`);
        const after = await change(before);
        await execute(trx, [{ action: 'update', label: action, kind: 'user', name, keys: [], before, after }], actor, Date.now());
        return store.location;
      }),
    );

  user
    .command('add')
    .description('add a user; the password is read from a prompt on a terminal, else from standard input')
    .argument('<name>', 'user name (letters, digits, . _ @ -)')
    .requiredOption('--home <dir>', 'home directory; the user can reach nothing outside it ("{user}" is replaced by the name)')
    .option('--perms <list>', `comma-separated permissions: ${ALL_PERMISSIONS.join(',')} or "all"`, 'all')
    .option('--allow <cidrs>', 'comma-separated client networks allowed to log in (default: any)')
    .option('--group <names>', 'comma-separated groups the user inherits from, in order')
    .option('--upload-rate <bytes>', "this user's upload limit per transfer, bytes per second (0: none; default: limits.uploadBytesPerSecond)")
    .option('--download-rate <bytes>', "this user's download limit per transfer, bytes per second (0: none; default: limits.downloadBytesPerSecond)")
    .option('-c, --config <file>', 'configuration file')
    .action(async (name: string, opts: { home: string; perms: string; allow?: string; group?: string; uploadRate?: string; downloadRate?: string; config?: string }) => {
      if (!NAME.test(name)) throw new Error(`invalid user name "${name}": use letters, digits and . _ @ - (at most 64)`);
      const permissions = parsePermissions(opts.perms);
      const policy: UserSpec['policy'] = {};
      if (opts.allow !== undefined) policy.allowedNetworks = opts.allow.split(',').map((s) => s.trim());
      if (opts.uploadRate !== undefined) policy.uploadBytesPerSecond = parseRate('--upload-rate', opts.uploadRate);
      if (opts.downloadRate !== undefined) policy.downloadBytesPerSecond = parseRate('--download-rate', opts.downloadRate);
      const groups = opts.group === undefined ? [] : opts.group.split(',').map((g) => g.trim()).filter((g) => g !== '');
      const loaded = deps.loadConfig(opts.config);
      const location = await withStore(loaded, async (store) => {
        const set = await loadPartners(store.db);
        if (set.users[name] !== undefined) throw new Error(`user "${name}" already exists (use \`ftpsd user passwd ${name}\`)`);
        for (const g of groups) if (set.groups[g] === undefined) throw new Error(`no group "${g}" in the store (define it in a partners file: ftpsd apply -f)`);
        const password = await readPassword(`Password for ${name}: `, true);
        const spec: UserSpec = { name, description: '', home: opts.home, passwordHash: await argon2.hash(password, HASH_PARAMS), groups, disabled: false, expiresAt: null, mounts: {}, permissions: { '/': permissions }, policy };
        await store.db.transaction().execute((trx) => execute(trx, [{ action: 'create', kind: 'user', name, keys: [], after: spec }], actor, Date.now()));
        return store.location;
      });
      console.log(`user ${name} added (home ${opts.home}, permissions ${permissions.join(',')}) to ${location}`);
    });

  user
    .command('passwd')
    .description('set a new password; read from a prompt on a terminal, else from standard input')
    .argument('<name>')
    .option('-c, --config <file>', 'configuration file')
    .action(async (name: string, opts: { config?: string }) => {
      await changeUser(opts, name, 'passwd', async (u) => ({ ...u, passwordHash: await argon2.hash(await readPassword(`New password for ${name}: `, true), HASH_PARAMS) }));
      console.log(`password of ${name} changed`);
    });

  for (const [verb, disabled] of [['disable', true], ['enable', false]] as const) {
    user
      .command(verb)
      .description(disabled ? 'refuse logins of a user and close its open sessions (a running server does within store.pollIntervalMs)' : 'allow a disabled user to log in again')
      .argument('<name>')
      .option('-c, --config <file>', 'configuration file')
      .action(async (name: string, opts: { config?: string }) => {
        await changeUser(opts, name, verb, (u) => ({ ...u, disabled }));
        console.log(`user ${name} ${disabled ? 'disabled' : 'enabled'}`);
      });
  }

  user
    .command('del')
    .description('delete a user (its home directory and folders are left alone)')
    .argument('<name>')
    .option('-c, --config <file>', 'configuration file')
    .action(async (name: string, opts: { config?: string }) => {
      await withStore(deps.loadConfig(opts.config), (store) =>
        store.db.transaction().execute(async (trx) => {
          const before = (await loadPartners(trx, { user: name })).users[name];
          if (before === undefined) throw new Error(`no user "${name}" in the store (${store.location})`);
          await execute(trx, [{ action: 'delete', kind: 'user', name, keys: [], before }], actor, Date.now());
        }),
      );
      console.log(`user ${name} deleted`);
    });

  user
    .command('list')
    .description('list users with home and permissions at /')
    .option('-c, --config <file>', 'configuration file')
    .action(async (opts: { config?: string }) => {
      await withStore(deps.loadConfig(opts.config), async (store) => {
        const set = await loadPartners(store.db);
        const names = Object.keys(set.users).sort();
        if (names.length === 0) console.log(`no users in ${store.location}`);
        for (const n of names) {
          const u = set.users[n]!;
          const p = u.policy;
          const cols = [
            n,
            `home=${u.home ?? '(virtual)'}`,
            `permissions=${(u.permissions['/'] ?? []).join(',')}`,
            ...(u.groups.length > 0 ? [`groups=${u.groups.join(',')}`] : []),
            ...(p.allowedNetworks !== undefined && p.allowedNetworks.length > 0 ? [`allow=${p.allowedNetworks.join(',')}`] : []),
            ...(p.uploadBytesPerSecond === undefined ? [] : [`upload-rate=${p.uploadBytesPerSecond}`]),
            ...(p.downloadBytesPerSecond === undefined ? [] : [`download-rate=${p.downloadBytesPerSecond}`]),
            ...(u.disabled ? ['disabled'] : []),
          ];
          console.log(cols.join('\t'));
        }
      });
    });

  user
    .command('show')
    .description("a user's effective settings, each with where it comes from (the user, a group, or the default)")
    .argument('<name>')
    .option('-c, --config <file>', 'configuration file')
    .action(async (name: string, opts: { config?: string }) => {
      const loaded = deps.loadConfig(opts.config);
      await withStore(loaded, async (store, abs) => {
        const lines = await describeUser(store, name, loaded.config, abs);
        if (lines === null) throw new Error(`no user "${name}" in the store (${store.location})`);
        for (const l of lines) console.log(l);
      });
    });
}

/** A bytes-per-second value from the command line: a whole number, 0 for no limit. */
function parseRate(option: string, text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n)) throw new Error(`${option} takes a whole number of bytes per second (0: no limit), not "${text}"`);
  return n;
}
