import { existsSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ConfigError, loadConfig } from './config/load.js';
import { registerAdminCommands } from './cli/admin-commands.js';
import { registerAuditCommands } from './cli/audit-commands.js';
import { registerBanCommands } from './cli/ban-commands.js';
import { registerCertCommands } from './cli/cert-commands.js';
import { registerDoctorCommand } from './cli/doctor-command.js';
import { registerEventCommands } from './cli/event-commands.js';
import { registerPartnerCommands } from './cli/partner-commands.js';
import { registerServeCommands } from './cli/serve-command.js';
import { registerUserCommands } from './cli/user-commands.js';

/** FTPSD_CONFIG names the config file when --config is not given; with neither, the embedded defaults apply. */
export function configFileFor(explicit: string | undefined): string | undefined {
  if (explicit !== undefined) return explicit;
  if (process.env.FTPSD_CONFIG !== undefined && process.env.FTPSD_CONFIG !== '') return process.env.FTPSD_CONFIG;
  return existsSync('config/ftpsd.yaml') ? 'config/ftpsd.yaml' : undefined;
}

const load = (file?: string) => loadConfig(configFileFor(file));

const program = new Command()
  .name('ftpsd')
  .description('FTPS-first secure file-transfer server')
  .showHelpAfterError()
  .exitOverride();

registerServeCommands(program, { loadConfig: load });
registerUserCommands(program, { loadConfig: load });
registerPartnerCommands(program, { loadConfig: load });
registerCertCommands(program, { loadConfig: (f) => load(f).config });
registerBanCommands(program, { loadConfig: load });
registerAuditCommands(program, { loadConfig: load });
registerDoctorCommand(program, { loadConfig: load });
registerAdminCommands(program, { loadConfig: load });
registerEventCommands(program, { loadConfig: load });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode;
  } else if (err instanceof ConfigError) {
    console.error(`ftpsd: ${err.message}`);
    process.exitCode = 2;
  } else {
    console.error(`ftpsd: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}
