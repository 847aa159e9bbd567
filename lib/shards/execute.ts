/**
 * Runs one request batch against a shard's Store and encodes each reply in the text protocol.
 * Encoding here, in the worker, keeps that work off the front end's thread, which is the
 * bottleneck (DESIGN.md, measured costs).
 */
import { Op } from '../protocol/command.js';
import { Errors } from '../protocol/text.js';
import { Mode, Status, type Store, type StatusCode, type StoreMode } from '../store/store.js';
import { BatchReader, ReplyWriter } from './batch.js';

const STORE_MODE: Record<number, StoreMode> = {
  [Op.Set]: Mode.Set,
  [Op.Add]: Mode.Add,
  [Op.Replace]: Mode.Replace,
  [Op.Append]: Mode.Append,
  [Op.Prepend]: Mode.Prepend,
  [Op.Cas]: Mode.Cas,
};

const STATUS_LINE: Record<number, string> = {
  [Status.Stored]: 'STORED\r\n',
  [Status.NotStored]: 'NOT_STORED\r\n',
  [Status.Exists]: 'EXISTS\r\n',
  [Status.NotFound]: 'NOT_FOUND\r\n',
  [Status.TooLarge]: Errors.tooLarge,
  [Status.NoMemory]: 'SERVER_ERROR out of memory storing object\r\n',
  [Status.Deleted]: 'DELETED\r\n',
  [Status.Touched]: 'TOUCHED\r\n',
  [Status.NonNumeric]: 'CLIENT_ERROR cannot increment or decrement non-numeric value\r\n',
};

export class BatchExecutor {
  private readonly out = new ReplyWriter();

  constructor(private readonly store: Store) {}

  run(batch: ArrayBuffer): ArrayBuffer {
    const req = new BatchReader(batch);
    for (let i = 0; i < req.count; i++) {
      req.next();
      this.one(req);
      this.out.end();
    }
    return this.out.take();
  }

  private one(req: BatchReader): void {
    const store = this.store;
    switch (req.op) {
      case Op.Get:
      case Op.Gets: {
        const ref = store.get(req.key);
        if (ref !== 0) this.value(ref, req.op === Op.Gets);
        return;
      }
      case Op.Gat:
      case Op.Gats: {
        const ref = store.getAndTouch(req.key, req.exptime);
        if (ref !== 0) this.value(ref, req.op === Op.Gats);
        return;
      }
      case Op.Delete:
        return this.status(req, store.delete(req.key));
      case Op.Touch:
        return this.status(req, store.touch(req.key, req.exptime));
      case Op.Incr:
      case Op.Decr: {
        const status = store.incrDecr(req.key, req.op === Op.Incr, req.delta());
        if (status === Status.Ok) {
          if (!req.noreply) this.out.ascii(`${store.lastNumber}\r\n`);
          return;
        }
        return this.status(req, status);
      }
      case Op.FlushAll:
        store.flushAll(req.exptime);
        return;
      case Op.ResetStats:
        store.resetStats();
        return;
      case Op.Barrier:
        return;
      case Op.SetTooLarge:
        store.refuseTooLarge(req.key, req.flags === 1);
        return this.status(req, Status.TooLarge);
      default: {
        const mode = STORE_MODE[req.op];
        if (mode === undefined) return;
        return this.status(req, store.store(mode, req.key, req.flags, req.exptime, req.value, req.cas));
      }
    }
  }

  private status(req: BatchReader, status: StatusCode): void {
    if (!req.noreply) this.out.ascii(STATUS_LINE[status]!);
  }

  /** `VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\n`, written straight from the slab. */
  private value(ref: number, withCas: boolean): void {
    const store = this.store;
    const out = this.out;
    const key = store.keyOf(ref);
    const value = store.valueOf(ref);
    const head = withCas
      ? ` ${store.flagsOf(ref)} ${value.length} ${store.casOf(ref)}\r\n`
      : ` ${store.flagsOf(ref)} ${value.length}\r\n`;
    let p = out.reserve(6 + key.length + head.length + value.length + 2);
    const b = out.buf;
    p += b.write('VALUE ', p, 'latin1');
    b.set(key, p);
    p += key.length;
    p += b.write(head, p, 'latin1');
    b.set(value, p);
    p += value.length;
    b[p++] = 0x0d;
    b[p++] = 0x0a;
    out.advance(p);
  }
}
