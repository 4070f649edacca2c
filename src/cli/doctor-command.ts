import type { Command } from 'commander';
import type { LoadedConfig } from '../config/load.js';
import { runDoctor } from '../ops/doctor.js';
import { formatReport, hasFailure } from '../ops/doctor-report.js';
import { readPassword } from './password-input.js';

export interface DoctorDeps {
  loadConfig: (file?: string) => LoadedConfig;
}

/** `ftpsd doctor`: checks the setup and a live session, prints PASS/WARN/FAIL with a fix for each problem. */
export function registerDoctorCommand(program: Command, deps: DoctorDeps): void {
  program
    .command('doctor')
    .description('check configuration, certificate, passive ports, NAT settings and a real FTPS session against the running server')
    .option('-c, --config <file>', 'configuration file (default: config/ftpsd.yaml if present, else embedded defaults)')
    .option('-u, --user <name>', 'log in as this user and transfer a small file (password from a prompt, else standard input)')
    .option('--host <address>', 'address of the running server (default: loopback, or listen.host)')
    .option('--port <port>', 'control port of the running server (default: listen.port)', (v) => Number.parseInt(v, 10))
    .action(async (opts: { config?: string; user?: string; host?: string; port?: number }) => {
      const password = opts.user === undefined ? undefined : await readPassword(`Password for ${opts.user}: `, false);
      const results = await runDoctor({ load: () => deps.loadConfig(opts.config), user: opts.user, password, host: opts.host, port: opts.port });
      process.stdout.write(formatReport(results));
      if (hasFailure(results)) process.exitCode = 1;
    });
}
