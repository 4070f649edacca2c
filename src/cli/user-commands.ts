import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { HASH_PARAMS } from '../auth/password-hasher.js';
import { ALL_PERMISSIONS, parsePermissions, readUsersFile, writeUsersFile } from '../auth/users-file.js';
import { resolvePath, type LoadedConfig } from '../config/load.js';
import { readPassword } from './password-input.js';
import argon2 from 'argon2';

export interface UserCommandDeps {
  loadConfig: (file?: string) => LoadedConfig;
}

const NAME = /^[A-Za-z0-9._@-]{1,64}$/;

/** `ftpsd user add|passwd|del|list`: edits the users file atomically; a running server picks it up on SIGHUP. */
export function registerUserCommands(program: Command, deps: UserCommandDeps): void {
  const user = program.command('user').description('manage FTP users (argon2id password hashes in users.file)');
  const usersPath = (opts: { config?: string }) => {
    const { config, baseDir } = deps.loadConfig(opts.config);
    return { file: resolvePath(baseDir, config.users.file), config };
  };

  user
    .command('add')
    .description('add a user; the password is read from a prompt on a terminal, else from standard input')
    .argument('<name>', 'user name (letters, digits, . _ @ -)')
    .requiredOption('--home <dir>', 'home directory; the user can reach nothing outside it')
    .option('--perms <list>', `comma-separated permissions: ${ALL_PERMISSIONS.join(',')} or "all"`, 'all')
    .option('--allow <cidrs>', 'comma-separated client networks allowed to log in (default: any)')
    .option('--upload-rate <bytes>', "this user's upload limit per transfer, bytes per second (0: none; default: limits.uploadBytesPerSecond)")
    .option('--download-rate <bytes>', "this user's download limit per transfer, bytes per second (0: none; default: limits.downloadBytesPerSecond)")
    .option('-c, --config <file>', 'configuration file')
    .action(async (name: string, opts: { home: string; perms: string; allow?: string; uploadRate?: string; downloadRate?: string; config?: string }) => {
      if (!NAME.test(name)) throw new Error(`invalid user name "${name}": use letters, digits and . _ @ - (at most 64)`);
      const { file } = usersPath(opts);
      const data = readUsersFile(file);
      if (data.users[name] !== undefined) throw new Error(`user "${name}" already exists (use \`ftpsd user passwd ${name}\`)`);
      const permissions = parsePermissions(opts.perms);
      const rates = {
        ...(opts.uploadRate === undefined ? {} : { uploadBytesPerSecond: parseRate('--upload-rate', opts.uploadRate) }),
        ...(opts.downloadRate === undefined ? {} : { downloadBytesPerSecond: parseRate('--download-rate', opts.downloadRate) }),
      };
      const password = await readPassword(`Password for ${name}: `, true);
      data.users[name] = {
        password: await argon2.hash(password, HASH_PARAMS),
        home: opts.home,
        permissions,
        allowedNetworks: opts.allow === undefined ? [] : opts.allow.split(',').map((s) => s.trim()),
        clientCertificates: [],
        disabled: false,
        ...rates,
      };
      await writeUsersFile(file, data);
      console.log(`user ${name} added (home ${opts.home}, permissions ${permissions.join(',')}) to ${file}`);
    });

  user
    .command('passwd')
    .description('set a new password; read from a prompt on a terminal, else from standard input')
    .argument('<name>')
    .option('-c, --config <file>', 'configuration file')
    .action(async (name: string, opts: { config?: string }) => {
      const { file } = usersPath(opts);
      const data = readUsersFile(file);
      const rec = data.users[name];
      if (rec === undefined) throw new Error(`no user "${name}" in ${file}`);
      rec.password = await argon2.hash(await readPassword(`New password for ${name}: `, true), HASH_PARAMS);
      await writeUsersFile(file, data);
      console.log(`password of ${name} changed`);
    });

  user
    .command('del')
    .description('delete a user (the home directory is left alone)')
    .argument('<name>')
    .option('-c, --config <file>', 'configuration file')
    .action(async (name: string, opts: { config?: string }) => {
      const { file } = usersPath(opts);
      const data = readUsersFile(file);
      if (data.users[name] === undefined) throw new Error(`no user "${name}" in ${file}`);
      delete data.users[name];
      await writeUsersFile(file, data);
      console.log(`user ${name} deleted`);
    });

  user
    .command('list')
    .description('list users with home and permissions')
    .option('-c, --config <file>', 'configuration file')
    .action((opts: { config?: string }) => {
      const { file } = usersPath(opts);
      const data = readUsersFile(file);
      const names = Object.keys(data.users).sort();
      if (names.length === 0) console.log(`no users in ${file}`);
      for (const n of names) {
        const u = data.users[n]!;
        const rates = `${u.uploadBytesPerSecond === undefined ? '' : `\tupload-rate=${u.uploadBytesPerSecond}`}${u.downloadBytesPerSecond === undefined ? '' : `\tdownload-rate=${u.downloadBytesPerSecond}`}`;
        console.log(`${n}\thome=${u.home}\tpermissions=${u.permissions.join(',')}${u.allowedNetworks.length > 0 ? `\tallow=${u.allowedNetworks.join(',')}` : ''}${rates}${u.disabled ? '\tdisabled' : ''}`);
      }
    });
}

/** First start: a users file with one `demo` user whose random password is shown once and stored only hashed. */
export async function ensureDemoUser(file: string, demoHome: string): Promise<string | null> {
  const data = readUsersFile(file);
  if (Object.keys(data.users).length > 0) return null;
  const password = randomBytes(12).toString('base64url');
  data.users.demo = { password: await argon2.hash(password, HASH_PARAMS), home: demoHome, permissions: [...ALL_PERMISSIONS], allowedNetworks: [], clientCertificates: [], disabled: false };
  await writeUsersFile(file, data);
  return password;
}

/** A bytes-per-second value from the command line: a whole number, 0 for no limit. */
function parseRate(option: string, text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n)) throw new Error(`${option} takes a whole number of bytes per second (0: no limit), not "${text}"`);
  return n;
}
