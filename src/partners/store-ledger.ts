import type { UsageLedger } from '../storage/quota-upload.js';
import type { Store } from '../store/open-store.js';
import { addUsage, findUsage, markDownloaded, reserveUsage, setUsage, usageAdder, type Usage } from '../store/quota-repo.js';
import { countUsage } from './locations.js';

/**
 * Quota usage and download marks in the store; a scope never counted is counted on first use, from disk or by
 * `count` (which also knows S3 folders).
 */
export function storeLedger(store: Store, count: (root: string) => Promise<Usage> = countUsage): UsageLedger {
  const add = usageAdder(store);
  return {
    async usage(scope, root) {
      const known = await findUsage(store.db, scope);
      if (known !== null) return known;
      const counted = await count(root);
      await setUsage(store.db, scope, counted);
      return counted;
    },
    // Without a journal to write along, the usage change is one prepared statement (usageAdder).
    add: (scope, delta, also) =>
      also === undefined
        ? add(scope, delta)
        : store.db.transaction().execute(async (trx) => {
            await addUsage(trx, scope, delta);
            await also(trx);
          }),
    reserve: (scope, delta, limits) => reserveUsage(store.db, scope, delta, limits),
    downloaded: (realPath) => markDownloaded(store.db, realPath),
  };
}
