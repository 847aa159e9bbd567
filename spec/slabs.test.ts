import t from 'tap';
import { slabLadder, MAX_CLASSES, pageSizeFor, chunkMaxFor } from '../lib/store/slabs.js';
import { ITEM_HEADER_BYTES, computeLayout } from '../lib/store/layout.js';

const MiB = 1024 * 1024;

t.test('default ladder matches memcached (-f 1.25 -n 48, 1 MiB pages)', async (t) => {
  const l = slabLadder(ITEM_HEADER_BYTES, 48, 1.25, MiB);
  t.same(l.slice(0, 12), [96, 120, 152, 192, 240, 304, 384, 480, 600, 752, 944, 1184]);
  // memcached's ladder (up to its 512 KiB slab_chunk_max) continues 1480 1856 2320 ... 394840.
  t.same(l.slice(12, 15), [1480, 1856, 2320]);
  t.ok(l.includes(394840), 'memcached class 38 (394840) is on the ladder');
  t.equal(l[l.length - 1], MiB / 2, 'last class is slab_chunk_max = half a page (memcached 524288)');
  t.ok(l.length <= MAX_CLASSES);
  for (let i = 0; i < l.length; i++) {
    t.equal(l[i]! % 8, 0, `class ${i + 1} is 8-aligned`);
    if (i > 0) t.ok(l[i]! > l[i - 1]!, `class ${i + 1} grows`);
  }
  // The last regular class is the last one below chunkMax / factor.
  t.ok(l[l.length - 2]! < MiB / 2 / 1.25);
  t.ok(l[l.length - 2]! * 1.25 >= MiB / 2 / 1.25);
});

t.test('other -f / -n', async (t) => {
  const a = slabLadder(ITEM_HEADER_BYTES, 100, 2, MiB);
  t.same(a.slice(0, 4), [152, 304, 608, 1216]);
  t.equal(a[a.length - 1], MiB / 2);
  const b = slabLadder(ITEM_HEADER_BYTES, 5, 1.5, 64 * 1024);
  t.equal(b[0], 56, 'align8(48 + 5)');
  t.equal(b[1], 88, 'align8(floor(56 * 1.5) = 84)');
  // A factor so small that the ladder would exceed 63 classes stops at 63, last = half a page.
  const c = slabLadder(ITEM_HEADER_BYTES, 48, 1.01, MiB);
  t.equal(c.length, MAX_CLASSES);
  t.equal(c[c.length - 1], MiB / 2);
  for (let i = 1; i < c.length; i++) t.ok(c[i]! > c[i - 1]!);
  t.throws(() => slabLadder(ITEM_HEADER_BYTES, 48, 1, MiB));
});

t.test('layout', async (t) => {
  const L = computeLayout({ memoryBytes: 16 * MiB + 5, pageSize: MiB, itemSizeMax: MiB, growthFactor: 1.25, minChunk: 48 });
  t.equal(L.pages, 16);
  t.equal(L.pageAreaByte % 4096, 0);
  t.equal(L.byteLength, L.pageAreaByte + 16 * MiB);
  t.ok(L.bucketCount >= (16 * MiB) / 96 / 2, 'a bucket per two possible items');
  t.ok(L.bucketCount < (16 * MiB) / 96, 'not one per item (its pages would all be RSS)');
  t.equal(L.bucketCount & (L.bucketCount - 1), 0, 'a power of two');
  t.equal(L.bucketCount & (L.bucketCount - 1), 0, 'power of two');
  t.ok(L.bucketsU32 * 4 + L.bucketCount * 4 <= L.pageAreaByte);
  const tiny = computeLayout({ memoryBytes: 10, pageSize: MiB, itemSizeMax: MiB, growthFactor: 1.25, minChunk: 48 });
  t.equal(tiny.pages, 1, 'at least one page');
});

t.test('pageSizeFor: 1 MiB pages for big shards, >= 64 pages for smaller ones, 64 KiB floor', async (t) => {
  const KiB = 1024;
  t.equal(pageSizeFor(16 * MiB), 256 * KiB, '-m 64 -t 4: 64 pages of 256 KiB');
  t.equal(pageSizeFor(32 * MiB), 512 * KiB);
  t.equal(pageSizeFor(64 * MiB), MiB, '64 MiB: memcached pages');
  t.equal(pageSizeFor(64 * MiB - 1), 512 * KiB);
  t.equal(pageSizeFor(1024 * MiB), MiB, '1 GiB: 1 MiB pages');
  t.equal(pageSizeFor(16 * 1024 * MiB), MiB);
  t.equal(pageSizeFor(8 * MiB), 128 * KiB);
  t.equal(pageSizeFor(4 * MiB), 64 * KiB);
  t.equal(pageSizeFor(2 * MiB), 64 * KiB, 'floor: 32 pages of 64 KiB');
  t.equal(pageSizeFor(100), 64 * KiB);
  for (let m = 1; m <= 4096; m += 7) {
    const bytes = m * MiB + 12345;
    const p = pageSizeFor(bytes);
    t.equal(p & (p - 1), 0, `${m} MiB: power of two`);
    t.ok(p >= 64 * KiB && p <= MiB);
    if (p > 64 * KiB) t.ok(Math.floor(bytes / p) >= 64, `${m} MiB: at least 64 pages`);
    if (p < MiB) t.ok(Math.floor(bytes / (2 * p)) < 64, `${m} MiB: the largest such page`);
  }
  // The ladder of a 16 MiB shard ends at 128 KiB chunks.
  const l = slabLadder(ITEM_HEADER_BYTES, 48, 1.25, pageSizeFor(16 * MiB));
  t.equal(l[l.length - 1], 128 * KiB);
  t.equal(chunkMaxFor(256 * KiB), 128 * KiB);
  t.ok(l.length < 40, `${l.length} classes fit 64 pages`);
});
