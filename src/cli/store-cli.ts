import type { LoadedConfig } from '../config/load.js';
import { resolvePath } from '../config/load.js';
import { resolveBansFile } from '../defender/ban-file.js';
import { importLegacyFiles } from '../partners/first-start.js';
import { openStore, storeOptions, type Store } from '../store/open-store.js';

/**
 * Opens the configured store for one command (importing an older users file first, as the server would) and closes
 * it afterwards, whatever happens.
 */
export async function withStore<T>(loaded: LoadedConfig, fn: (store: Store, abs: (p: string) => string) => Promise<T>): Promise<T> {
  const { config, baseDir } = loaded;
  const abs = (p: string) => resolvePath(baseDir, p);
  const store = await openStore(storeOptions(config, baseDir));
  try {
    await importLegacyFiles(store, { usersFile: abs(config.users.file), bansFile: resolveBansFile(config, baseDir) });
    return await fn(store, abs);
  } finally {
    await store.close();
  }
}
