import t from 'tap';
import { RequestStage, shouldStage, STAGE_AHEAD_BYTES, STAGE_MIN_BYTES } from '../lib/threads/request-stage.js';

t.test('shouldStage: large cut requests, never far ahead of what was sent', async (t) => {
  t.notOk(shouldStage(STAGE_MIN_BYTES - 1, 10), 'small requests are joined as before');
  t.ok(shouldStage(STAGE_MIN_BYTES, 10));
  t.notOk(shouldStage(100_000, 100_000), 'nothing to wait for');
  t.ok(shouldStage(STAGE_AHEAD_BYTES + 100, 100), 'the rest is within the ahead bound');
  t.notOk(shouldStage(1_000_000, 100), 'a declared megabyte with 100 bytes sent: not yet');
  t.notOk(shouldStage(1_000_000, 499_999));
  t.ok(shouldStage(1_000_000, 500_000), 'once half of it is here');
});

t.test('RequestStage: parts copied in, reads in place, a chunk past the end left over', async (t) => {
  const stage = new RequestStage(10, [Buffer.from('ab'), Buffer.from('cd')]);
  t.notOk(stage.complete);
  t.equal(stage.readTarget.length, 6, 'the next read may fill the rest and no more');
  const target = stage.readTarget;
  target.write('efg', 'latin1');
  t.equal(stage.take(target.subarray(0, 3)).length, 0, 'a read in place is taken whole');
  t.equal(stage.readTarget.length, 3);
  const rest = stage.take(Buffer.from('hijKLM'));
  t.equal(rest.toString(), 'KLM', 'bytes of the next request stay out');
  t.ok(stage.complete);
  t.equal(stage.buffer.toString(), 'abcdefghij');
});
