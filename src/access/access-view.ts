import type { Permission } from '../config/schema.js';
import { isVirtualWithin } from '../storage/virtual-path.js';
import type { EffectiveMount, EffectiveRule, EffectiveUser } from './effective.js';

// The virtual tree of one login: which folder a virtual path lies in, which directories exist only because a mount
// lies below them, and what may be done at a path (the longest permission prefix wins). Pure and synchronous: it is
// asked on every command.

export interface Located {
  mount: EffectiveMount;
  /** Path inside the folder: "/" is the folder's root. */
  rel: string;
}

export class AccessView {
  readonly user: EffectiveUser;

  constructor(user: EffectiveUser) {
    this.user = user;
  }

  get mounts(): readonly EffectiveMount[] {
    return this.user.mounts;
  }

  /** The folder holding `path` (the deepest mount at or above it), or null when none does. */
  locate(path: string): Located | null {
    for (const mount of this.user.mounts) {
      if (!isVirtualWithin(path, mount.path)) continue;
      const rel = mount.path === '/' ? path : path.slice(mount.path.length) || '/';
      return { mount, rel };
    }
    return null;
  }

  /** True when `path` is where a folder is mounted: it cannot be removed, renamed or replaced. */
  isMountPoint(path: string): boolean {
    return this.user.mounts.some((m) => m.path === path);
  }

  /**
   * Names directly below `path` that exist because of mounts: the mount points themselves and the directories
   * leading to deeper ones ("/partners" and "/partners/acme" for a mount at "/partners/acme/outbox").
   */
  virtualChildren(path: string): string[] {
    const names = new Set<string>();
    for (const m of this.user.mounts) {
      if (m.path === path || !isVirtualWithin(m.path, path)) continue;
      const rest = m.path.slice(path === '/' ? 1 : path.length + 1);
      names.add(rest.split('/')[0]!);
    }
    return [...names].sort();
  }

  /** True for a directory that exists only in the virtual tree (no folder holds it, a mount lies below it). */
  isVirtualDirectory(path: string): boolean {
    if (this.locate(path) !== null) return false;
    return path === '/' || this.user.mounts.some((m) => isVirtualWithin(m.path, path));
  }

  /** The rule that decides for `path`: the longest permission path at or above it. */
  ruleFor(path: string): EffectiveRule | null {
    return this.user.permissions.find((r) => isVirtualWithin(path, r.path)) ?? null;
  }

  allows(path: string, permission: Permission): boolean {
    return this.ruleFor(path)?.permissions.includes(permission) ?? false;
  }

  permissionsAt(path: string): ReadonlySet<Permission> {
    return new Set(this.ruleFor(path)?.permissions ?? []);
  }
}
