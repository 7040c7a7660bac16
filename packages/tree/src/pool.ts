/**
 * Run `work` on every item with at most `limit` running at once, keeping the
 * results in input order. The listing of remotes is what makes a pass slow,
 * and it waits on child processes and the network, so several run at once.
 */
export async function mapPool<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}
