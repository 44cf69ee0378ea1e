// dynalite 4.0 reports a write's consumed capacity for the table alone; DynamoDB's total also
// counts the write units of every global secondary index the write touches — and those are
// billed. The bench prices what the emulator reports (bench/cost-model.ts), so without them a
// build looked about half as dear as it is. This adds them as DynamoDB counts them:
//   - an entry put (the item enters the index): one write of the entry's size;
//   - an entry deleted (the item leaves it): one write;
//   - an index key changed: two (the old entry deleted, the new one put);
//   - the key unchanged but a projected attribute changed: one; nothing projected changed: none
//     (so a keys-only index costs nothing while its keys stay put).
// Each write is the entry's size (its projected attributes and keys) in 1 KB units, at least one.
// Plain JavaScript: dynalite's thread imports it.
import { createRequire } from "node:module";

/** dynalite's db module, whose `addConsumedCapacity` and `updateIndexes` its write actions call. */
export function dynaliteDb() {
  const require = createRequire(import.meta.url);
  return createRequire(require.resolve("dynalite"))("./db/index.js");
}

/** Write units DynamoDB bills to a table's global indexes for a write that turns `before` into `after` (either may be absent). */
export function indexWriteUnits(db, table, before, after) {
  let units = 0;
  const tableKeys = table.KeySchema.map((key) => key.AttributeName);
  for (const index of table.GlobalSecondaryIndexes ?? []) {
    const keys = index.KeySchema.map((key) => key.AttributeName);
    const inIndex = (item) => item != null && keys.every((key) => item[key] != null);
    const entry = (item) => {
      if (index.Projection.ProjectionType === "ALL") return item;
      const names = new Set([...tableKeys, ...keys, ...(index.Projection.NonKeyAttributes ?? [])]);
      return Object.fromEntries(Object.entries(item).filter(([name]) => names.has(name)));
    };
    const size = (item) => Math.max(1, Math.ceil(db.itemSize(entry(item)) / 1024));
    const was = inIndex(before);
    const is = inIndex(after);
    if (was && is) {
      if (keys.some((key) => !same(before[key], after[key]))) units += size(before) + size(after);
      else if (!sameEntries(entry(before), entry(after))) units += size(after);
    } else if (is) units += size(after);
    else if (was) units += size(before);
  }
  return units;
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

function sameEntries(a, b) {
  const names = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const name of names) if (!same(a[name], b[name])) return false;
  return true;
}

/**
 * Makes every write's reported capacity include its indexes' write units. Each write action
 * computes its capacity object and then, in the same tick, updates the indexes: the second call
 * adds to the object the first returned (which is what the response carries). Idempotent.
 */
export function countIndexWrites(db = dynaliteDb()) {
  if (db.addConsumedCapacity.countsIndexes) return;
  const addConsumedCapacity = db.addConsumedCapacity;
  const updateIndexes = db.updateIndexes;
  let pending;
  const withIndexes = function (data, isRead, ...items) {
    const capacity = addConsumedCapacity.call(this, data, isRead, ...items);
    pending = !isRead && capacity ? capacity : undefined;
    return capacity;
  };
  withIndexes.countsIndexes = true;
  db.addConsumedCapacity = withIndexes;
  db.updateIndexes = function (store, table, existingItem, item, cb) {
    const capacity = pending;
    pending = undefined;
    if (capacity) capacity.CapacityUnits += indexWriteUnits(db, table, existingItem, item);
    return updateIndexes.call(this, store, table, existingItem, item, cb);
  };
}
