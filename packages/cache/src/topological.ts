/** Orders paths so every path comes after the paths it references (among those given). */
export function referencesFirst(paths: readonly string[], referencesOf: (path: string) => readonly string[]): string[] {
  const wanted = new Set(paths);
  const done = new Set<string>();
  const order: string[] = [];
  const visiting = new Set<string>();
  const visit = (start: string) => {
    // Iterative: closures can be deep (long chains of inputs).
    const stack: Array<{ path: string; refs: string[]; i: number }> = [];
    const enter = (p: string) => {
      visiting.add(p);
      stack.push({ path: p, refs: referencesOf(p).filter((r) => r !== p && wanted.has(r)), i: 0 });
    };
    enter(start);
    while (stack.length > 0) {
      const top = stack.at(-1)!;
      if (top.i < top.refs.length) {
        const ref = top.refs[top.i++]!;
        if (!done.has(ref) && !visiting.has(ref)) enter(ref);
        continue;
      }
      stack.pop();
      visiting.delete(top.path);
      done.add(top.path);
      order.push(top.path);
    }
  };
  for (const p of paths) if (!done.has(p)) visit(p);
  return order;
}
