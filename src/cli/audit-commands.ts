import type { Command } from 'commander';
import type { Config } from '../config/schema.js';
import { resolveAuditKeyFile } from '../audit/chain.js';
import { orderAuditFiles, verifyAuditFile } from '../audit/verify.js';

// `ftpsd audit verify FILE...`: checks the hash chain (and, with the key, the HMAC checkpoints) of audit files.

export interface AuditCommandDeps {
  loadConfig: (file?: string) => { config: Config; baseDir: string };
  out?: (line: string) => void;
  err?: (line: string) => void;
  setExitCode?: (code: number) => void;
}

interface VerifyOptions {
  key?: string;
  config?: string;
  every?: string;
}

export function registerAuditCommands(program: Command, deps: AuditCommandDeps): void {
  const out = deps.out ?? ((line: string) => console.log(line));
  const err = deps.err ?? ((line: string) => console.error(line));
  const setExitCode = deps.setExitCode ?? ((code: number) => void (process.exitCode = code));

  const audit = program.command('audit').description('tamper-evident audit log tools');

  audit
    .command('verify <files...>')
    .description('check the hash chain of audit files; rotated files may be given in any order (e.g. audit.log*)')
    .option('-k, --key <file>', 'HMAC key file, to verify checkpoints')
    .option('-c, --config <file>', 'take the key file (and checkpoint interval) from this configuration')
    .option('--every <n>', 'fail when more than N records follow one another without a checkpoint')
    .action(async (files: string[], opts: VerifyOptions) => {
      let keyFile = opts.key;
      let every = opts.every === undefined ? undefined : Number(opts.every);
      if (every !== undefined && !(Number.isInteger(every) && every > 0)) {
        err(`--every must be a positive integer, got ${opts.every}`);
        setExitCode(1);
        return;
      }
      if (opts.config !== undefined) {
        try {
          const { config, baseDir } = deps.loadConfig(opts.config);
          keyFile ??= resolveAuditKeyFile(config, baseDir);
          every ??= config.log.auditCheckpointEvery;
        } catch (e) {
          err((e as Error).message);
          setExitCode(1);
          return;
        }
      }
      const ordered = await orderAuditFiles(files);
      let result;
      try {
        result = await verifyAuditFile(ordered, keyFile, every === undefined ? {} : { checkpointEvery: every });
      } catch (e) {
        err((e as Error).message);
        setExitCode(1);
        return;
      }
      if (result.ok) {
        out(`audit chain intact: ${result.records} records, ${result.checkpoints} checkpoints`);
        if (!result.checkpointsVerified) err('note: checkpoint HMACs not checked (no --key)');
        setExitCode(0);
        return;
      }
      const where = ordered.length > 1 ? ` of ${result.file}` : '';
      const seq = result.seq === undefined ? '' : ` (seq ${result.seq})`;
      out(`audit chain broken at line ${result.line}${where}${seq}: ${result.problem}`);
      setExitCode(1);
    });
}
