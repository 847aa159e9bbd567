/**
 * Runs meta commands (mg ms md ma me) against a Store and writes memcached's replies: the store's
 * building blocks, applied in the order memcached 1.6.45 applies them (proto_parser.c), so that
 * flags such as `t` and `T` in one request see each other as they do in memcached.
 */
import { Op, type ShardOp } from '../protocol/command.js';
import { MetaBit, type MetaRequest } from '../protocol/meta.js';
import { MF_KEY_BINARY, MF_STALE, MF_WIN_SENT } from '../store/layout.js';
import { Mode, Status, type Store, type StoreMode } from '../store/store.js';
import type { ReplyWriter } from './reply-writer.js';

const EMPTY = new Uint8Array(0);
const CRLF = '\r\n';

/** The reply line of a store status (ms); errors are whole lines. */
const SET_CODE: Record<number, string> = {
  [Status.Stored]: 'HD',
  [Status.Exists]: 'EX',
  [Status.NotFound]: 'NF',
  [Status.NotStored]: 'NS',
};
const SET_ERROR: Record<number, string> = {
  [Status.TooLarge]: 'SERVER_ERROR object too large for cache\r\n',
  [Status.NoMemory]: 'SERVER_ERROR out of memory storing object\r\n',
};

const has = (m: MetaRequest, bit: number) => (m.bits & bit) !== 0;

/** `t`'s value: -1 without expiry; a TTL already past (T-1) wraps around as in memcached (itoa_u32). */
function ttlText(store: Store, ref: number): number {
  return store.exptimeOf(ref) === 0 ? -1 : store.ttlOf(ref) >>> 0;
}

/** The flag tokens of a request, in the order sent. */
function tokens(m: MetaRequest): string[] {
  return Buffer.from(m.flags.buffer, m.flags.byteOffset, m.flags.length)
    .toString('latin1')
    .split(' ')
    .filter((t) => t !== '');
}

/** ` k<key>`, base64 with a ` b` after it for binary keys (memcached's META_KEY). */
function keyToken(key: Uint8Array, binary: boolean): string {
  const bytes = Buffer.from(key.buffer, key.byteOffset, key.length);
  return binary ? ` k${bytes.toString('base64')} b` : ` k${bytes.toString('latin1')}`;
}

/** The O and k tokens every reply echoes, for the key as the request gave it. */
function echoed(m: MetaRequest, key: Uint8Array): string {
  if (!has(m, MetaBit.Opaque | MetaBit.ReturnKey)) return '';
  let line = '';
  for (const t of tokens(m)) {
    if (t[0] === 'O') line += ` ${t}`;
    else if (t[0] === 'k') line += keyToken(key, has(m, MetaBit.Base64Key));
  }
  return line;
}

export class MetaExecutor {
  constructor(
    private readonly store: Store,
    private readonly out: ReplyWriter,
  ) {}

  run(op: ShardOp, key: Uint8Array, value: Uint8Array | null, m: MetaRequest): void {
    switch (op) {
      case Op.MetaGet:
        return this.get(key, m);
      case Op.MetaSet:
        return this.set(key, value ?? EMPTY, m);
      case Op.MetaDelete:
        return this.delete(key, m);
      case Op.MetaArith:
        return this.arith(key, m);
      case Op.MetaDebug:
        return this.debug(key);
    }
  }

