import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { pino } from 'pino';
import { AcmeError, errorDetail } from '../acme/acme-error.js';
import { AcmeStore } from '../acme/acme-store.js';
import type { Config } from '../config/schema.js';
import { type Logger, createLogger } from '../log/logger.js';
import { CertStore, describeCertificate } from '../tls/cert-store.js';

export interface CertCommandDeps {
  loadConfig: (file?: string) => Config;
  /** Logger for `cert renew`; default: the configured level, to stderr so stdout stays the command's answer. */
  log?: Logger;
}

/** Exit codes: 1 the operation failed (no certificate, expired, order failed), 2 configuration problem. */
const EXIT_FAILED = 1;
const EXIT_CONFIG = 2;
const SELF_SIGNED_CERT_FILE = 'self-signed.crt';
const PICKUP_HINT = 'A running ftpsd picks it up on SIGHUP or through its certificate file watcher.';

export function registerCertCommands(program: Command, deps: CertCommandDeps): void {
  const cert = program.command('cert').description('show or renew the server certificate');

  cert
    .command('status')
    .description('describe the certificate the server would use')
    .option('--config <file>', 'configuration file')
    .action(async (opts: { config?: string }, cmd: Command) => {
      const config = load(cmd, deps, opts.config);
      const found = await findServerCertificate(config).catch((err: unknown) => cmd.error(`cannot read certificate: ${errorDetail(err)}`, { exitCode: EXIT_FAILED }));
      if (found === null) {
        cmd.error('no certificate yet: the server creates a self-signed one (or orders one over ACME) at first start', { exitCode: EXIT_FAILED });
      }
      const d = describeCertificate(found.leaf);
      const expired = d.daysLeft < 0 || Date.now() >= new Date(d.notAfter).getTime();
      write(cmd, [
        `source:     ${found.source} (${found.file})`,
        ...(found.note === null ? [] : [`note:       ${found.note}`]),
        `subject:    ${d.subject}`,
        `names:      ${d.names.join(', ')}`,
        `issuer:     ${d.issuer}`,
        `serial:     ${d.serial}`,
        `not before: ${d.notBefore}`,
        `not after:  ${d.notAfter} (${expired ? 'EXPIRED' : `${d.daysLeft} days left`})`,
      ]);
      if (expired) cmd.error(`certificate ${d.serial} has expired`, { exitCode: EXIT_FAILED });
    });

  cert
    .command('renew')
    .description('order a certificate over ACME now and store it in acme.dir')
    .option('--force', 'renew even when the current certificate is not due yet')
    .option('--config <file>', 'configuration file')
    .action(async (opts: { force?: boolean; config?: string }, cmd: Command) => {
      const config = load(cmd, deps, opts.config);
      if (!config.acme.enabled) cmd.error('acme.enabled is false: set it (with acme.domains and acme.termsAgreed) to order certificates', { exitCode: EXIT_CONFIG });
      const log = deps.log ?? createLogger(config.log.level, pino.destination({ fd: 2, sync: true }));
      // acme-client is loaded only by the command that talks to a CA.
      const { AcmeManager } = await import('../acme/acme-manager.js');
      const manager = new AcmeManager({ config, certStore: new CertStore(), log });
      try {
        const result = await manager.renewNow(opts.force === true);
        const d = describeCertificate(result.certificate.leaf);
        if (!result.renewed) {
          write(cmd, [
            `certificate ${d.serial} for ${d.names.join(', ')} is valid until ${d.notAfter} (${d.daysLeft} days left).`,
            `Renewal is due at ${result.renewAt.toISOString()}; use --force to renew now.`,
          ]);
          return;
        }
        write(cmd, [
          `issued certificate ${d.serial} for ${d.names.join(', ')}, valid until ${d.notAfter} (${d.daysLeft} days left).`,
          `Stored in ${manager.store.certFile} and ${manager.store.keyFile}.`,
          PICKUP_HINT,
        ]);
      } catch (err) {
        const reason = err instanceof AcmeError ? err.reason : 'error';
        cmd.error(`certificate renewal failed (${reason}): ${errorDetail(err)}`, { exitCode: reason === 'config' ? EXIT_CONFIG : EXIT_FAILED });
      } finally {
        await manager.stop();
      }
    });
}

interface FoundCertificate {
  source: 'file' | 'acme' | 'self-signed';
  file: string;
  leaf: X509Certificate;
  note: string | null;
}

/** The same precedence as the server: tls.certFile, else the stored ACME certificate, else the self-signed one. */
export async function findServerCertificate(config: Config, baseDir = process.cwd()): Promise<FoundCertificate | null> {
  if (config.tls.certFile !== '') {
    const file = resolve(baseDir, config.tls.certFile);
    return { source: 'file', file, leaf: new X509Certificate(await readFile(file)), note: null };
  }
  let note: string | null = null;
  if (config.acme.enabled) {
    const store = new AcmeStore(resolve(baseDir, config.acme.dir));
    const stored = await store.loadCertificate();
    if (stored !== null) return { source: 'acme', file: store.certFile, leaf: stored.leaf, note: null };
    note = `no ACME certificate stored in ${store.dir} yet; the server uses this one until an order succeeds`;
  }
  const file = resolve(baseDir, join(config.tls.selfSignedDir, SELF_SIGNED_CERT_FILE));
  let pem: Buffer;
  try {
    pem = await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  return { source: 'self-signed', file, leaf: new X509Certificate(pem), note };
}

function load(cmd: Command, deps: CertCommandDeps, file: string | undefined): Config {
  try {
    return deps.loadConfig(file);
  } catch (err) {
    return cmd.error(errorDetail(err), { exitCode: EXIT_CONFIG });
  }
}

function write(cmd: Command, lines: string[]): void {
  const out = cmd.configureOutput().writeOut ?? ((s: string) => process.stdout.write(s));
  out(`${lines.join('\n')}\n`);
}
