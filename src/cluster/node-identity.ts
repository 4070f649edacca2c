import { hostname } from 'node:os';
import type { Config } from '../config/schema.js';

/**
 * This node's name among nodes sharing one store: cluster.nodeId, or the host name. Used for its sessions' rows,
 * its own audit file and its store-watch cursor, so two nodes on one host must be given distinct ids.
 */
export function nodeIdOf(config: Pick<Config, 'cluster'>): string {
  const id = config.cluster.nodeId !== '' ? config.cluster.nodeId : hostname();
  // A host name may hold characters a file name should not; keep the ones nodeId allows.
  return id.replace(/[^A-Za-z0-9._-]/g, '_');
}