  /** mg: hit, miss, placeholder on a miss (N), early recache (R), stale and win marks (X W Z). */
  private get(key: Uint8Array, m: MetaRequest): void {
    const store = this.store;
    let ref = store.peek(key);
    let created = false;
    if (ref === 0 && has(m, MetaBit.Vivify)) {
      ref = store.insert(key, 0, 0, EMPTY, has(m, MetaBit.NewCas) ? m.newCas : 0);
      created = ref !== 0;
    }
    if (ref === 0) {
      store.countMetaGet(0, false);
      if (!has(m, MetaBit.Quiet)) this.out.ascii(`EN${echoed(m, key)}${CRLF}`);
      return;
    }
    // C: the client has this version already, so the value is left out
    const withValue = has(m, MetaBit.Value) && !(has(m, MetaBit.CompareCas) && store.casOf(ref) === m.compareCas);
    const vlen = store.valueLength(ref);
    const marks = store.metaFlags(ref);
    const winSent = (marks & MF_WIN_SENT) !== 0;
    let line = withValue ? `VA ${vlen}` : 'HD';
    let won = false;
    let touched = false;
    for (const t of tokens(m)) {
      switch (t[0]) {
        case 'T':
          touched = true;
          store.setExptime(ref, m.ttl);
          break;
        case 'N':
          if (created) {
            store.setExptime(ref, m.vivifyTtl);
            won = true;
          }
          break;
        case 'R':
          if (!winSent && !created && store.expiresBefore(ref, m.recacheTtl)) won = true;
          break;
        case 's':
          line += ` s${vlen}`;
          break;
        case 't':
          line += ` t${ttlText(store, ref)}`;
          break;
        case 'c':
          line += ` c${store.casOf(ref)}`;
          break;
        case 'f':
          line += ` f${store.flagsOf(ref)}`;
          break;
        case 'l':
          line += ` l${store.idleSeconds(ref)}`;
          break;
        case 'h':
          line += ` h${store.fetched(ref) ? 1 : 0}`;
          break;
        case 'O':
          line += ` ${t}`;
          break;
        case 'k':
          line += keyToken(store.keyOf(ref), (marks & MF_KEY_BINARY) !== 0);
          break;
      }
    }
    // Z before W: a client never sees both (memcached's order)
    if (winSent) line += ' Z';
    if ((marks & MF_STALE) !== 0) {
      line += ' X';
      if (!winSent) won = true; // the first to see a stale item recaches it
    }
    if (won) {
      line += ' W';
      store.setMetaFlags(ref, marks | MF_WIN_SENT);
    }
    this.out.ascii(line + CRLF);
    if (withValue) {
      const p = this.out.reserve(vlen + 2);
      store.copyValue(ref, this.out.buf, p);
      this.out.buf[p + vlen] = 0x0d;
      this.out.buf[p + vlen + 1] = 0x0a;
      this.out.advance(p + vlen + 2);
    }
    if (!has(m, MetaBit.NoBump)) store.hit(ref);
    store.countMetaGet(ref, touched);
  }

  /** ms: set, or the mode M gives; C compares the CAS, I stores an older CAS as stale, E sets it. */
  private set(key: Uint8Array, value: Uint8Array, m: MetaRequest): void {
    const store = this.store;
    const mode = setMode(m);
    const creates = mode === Mode.AppendOrCreate || mode === Mode.PrependOrCreate;
    const { status, ref } = store.store(mode, key, m.clientFlags, creates ? m.vivifyTtl : m.ttl, value, has(m, MetaBit.CompareCas) ? m.compareCas : 0, {
      newCas: has(m, MetaBit.NewCas) ? m.newCas : 0,
      allowStale: has(m, MetaBit.Invalidate) && mode === Mode.Cas,
      keyBinary: has(m, MetaBit.Base64Key),
    });
    const code = SET_CODE[status];
    if (code === undefined) return this.out.ascii(SET_ERROR[status]!);
    if (status === Status.Stored && has(m, MetaBit.Quiet)) return;
    const stored = status === Status.Stored;
    let line = code;
    for (const t of tokens(m)) {
      switch (t[0]) {
        case 'O':
          line += ` ${t}`;
          break;
        case 'k':
          line += keyToken(key, has(m, MetaBit.Base64Key));
          break;
        case 'c':
          line += ` c${stored ? store.casOf(ref) : 0}`;
          break;
        case 's':
          line += ` s${stored ? store.valueLength(ref) : value.length}`;
          break;
      }
    }
    this.out.ascii(line + CRLF);
  }

  /** md: delete; I marks stale instead (new CAS, T sets the TTL); x leaves an empty item behind. */
  private delete(key: Uint8Array, m: MetaRequest): void {
    const store = this.store;
    let ref = store.peek(key);
    let code = 'HD';
    if (ref === 0) {
      store.countDeleteMiss();
      code = 'NF';
    } else if (has(m, MetaBit.CompareCas) && store.casOf(ref) !== m.compareCas) {
      store.countDeleteMiss();
      code = 'EX';
    } else {
      if (has(m, MetaBit.RemoveValue)) {
        const cas = has(m, MetaBit.NewCas) ? m.newCas : store.casOf(ref);
        ref = store.insert(key, m.clientFlags, has(m, MetaBit.Ttl) ? m.ttl : 0, EMPTY, cas);
        if (ref === 0) return this.out.ascii('SERVER_ERROR out of memory\r\n');
      }
      if (has(m, MetaBit.Invalidate)) {
        if (has(m, MetaBit.Ttl)) store.setExptime(ref, m.ttl);
        // stale, and the next mg may win the recache again
        store.setMetaFlags(ref, (store.metaFlags(ref) | MF_STALE) & ~MF_WIN_SENT);
        store.setCas(ref, has(m, MetaBit.NewCas) ? m.newCas : 0);
      } else if (has(m, MetaBit.RemoveValue)) {
        store.countDeleteHit(ref);
      } else {
        store.deleteItem(ref);
      }
      if (has(m, MetaBit.Quiet)) return;
    }
    this.out.ascii(`${code}${echoed(m, key)}${CRLF}`);
  }

