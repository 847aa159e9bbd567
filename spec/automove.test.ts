import t from 'tap';
import { AUTOMOVE_CLASS_SLOTS, AUTOMOVE_WINDOW, automoveStep, type ClassReading } from '../lib/store/automove.js';

/** Readings for classes 1..n (index 0 unused), from a per-class description. */
const readings = (classes: Array<Partial<ClassReading>>): ClassReading[] => [
  { evicted: 0, outofmemory: 0, totalPages: 0, freeChunks: 0, perPage: 10, coldAge: 0 },
  ...classes.map((c) => ({ evicted: 0, outofmemory: 0, totalPages: 3, freeChunks: 0, perPage: 10, coldAge: 0, ...c })),
];

t.test('a young evicting class takes a page from the oldest, only once the window has filled', async (t) => {
  const f64 = new Float64Array(4 * AUTOMOVE_CLASS_SLOTS);
  let evicted = 0;
  const decisions: Array<string | null> = [];
  for (let tick = 1; tick <= AUTOMOVE_WINDOW + 2; tick++) {
    evicted += 5;
    const move = automoveStep(f64, 0, tick, readings([{ coldAge: 1000 }, { coldAge: 10, evicted }, { coldAge: 500 }]));
    decisions.push(move === null ? null : `${move.src}->${move.dst}`);
  }
  t.same(decisions.slice(0, AUTOMOVE_WINDOW), new Array(AUTOMOVE_WINDOW).fill(null), 'nothing while the window fills');
  t.same(decisions.slice(AUTOMOVE_WINDOW), ['1->2', '1->2'], 'then the oldest class (1) gives to the evicting one (2)');
});

t.test('no move when the young class is within the ratio, or stopped evicting, or the source is too small', async (t) => {
  const run = (classes: (tick: number) => Array<Partial<ClassReading>>, ratio = 0.8) => {
    const f64 = new Float64Array(4 * AUTOMOVE_CLASS_SLOTS);
    let last = null;
    for (let tick = 1; tick <= AUTOMOVE_WINDOW + 1; tick++) last = automoveStep(f64, 0, tick, readings(classes(tick)), ratio);
    return last;
  };
  t.equal(run((n) => [{ coldAge: 100 }, { coldAge: 90, evicted: n }]), null, 'ages 90 vs 100: within 0.8');
  t.same(run((n) => [{ coldAge: 100 }, { coldAge: 90, evicted: n }], 0.95), { src: 1, dst: 2 }, 'the same with ratio 0.95');
  t.equal(run((n) => [{ coldAge: 1000 }, { coldAge: 10, evicted: Math.min(n, 25) }]), null, 'no eviction in the last second');
  t.equal(run((n) => [{ coldAge: 1000, totalPages: 2 }, { coldAge: 10, evicted: n }]), null, 'a class of 2 pages is no source');
});

t.test('a class sitting on free chunks for a whole quiet window gives a page to the free pool', async (t) => {
  const quietFor = (free: number) => {
    const f64 = new Float64Array(3 * AUTOMOVE_CLASS_SLOTS);
    const moves: Array<string | null> = [];
    // its pages appear at the first look (a change: dirty), then nothing changes
    for (let tick = 1; tick <= AUTOMOVE_WINDOW + 1; tick++) {
      const m = automoveStep(f64, 0, tick, readings([{ freeChunks: free }, { coldAge: 5 }]));
      moves.push(m === null ? null : `${m.src}->${m.dst}`);
    }
    return moves;
  };
  const moves = quietFor(26);
  t.same(moves.slice(0, AUTOMOVE_WINDOW), new Array(AUTOMOVE_WINDOW).fill(null), 'not while the first look (pages gained) is in the window');
  t.equal(moves[AUTOMOVE_WINDOW], '1->0', 'then 26 free chunks (> 2.5 pages of 10) give a page to the pool');
  t.same(quietFor(25), new Array(AUTOMOVE_WINDOW + 1).fill(null), '25 free chunks are not more than 2.5 pages');
});
