// dynalite 4.0 ends a Query's or Scan's LevelDB read by calling `iterator.return()` when its
// stream is destroyed, and only if the iterator has one; the iterators of abstract-level 3 (under
// level 10, which dynalite uses) have `close()` instead. So every Query and Scan left its iterator
// open — registered with the database until it closed, holding a LevelDB snapshot and about 1 KB
// of dynalite's heap — and a long-running local stack grew and slowed (the likely cause of
// dynalite's thread dying 35 minutes into a 100,000-derivation job, which finishes with this).
// Plain JavaScript: dynalite's thread imports it.
import { createRequire } from "node:module";

/** The abstract-level that dynalite's LevelDB (classic-level or memory-level) is built on. */
export function dynaliteAbstractLevel() {
  const require = createRequire(import.meta.url);
  return createRequire(require.resolve("dynalite"))("abstract-level");
}

/**
 * Gives every iterator of `abstractLevel` (keys, values and entries alike: they share one base
 * class) a `return()` that closes it, unless it has one already. Idempotent.
 */
export function closeIteratorsOnReturn(abstractLevel = dynaliteAbstractLevel()) {
  const base = Object.getPrototypeOf(abstractLevel.AbstractIterator.prototype);
  if (typeof base.return === "function") return;
  Object.defineProperty(base, "return", {
    value: function () {
      return this.close();
    },
    writable: true,
    configurable: true,
  });
}
