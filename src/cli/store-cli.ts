import type { LoadedConfig } from '../config/load.js';
import { resolvePath } from '../config/load.js';
import { resolveBansFile } from '../defender/ban-file.js';
import { importLegacyFiles } from '../partners/first-start.js';
import { isS3Path } from '../storage/s3-place.js';
import { openStore, storeOptions, type Store } from '../store/open-store.js';

/**
 * Opens the configured store for one command (importing an older users file first, as the server would) and closes
 * it afterwards, whatever happens.
 */
export async function withStore<T>(loaded: LoadedConfig, fn: (store: Store, abs: (p: string) => string) => Promise<T>): Promise<T> {
  const { config, baseDir } = loaded;
  // Folders on object storage (s3://LOCATION/...) keep their path as written.
  const abs = (p: string) => (isS3Path(p) ? p : resolvePath(baseDir, p));
  const store = await openStore(storeOptions(config, baseDir));
  try {
    await importLegacyFiles(store, { usersFile: abs(config.users.file), bansFile: resolveBansFile(config, baseDir) });
    return await fn(store, abs);
  } finally {
    await store.close();
  }
}
