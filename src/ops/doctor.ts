import { ConfigError, type LoadedConfig } from '../config/load.js';
import { checkCertificate, checkExternalAddress, checkPassiveRange } from './doctor-checks.js';
import { DOCTOR_DEFAULTS, type CheckResult } from './doctor-report.js';
import { checkSession } from './doctor-session.js';

export interface DoctorOptions {
  /** Loads the configuration; a ConfigError it throws becomes the first failed check. */
  load: () => LoadedConfig;
  user?: string;
  password?: string;
  /** Where the running server is reached; default: loopback (or listen.host) and listen.port. */
  host?: string;
  port?: number;
  now?: number;
  stepTimeoutMs?: number;
}

/** The address doctor connects to: the server's own loopback when it listens on every address. */
export function loopbackTarget(listenHost: string): string {
  if (listenHost === '0.0.0.0') return '127.0.0.1';
  if (listenHost === '::') return '::1';
  return listenHost;
}

/** Every check, in the order a report reads best: configuration, certificate, network, then a live session. */
export async function runDoctor(opts: DoctorOptions): Promise<CheckResult[]> {
  let loaded: LoadedConfig;
  try {
    loaded = opts.load();
  } catch (err) {
    const detail = err instanceof ConfigError ? err.message : `cannot load the configuration: ${(err as Error).message}`;
    return [{ check: 'configuration', status: 'fail', detail, fix: 'correct the file; `ftpsd check-config --config FILE` prints what is accepted' }];
  }
  const { config, file, baseDir } = loaded;
  const now = opts.now ?? Date.now();
  const results: CheckResult[] = [{ check: 'configuration', status: 'pass', detail: file === null ? 'embedded defaults (no config file)' : `${file} is valid` }];
  results.push(...checkCertificate(config, baseDir, now));
  results.push(await checkPassiveRange(config));
  results.push(checkExternalAddress(config));
  results.push(
    ...(await checkSession({
      host: opts.host ?? loopbackTarget(config.listen.host),
      port: opts.port ?? config.listen.port,
      user: opts.user,
      password: opts.password,
      timeoutMs: opts.stepTimeoutMs ?? DOCTOR_DEFAULTS.stepTimeoutMs,
      now,
    })),
  );
  return results;
}
