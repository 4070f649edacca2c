import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type { FastifyRequest } from 'fastify';
import { execute, type PlannedChange } from '../../partners/apply.js';
import { crossCheck, NAME, parseEntry } from '../../partners/partner-file.js';
import { expandTemplate, type FolderSpec, type UserSpec } from '../../store/partner-model.js';
import { loadPartners } from '../../store/partner-repo.js';
import { actorOf, type AdminContext } from '../context.js';
import { conflict, invalid } from '../errors.js';
import { entryOf, type Entry } from './partner-changes.js';

// The "new partner" flow: one user and two folders of its own, laid out as the README's partner exchange. The
// partner drops files into /inbox, which it may not list or read back (upload only), and fetches what is left for it
// from /outbox (list and download only); nothing else is visible. The folders' directories are created at once, so
// the partner can log in and upload the moment the call returns.

export interface NewPartnerInput {
  name: string;
  /** Plain text; absent: a random one is made and returned once. */
  password?: string | undefined;
  /** Where the inbox and outbox directories go; default data/exchange/NAME. "{user}" is replaced. */
  basePath?: string | undefined;
  description?: string | undefined;
  allowedNetworks?: string[] | undefined;
  /** Files in the outbox are deleted this many days after their first complete download; absent: kept. */
  outboxRetentionDays?: number | undefined;
  /** Quota of the inbox in bytes; absent: none. */
  inboxQuotaBytes?: number | undefined;
}

export interface NewPartnerResult {
  user: Entry;
  folders: Entry[];
  /** The generated password, shown once; null when the caller gave one. */
  password: string | null;
}

export async function createPartner(ctx: AdminContext, request: FastifyRequest, input: NewPartnerInput): Promise<NewPartnerResult> {
  const name = input.name;
  if (!NAME.test(name)) throw invalid(`partner name "${name}": use letters, digits and . _ @ - (at most 64)`);
  const base = (input.basePath ?? `data/exchange/${name}`).replace(/\/+$/, '');
  if (base === '') throw invalid('basePath must not be empty');
  // The partners file's own rules for what was typed in (the networks).
  const check = parseEntry('user', name, { policy: input.allowedNetworks === undefined ? {} : { allowedNetworks: input.allowedNetworks } });
  if (!check.ok) throw invalid(check.problems[0]!, check.problems);
  const generated = input.password === undefined ? randomBytes(12).toString('base64url') : null;
  const passwordHash = await ctx.hasher.hash(input.password ?? generated!);
  const inbox: FolderSpec = { name: `${name}-inbox`, path: `${base}/inbox`, description: `${name}: files the partner sends us`, quotaBytes: input.inboxQuotaBytes ?? null, quotaFiles: null, retentionMaxAgeDays: null, retentionAfterDownload: false };
  const outbox: FolderSpec = {
    name: `${name}-outbox`,
    path: `${base}/outbox`,
    description: `${name}: files we leave for the partner`,
    quotaBytes: null,
    quotaFiles: null,
    retentionMaxAgeDays: input.outboxRetentionDays ?? null,
    retentionAfterDownload: input.outboxRetentionDays !== undefined,
  };
  const user: UserSpec = {
    name,
    description: input.description ?? 'partner',
    home: null,
    passwordHash,
    groups: [],
    disabled: false,
    expiresAt: null,
    mounts: { '/inbox': inbox.name, '/outbox': outbox.name },
    permissions: { '/': ['list'], '/inbox': ['upload'], '/outbox': ['list', 'download'] },
    policy: input.allowedNetworks === undefined || input.allowedNetworks.length === 0 ? {} : { allowedNetworks: input.allowedNetworks },
  };
  await ctx.server.store.db.transaction().execute(async (trx) => {
    const set = await loadPartners(trx);
    for (const [what, exists] of [[`user "${name}"`, set.users[name]], [`folder "${inbox.name}"`, set.folders[inbox.name]], [`folder "${outbox.name}"`, set.folders[outbox.name]]] as const) {
      if (exists !== undefined) throw conflict(`${what} already exists`);
    }
    const problems = crossCheck({ ...set, users: { ...set.users, [name]: user }, folders: { ...set.folders, [inbox.name]: inbox, [outbox.name]: outbox } });
    if (problems.length > 0) throw invalid(problems[0]!, problems);
    const plan: PlannedChange[] = [
      { action: 'create', kind: 'folder', name: inbox.name, keys: [], after: inbox },
      { action: 'create', kind: 'folder', name: outbox.name, keys: [], after: outbox },
      { action: 'create', kind: 'user', name, keys: [], after: user },
    ];
    await execute(trx, plan, actorOf(request), Date.now(), request.ip);
  });
  for (const f of [inbox, outbox]) await mkdir(ctx.server.resolvePath(expandTemplate(f.path, name)), { recursive: true });
  await ctx.server.syncStore();
  return { user: entryOf('user', user), folders: [entryOf('folder', inbox), entryOf('folder', outbox)], password: generated };
}
