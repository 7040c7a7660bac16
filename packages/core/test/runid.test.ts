import t from 'tap';
import { isRunId, newRunId } from '../src/runid.js';

t.test('ids made in the same millisecond are distinct and sorted', async (t) => {
  const now = new Date('2026-11-26T11:19:09.123Z');
  const ids = Array.from({ length: 10_000 }, () => newRunId(now));
  t.equal(new Set(ids).size, ids.length, 'all distinct');
  t.same([...ids].sort(), ids, 'creation order is sort order');
  t.ok(ids.every(isRunId), 'every id has the documented form');
  t.match(ids[0], /^20261126-111909-123-[0-9a-z]{8}$/);
});
