/**
 * Bounded garbage for bulk traffic. Every socket read and every large value is a fresh
 * ArrayBuffer outside the JS heap, and V8 only collects them once tens of MB have piled up (its
 * external-memory trigger), so RSS would swell by that much under a stream of big values. A
 * young-generation collection after every few MB of such buffers keeps the pile small; it costs
 * well under a millisecond, a few times per second at most under bulk load.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

const BYTES_BETWEEN_COLLECTIONS = 8 * 1024 * 1024;

type Collect = (options: { type: 'minor' | 'major' }) => void;

/** `gc` without requiring `node --expose-gc` on the command line. */
function loadGc(): Collect {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as Collect;
}

export class GarbageBound {
  private readonly collect = loadGc();
  private since = 0;

  /** Account for `bytes` of short-lived buffers just allocated. */
  allocated(bytes: number): void {
    this.since += bytes;
    if (this.since < BYTES_BETWEEN_COLLECTIONS) return;
    this.since = 0;
    this.collect({ type: 'minor' });
  }
}
