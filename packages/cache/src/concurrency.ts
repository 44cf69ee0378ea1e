/** Runs `fn` over `items` with at most `limit` at a time; results in input order. */
export async function mapConcurrently<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

export function chunk<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
}

/**
 * Runs `fn` for every path with at most `limit` at a time, a path only after the paths it
 * references (among those given) succeeded: a cache never holds a path whose references it lacks.
 */
export async function inReferenceOrder(
  paths: readonly string[],
  referencesOf: (path: string) => readonly string[],
  limit: number,
  fn: (path: string) => Promise<void>,
): Promise<void> {
  let running = 0;
  const waiting: Array<() => void> = [];
  const slot = async () => {
    while (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    running++;
  };
  const release = () => {
    running--;
    waiting.shift()?.();
  };
  const wanted = new Set(paths);
  const done = new Map<string, Promise<void>>();
  for (const path of paths) {
    const refs = referencesOf(path).filter((r) => r !== path && wanted.has(r));
    done.set(
      path,
      (async () => {
        await Promise.all(refs.map((r) => done.get(r)));
        await slot();
        try {
          await fn(path);
        } finally {
          release();
        }
      })(),
    );
  }
  for (const p of done.values()) p.catch(() => {});
  await Promise.all(done.values());
}
