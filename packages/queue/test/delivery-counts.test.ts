import t from 'tap';
import { DeliveryCounts } from '../src/work.js';

// The server's count can go back to 1 (nats-server 2.9.10, Debian 12): the worker's own tally keeps it honest.
t.test('a job seen again by this worker counts as a later delivery even when the server says 1', async (t) => {
  const counts = new DeliveryCounts();
  t.equal(counts.next(7, 1), 1, 'first delivery');
  t.equal(counts.next(7, 1), 2, 'the server lost its count: still the second');
  t.equal(counts.next(7, 1), 3, 'and the third');
  t.equal(counts.next(8, 1), 1, 'another job has its own tally');
});

t.test("the server's count wins when it is higher (the job ran on other workers before)", async (t) => {
  const counts = new DeliveryCounts();
  t.equal(counts.next(3, 4), 4);
  t.equal(counts.next(3, 1), 5, 'the tally goes on from the highest count seen');
  t.equal(counts.next(3, 9), 9);
});

t.test('only the most recent jobs are kept', async (t) => {
  const counts = new DeliveryCounts(2);
  counts.next(1, 1);
  counts.next(2, 1);
  counts.next(1, 1); // job 1 is now the most recent
  counts.next(3, 1); // drops job 2, the oldest
  t.equal(counts.next(1, 1), 3, 'job 1 was kept');
  t.equal(counts.next(2, 1), 1, 'job 2 was dropped');
});
