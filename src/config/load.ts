import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { type Config, configSchema, defaultConfig } from './schema.js';

export class ConfigError extends Error {
  constructor(
    message: string,
    readonly problems: readonly string[] = [],
  ) {
    super(problems.length > 0 ? `${message}:\n  - ${problems.join('\n  - ')}` : message);
    this.name = 'ConfigError';
  }
}

export interface LoadedConfig {
  config: Config;
  /** The file read, or null when running on embedded defaults. */
  file: string | null;
  /** Relative paths in the config are resolved against this directory. */
  baseDir: string;
}

export const ENV_PREFIX = 'FTPSD_';

/**
 * Reads YAML, applies FTPSD_* overrides and validates with the schema. A missing file is an error only when it was
 * named explicitly: with no --config the server runs on embedded defaults so it can start on a fresh checkout.
 */
export function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): LoadedConfig {
  let raw: unknown = {};
  let path: string | null = null;
  if (file !== undefined) {
    path = resolve(cwd, file);
    if (!existsSync(path)) throw new ConfigError(`config file ${path} does not exist`);
    try {
      raw = parseYaml(readFileSync(path, 'utf8')) ?? {};
    } catch (err) {
      throw new ConfigError(`config file ${path} is not valid YAML`, [(err as Error).message.split('\n')[0] ?? '']);
    }
    if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`config file ${path} must hold a mapping of keys`);
  }
  const withEnv = applyEnvOverrides(raw as Record<string, unknown>, env);
  let config: Config;
  try {
    config = validate(withEnv, path ?? 'configuration');
  } catch (err) {
    // A bad value set through the environment is named by its variable too: the file may not mention the key at all.
    const sources = envSources(env);
    if (!(err instanceof ConfigError) || sources.size === 0) throw err;
    throw new ConfigError(`${path ?? 'configuration'} is invalid`, err.problems.map((p) => annotateEnvSource(p, sources)));
  }
  // Relative paths are relative to the working directory, as with every other server started from a checkout; a
  // config outside the checkout can use absolute paths.
  return { config, file: path, baseDir: cwd };
}

export function validate(input: unknown, source: string): Config {
  const result = configSchema.safeParse(input);
  if (!result.success) throw new ConfigError(`${source} is invalid`, formatIssues(result.error.issues));
  return result.data;
}

export function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      const prefix = issue.path.length > 0 ? `${issue.path.join('.')}.` : '';
      return `unknown key ${issue.keys.map((k) => `${prefix}${k}`).join(', ')}`;
    }
    const key = issue.path.join('.') || '(top level)';
    return `${key}: ${issue.message}`;
  });
}

/**
 * FTPSD_PASV_EXTERNAL_ADDRESS=203.0.113.7 sets pasv.externalAddress. Segments are matched case-insensitively against
 * the schema's keys, underscores inside a key optional, so FTPSD_PASV_MINPORT and FTPSD_PASV_MIN_PORT both work.
 * Values are read as YAML scalars: numbers, booleans and [lists] keep their type.
 */
export function applyEnvOverrides(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out = structuredClone(raw);
  for (const { keyPath, value } of envOverrides(env)) {
    let target = out;
    for (const key of keyPath.slice(0, -1)) {
      const next = target[key];
      if (typeof next !== 'object' || next === null || Array.isArray(next)) target[key] = {};
      target = target[key] as Record<string, unknown>;
    }
    target[keyPath[keyPath.length - 1]!] = parseEnvValue(value);
  }
  return out;
}

/** The FTPSD_* variables that name a setting, with the key path each one sets (FTPSD_CONFIG and the like are not). */
function envOverrides(env: NodeJS.ProcessEnv): Array<{ name: string; keyPath: string[]; value: string }> {
  const defaults = defaultConfig() as unknown as Record<string, unknown>;
  const found: Array<{ name: string; keyPath: string[]; value: string }> = [];
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined) continue;
    const keyPath = resolveEnvPath(name.slice(ENV_PREFIX.length).split('_'), defaults);
    if (keyPath !== null) found.push({ name, keyPath, value });
  }
  return found;
}

/** Dotted key → the FTPSD_* variable that set it. */
function envSources(env: NodeJS.ProcessEnv): Map<string, string> {
  return new Map(envOverrides(env).map((o) => [o.keyPath.join('.'), o.name]));
}

function annotateEnvSource(problem: string, sources: Map<string, string>): string {
  for (const [key, name] of sources) {
    if (problem.startsWith(`${key}: `)) return `${key} (from ${name})${problem.slice(key.length)}`;
  }
  return problem;
}

function resolveEnvPath(segments: string[], node: Record<string, unknown>): string[] | null {
  for (let take = 1; take <= segments.length; take++) {
    const wanted = segments.slice(0, take).join('').toLowerCase();
    const key = Object.keys(node).find((k) => k.toLowerCase() === wanted);
    if (key === undefined) continue;
    const rest = segments.slice(take);
    const child = node[key];
    if (rest.length === 0) return [key];
    if (typeof child === 'object' && child !== null && !Array.isArray(child)) {
      const sub = resolveEnvPath(rest, child as Record<string, unknown>);
      if (sub !== null) return [key, ...sub];
    }
  }
  return null;
}

function parseEnvValue(value: string): unknown {
  try {
    return parseYaml(value) ?? '';
  } catch {
    return value;
  }
}

export function resolvePath(baseDir: string, p: string): string {
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

