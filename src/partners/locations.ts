import { effectiveUser, type EffectiveMount } from '../access/effective.js';
import type { PartnerSet } from '../store/partner-model.js';
import { isUploadArtifact } from '../storage/upload-names.js';
import { walkFiles } from '../storage/tree-walk.js';
import type { Usage } from '../store/quota-repo.js';

/** One real storage location: a home or a folder (a templated folder once per user it resolves for). */
export interface Location {
  scope: string;
  /** Absolute local path. */
  root: string;
  mount: EffectiveMount;
  /** Users whose tree holds it. */
  users: string[];
}

/** Every location the partner model places in some user's tree, once per scope. */
export function allLocations(set: PartnerSet, resolve: (p: string) => string): Location[] {
  const byScope = new Map<string, Location>();
  for (const name of Object.keys(set.users).sort()) {
    for (const mount of effectiveUser(set, name)?.mounts ?? []) {
      const existing = byScope.get(mount.scope);
      if (existing !== undefined) existing.users.push(name);
      else byScope.set(mount.scope, { scope: mount.scope, root: resolve(mount.location), mount, users: [name] });
    }
  }
  return [...byScope.values()].sort((a, b) => (a.scope < b.scope ? -1 : 1));
}

/** Bytes and files stored under a root, as quota counts them (upload temporaries and kept partials left out). */
export async function countUsage(root: string): Promise<Usage> {
  const usage = { bytes: 0, files: 0 };
  for await (const f of walkFiles(root)) {
    if (isUploadArtifact(f.name)) continue;
    usage.bytes += f.size;
    usage.files++;
  }
  return usage;
}
