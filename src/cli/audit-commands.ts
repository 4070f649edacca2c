import type { Command } from 'commander';
import type { Config } from '../config/schema.js';
import { resolveAuditKeyFile, resolveAuditPaths } from '../audit/chain.js';
import { configuredAuditFiles, groupAuditChains, verifyAuditFile } from '../audit/verify.js';

// `ftpsd audit verify [FILE...]`: checks the hash chain (and, with the key, the HMAC checkpoints) of audit files.
// Files of several chains (each node of a cluster writes its own) are checked chain by chain; with no files, every
// chain log.auditFile names is.

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
    .command('verify [files...]')
    .description('check the hash chain of audit files; rotated files may be given in any order (e.g. audit.log*); several nodes\' files are checked chain by chain; no files: every node\'s file of log.auditFile')
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
      if (opts.config !== undefined || files.length === 0) {
        try {
          const { config, baseDir } = deps.loadConfig(opts.config);
          keyFile ??= resolveAuditKeyFile(config, baseDir);
          every ??= config.log.auditCheckpointEvery;
          if (files.length === 0) {
            const paths = resolveAuditPaths(config, baseDir, '{node}');
            if (paths === null) throw new Error('log.auditFile is empty: no audit file to verify; name the files');
            files = await configuredAuditFiles(paths.file);
            if (files.length === 0) throw new Error(`no audit file matches ${paths.file}`);
          }
        } catch (e) {
          err((e as Error).message);
          setExitCode(1);
          return;
        }
      }
      const chains = await groupAuditChains(files);
      let broken = false;
      let unkeyed = false;
      for (const [name, ordered] of chains) {
        let result;
        try {
          result = await verifyAuditFile(ordered, keyFile, every === undefined ? {} : { checkpointEvery: every });
        } catch (e) {
          err((e as Error).message);
          setExitCode(1);
          return;
        }
        const which = chains.size > 1 ? ` ${name}` : '';
        if (result.ok) {
          out(`audit chain${which} intact: ${result.records} records, ${result.checkpoints} checkpoints`);
          unkeyed ||= !result.checkpointsVerified;
          continue;
        }
        broken = true;
        const where = ordered.length > 1 ? ` of ${result.file}` : '';
        const seq = result.seq === undefined ? '' : ` (seq ${result.seq})`;
        out(`audit chain${which} broken at line ${result.line}${where}${seq}: ${result.problem}`);
      }
      if (unkeyed) err('note: checkpoint HMACs not checked (no --key)');
      setExitCode(broken ? 1 : 0);
    });
}
