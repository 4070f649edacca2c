import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { LoadedConfig } from '../config/load.js';
import { ConfigError } from '../config/load.js';
import { applyPartnerFile, describeChange } from '../partners/apply.js';
import { formatPartnerFile, parsePartnerFile } from '../partners/partner-file.js';
import { countUsage, runRetention, scanQuota } from '../partners/housekeeping.js';
import { S3Clients } from '../storage/s3-clients.js';
import { isS3Path } from '../storage/s3-place.js';
import { countS3Usage } from '../storage/s3-usage.js';
import { cliActor } from '../store/change-log.js';
import { loadEventHooks } from '../store/event-repo.js';
import { loadPartners } from '../store/partner-repo.js';
import { withStore } from './store-cli.js';

export interface PartnerCommandDeps {
  loadConfig: (file?: string) => LoadedConfig;
}

/** `ftpsd apply`, `ftpsd export`, `ftpsd quota scan`, `ftpsd retention run`. */
export function registerPartnerCommands(program: Command, deps: PartnerCommandDeps): void {
  program
    .command('apply')
    .description('make the store match a partners file (users, groups, folders, mounts, permissions, policies); all or nothing')
    .requiredOption('-f, --file <file>', 'partners file (YAML); see docs/admin-guide.md')
    .option('--dry-run', 'print what would change, change nothing')
    .option('-c, --config <file>', 'configuration file')
    .action(async (opts: { file: string; dryRun?: boolean; config?: string }) => {
      let text: string;
      try {
        text = readFileSync(opts.file, 'utf8');
      } catch (err) {
        throw new ConfigError(`cannot read ${opts.file}: ${(err as Error).message}`);
      }
      const file = parsePartnerFile(text, opts.file);
      const dryRun = opts.dryRun === true;
      const plan = await withStore(deps.loadConfig(opts.config), (store) => applyPartnerFile(store, file, { actor: cliActor('apply'), dryRun }));
      for (const c of plan) console.log(describeChange(c));
      const verb = dryRun ? 'would change' : 'changed';
      console.log(plan.length === 0 ? 'no changes: the store matches the file' : `${verb} ${plan.length} ${plan.length === 1 ? 'entry' : 'entries'}${dryRun ? ' (dry run: nothing was changed)' : ''}`);
    });

  program
    .command('export')
    .description('write the partners file of the store (apply it back and nothing changes)')
    .option('-o, --output <file>', 'write to this file (mode 0600: it holds password hashes and webhook secrets) instead of standard output')
    .option('-c, --config <file>', 'configuration file')
    .action(async (opts: { output?: string; config?: string }) => {
      const text = await withStore(deps.loadConfig(opts.config), async (store) => formatPartnerFile(await loadPartners(store.db), true, await loadEventHooks(store.db)));
      if (opts.output === undefined) process.stdout.write(text);
      else writeFileSync(opts.output, text, { mode: 0o600 });
    });

  program
    .command('quota')
    .description('quota usage')
    .command('scan')
    .description('count the files of every home and folder anew and store the usage')
    .option('-c, --config <file>', 'configuration file')
    .action(async (opts: { config?: string }) => {
      const loaded = deps.loadConfig(opts.config);
      const s3 = new S3Clients(() => loaded.config.storage.s3);
      try {
        await withStore(loaded, async (store, abs) => {
          for (const r of await scanQuota(store, abs, (root) => (isS3Path(root) ? countS3Usage(s3, root) : countUsage(root)))) {
            const limit = r.limits.bytes === null && r.limits.files === null ? 'no quota' : `quota ${r.limits.bytes ?? '-'} bytes / ${r.limits.files ?? '-'} files`;
            console.log(`${r.scope}\t${r.usage.bytes} bytes\t${r.usage.files} files\t${limit}\t${r.root}`);
          }
        });
      } finally {
        s3.close();
      }
    });

  program
    .command('retention')
    .description('folder retention')
    .command('run')
    .description('delete the files whose folder retention has passed, and expired partial uploads, now')
    .option('--dry-run', 'list what would be deleted, delete nothing')
    .option('-c, --config <file>', 'configuration file')
    .action(async (opts: { dryRun?: boolean; config?: string }) => {
      const loaded = deps.loadConfig(opts.config);
      const dryRun = opts.dryRun === true;
      await withStore(loaded, async (store, abs) => {
        const report = await runRetention(store, { resolve: abs, partialMaxAgeMs: loaded.config.housekeeping.partialUploadMaxAgeMs, dryRun, actor: cliActor('retention') });
        const verb = dryRun ? 'would delete' : 'deleted';
        for (const d of report.deleted) console.log(`${verb} ${d.path}\t${d.size} bytes\t${d.ageDays} days since ${d.since}`);
        for (const p of report.partialsRemoved) console.log(`${verb} partial upload ${p}`);
        console.log(`${report.deleted.length} files and ${report.partialsRemoved.length} partial uploads ${verb}${dryRun ? ' (dry run)' : ''}`);
      });
    });
}