  /** ma: incr (or decr with M), D delta, N creates a missing counter at J, C/E compare/set CAS. */
  private arith(key: Uint8Array, m: MetaRequest): void {
    const store = this.store;
    const incr = m.mode !== 0x44 && m.mode !== 0x2d; // D and - decrement
    const vivify = has(m, MetaBit.Vivify);
    const result = store.incrDecr(key, incr, m.delta, has(m, MetaBit.CompareCas) ? m.compareCas : 0, !vivify);
    let ref = 0;
    let created = false;
    let number = 0n;
    switch (result.status) {
      case Status.Ok:
        ref = result.ref;
        number = result.number;
        if (has(m, MetaBit.NewCas)) store.setCas(ref, m.newCas);
        break;
      case Status.NonNumeric:
        return this.out.ascii('CLIENT_ERROR cannot increment or decrement non-numeric value\r\n');
      case Status.NoMemory:
        return this.out.ascii('SERVER_ERROR out of memory\r\n');
      case Status.NotFound:
        if (!vivify) return this.out.ascii(`NF${echoed(m, key)}${CRLF}`);
        ref = store.insert(key, 0, 0, Buffer.from(String(m.initial), 'latin1'), has(m, MetaBit.NewCas) ? m.newCas : 0);
        if (ref === 0) return this.out.ascii('SERVER_ERROR Out of memory allocating new item\r\n');
        created = true;
        number = m.initial;
        break;
      default:
        return this.out.ascii(`EX${echoed(m, key)}${CRLF}`);
    }
    const digits = String(number);
    const cas = store.casOf(ref);
    let line = has(m, MetaBit.Value) ? `VA ${digits.length}` : 'HD';
    for (const t of tokens(m)) {
      switch (t[0]) {
        case 'c':
          line += ` c${cas}`;
          break;
        case 't':
          line += ` t${ttlText(store, ref)}`;
          break;
        case 'T':
          store.setExptime(ref, m.ttl);
          break;
        case 'N':
          if (created) store.setExptime(ref, m.vivifyTtl);
          break;
        case 'O':
          line += ` ${t}`;
          break;
        case 'k':
          line += keyToken(key, has(m, MetaBit.Base64Key));
          break;
      }
    }
    // q hides a success, after its T / N took effect
    if (has(m, MetaBit.Quiet)) return;
    this.out.ascii(has(m, MetaBit.Value) ? `${line}${CRLF}${digits}${CRLF}` : line + CRLF);
  }

  /** me: memcached's human-readable item dump. */
  private debug(key: Uint8Array): void {
    const store = this.store;
    store.countMetaDebug();
    const ref = store.peek(key);
    if (ref === 0) return this.out.ascii(`EN${CRLF}`);
    const stored = Buffer.from(store.keyOf(ref));
    const name = (store.metaFlags(ref) & MF_KEY_BINARY) !== 0 ? stored.toString('base64') : stored.toString('latin1');
    this.out.ascii(
      `ME ${name} exp=${store.ttlOf(ref)} la=${store.idleSeconds(ref)} cas=${store.casOf(ref)} ` +
        `fetch=${store.fetched(ref) ? 'yes' : 'no'} cls=${store.memcachedClassOf(ref)} size=${store.sizeOf(ref)}${CRLF}`,
    );
  }
}

/** ms's store mode: M's E A P R S (A and P create with N), C turning set and replace into cas. */
function setMode(m: MetaRequest): StoreMode {
  const vivify = has(m, MetaBit.Vivify);
  switch (String.fromCharCode(m.mode)) {
    case 'E':
      return Mode.Add;
    case 'A':
      return vivify ? Mode.AppendOrCreate : Mode.Append;
    case 'P':
      return vivify ? Mode.PrependOrCreate : Mode.Prepend;
    case 'R':
      return has(m, MetaBit.CompareCas) ? Mode.Cas : Mode.Replace;
    default:
      return has(m, MetaBit.CompareCas) ? Mode.Cas : Mode.Set;
  }
}
