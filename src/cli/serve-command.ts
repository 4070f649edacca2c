import type { Command } from 'commander';
import { resolvePath, type LoadedConfig } from '../config/load.js';
import { createLogger } from '../log/logger.js';
import { startServer } from '../server.js';
import { ensureDemoUser } from './user-commands.js';

export interface ServeDeps {
  loadConfig: (file?: string) => LoadedConfig;
}

export function registerServeCommands(program: Command, deps: ServeDeps): void {
  program
    .command('check-config')
    .description('validate the configuration and print the effective settings')
    .option('-c, --config <file>', 'configuration file (default: config/ftpsd.yaml if present, else embedded defaults)')
    .action((opts: { config?: string }) => {
      const { config, file } = deps.loadConfig(opts.config);
      console.log(`configuration ${file ?? '(embedded defaults)'} is valid`);
      console.log(JSON.stringify(config, null, 2));
    });

  program
    .command('serve')
    .description('run the server')
    .option('-c, --config <file>', 'configuration file (default: config/ftpsd.yaml if present, else embedded defaults)')
    .action(async (opts: { config?: string }) => {
      const loaded = deps.loadConfig(opts.config);
      const { config, baseDir } = loaded;
      const log = createLogger(config.log.level);
      const usersFile = resolvePath(baseDir, config.users.file);
      const demoPassword = await ensureDemoUser(usersFile, config.users.demoHome);
      if (demoPassword !== null) {
        // Shown once; only its argon2id hash is stored.
        process.stderr.write(
          `\n  First start: created user "demo" (home ${config.users.demoHome}) in ${usersFile}\n  Password: ${demoPassword}\n  Shown only now. Change it with: npx ftpsd user passwd demo\n\n`,
        );
        log.info({ event: 'demo_user_created', file: usersFile }, 'demo user created');
      }
      const server = await startServer({ config, baseDir, log });
      process.stderr.write(`  ftpsd listening on ${config.listen.host}:${server.port} (explicit FTPS: AUTH TLS), passive ports ${config.pasv.minPort}-${config.pasv.maxPort}\n`);

      const stop = (signal: string) => {
        log.info({ event: 'signal', signal }, 'shutting down');
        void server.close().then(() => process.exit(0));
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
      process.on('SIGHUP', () => {
        log.info({ event: 'signal', signal: 'SIGHUP' }, 'reloading users and certificate');
        try {
          const diff = server.reloadUsers();
          log.info({ event: 'users_reloaded', ...diff }, 'users reloaded');
        } catch (err) {
          log.error({ event: 'reload_failed', err: { message: (err as Error).message } }, 'users file invalid; keeping the previous users');
        }
        void server.reloadCertificate();
      });
    });
}
