/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rings_v4.pml -- Promela model of the ring-per-producer protocol of issue
 * 14: the design, checked before it was built, that ABI v4 follows
 * (model/README.md maps each part to the code). Checked with spin; run
 * scripts/model_check.sh.
 * model/README.md ("rings_v4.pml") says what is modelled and what not.
 *
 * Each producer owns a ring of C positions: its own tail (no CAS: one
 * writer), its own tickets from 0, its own records and DONE_COUNT. The one
 * fetcher serves the rings in any order (a fair policy is a liveness
 * matter; safety must hold for every order) and stages what it finds in one
 * consumer-private queue of S entries, numbered by a consumer sequence
 * `seq`; each staged entry carries its ring and ticket. The fetcher stages
 * entry `seq` only while seq - D < S (D: the completer's cursor), so it
 * never overwrites an entry that is not yet completed. Executors claim
 * sequence numbers, as in v3. The completer walks `seq` in order, and knows
 * each entry's ticket without reading it: a ring's entries are staged in
 * ticket order, so it is that ring's count of entries seen so far
 * (`next[r]`). After a run it stores each touched ring's DONE_COUNT.
 *
 * The property this design exists for, beside no loss and no duplicate: a
 * producer that dies half-way through a batch stalls its own ring only.
 *
 * Memory is sequentially consistent, as in ring_v3.pml; the fetcher reads a
 * window's headers in any order and bodies are two words, so torn and stale
 * reads are possible.
 *
 * Configuration macros (spin -D...):
 *   C     ring capacity of each producer (and fetch window)      default 2
 *   S     staged queue entries (consumer side)                   default 2
 *   NB    batches per producer                                   default 2
 *   MAXN  largest batch (1..MAXN slots, nondeterministic)        default 2
 *   NE    executors                                              default 2
 *   DIE   producer 0 may die (stop forever) before any step of a
 *         batch it has reserved
 * Two producers, NP = 2 (the model's arrays are written out for two).
 * Mutations (each must make the verifier report an error):
 *   M1  a batch's first header is written before its body
 *   M3  the completer stores a ring's DONE_COUNT before its records
 *   M4  a producer ignores its own ring's back-pressure
 *   M6  the fetcher ignores the staged queue's back-pressure
 *   M7  the completer takes the staged sequence number for the ticket
 *   M8  the fetcher serves the rings strictly in turn, waiting for the
 *       next ring's head (head-of-line blocking across rings)
 * With BEYOND the completer, stalled at an unfinished entry, may count the
 * other ring past it (the code's publish_beyond_gap): over that ring's
 * finished entries up to its own first unfinished one, each entry's record
 * first, then the ring's DONE_COUNT; the walk in order later leaves those
 * records alone (in the code they have none to rewrite).
 *   M9  the walk in order rewrites a record the beyond pass published
 *   M10 the beyond pass counts a ring past its own unfinished entry
 */

#ifndef C
#define C 2
#endif
#ifndef S
#define S 2
#endif
#ifndef NB
#define NB 2
#endif
#ifndef MAXN
#define MAXN 2
#endif
#ifndef NE
#define NE 2
#endif

#define NP    2
#define W     C                  /* fetch window */
#define MAXR  (NB * MAXN)        /* tickets a ring ever reserves, at most */
#define MAXQ  (NP * MAXR)        /* staged sequence numbers, at most */
#define EMPTY 255

#if C != 2 && C != 4
#error "C must be 2 or 4"
#endif
#if S != 1 && S != 2 && S != 4
#error "S must be 1, 2 or 4"
#endif
#if MAXN < 1 || MAXN > 2 || MAXN > C
#error "MAXN must be 1..2 and at most C"
#endif

/* A body word names its ring and ticket, so that a body copied from the
 * wrong ring, lap or position is told apart. */
#define TAG(r, t)  ((r) * 32 + (t))

/* ---------------- shared state ---------------- */

/* host-mapped, one ring a producer: [r * C + position] */
byte header[NP * C] = EMPTY;
byte body_a[NP * C] = EMPTY;
byte body_b[NP * C] = EMPTY;
byte record[NP * C] = EMPTY;   /* completion records (completer-written)  */
byte DONE_COUNT[NP];           /* a ring's: every ticket below completed   */

/* host side, a ring each: the producer's tail, the reaper's cursor */
byte tail[NP];
byte reaped[NP];

/* consumer side */
byte fetched_r[NP];            /* next ticket to stage, a ring each        */
byte Q = 0;                    /* published staged count (fetched cursor)  */
byte claim = 0;
byte D = 0;                    /* completer's cursor over seq (done_cursor) */
byte staged_a[S] = EMPTY;
byte staged_b[S] = EMPTY;
byte staged_ring[S] = EMPTY;
byte done_flag[S] = EMPTY;     /* done_flag[s % S] == s: entry s executed  */
byte done_ring[S] = EMPTY;     /* its ring, written before the flag        */

/* verification-only (ghost) state */
byte executed[NP * MAXR];
byte completed[NP * MAXR];
byte pdone = 0;
bit  died = 0;
byte dead_lo = 0;              /* producer 0's first ticket of the dead batch */

#define IDX(r, t)  ((r) * MAXR + (t))

#ifdef DIE
#define STEP(s)  if :: s :: atomic { (r == 0 && !died) -> died = 1; dead_lo = t; goto dead } fi
#define LBL_WAIT end_wait
#else
#define STEP(s)  s
#define LBL_WAIT wait
#endif

#ifdef M4
#define ROOM(r, n)  true
#else
#define ROOM(r, n)  (tail[r] + (n) - reaped[r] <= C)
#endif

/* ---------------- host producers: one ring each ---------------- */

active [NP] proctype producer()
{
  byte r = _pid;           /* producers are the first NP processes */
  byte b, t, n, i;

  do
  :: b < NB ->
       if
       :: n = 1
#if MAXN >= 2
       :: n = 2
#endif
       fi;
       /* P1: its own tail, one writer: a load and a store, no CAS */
LBL_WAIT:
       atomic { ROOM(r, n) -> t = tail[r]; tail[r] = tail[r] + n };
#ifdef M1
       STEP(header[r * C + t % C] = t);
#endif
       i = 0;
       do
       :: i < n ->
            STEP(body_a[r * C + (t + i) % C] = TAG(r, t + i));
            STEP(body_b[r * C + (t + i) % C] = TAG(r, t + i));
            i++
       :: else -> break
       od;
       i = 1;
       do
       :: i < n -> STEP(header[r * C + (t + i) % C] = t + i); i++
       :: else -> break
       od;
#ifndef M1
       STEP(header[r * C + t % C] = t);
#endif
       atomic { b++; t = 0; n = 0; i = 0 }
  :: else -> break
  od;
  pdone++;
dead:
  skip
}

/* ---------------- consumer: fetcher ---------------- */

#define RDH(j) \
  :: atomic { ((mask & (1 << j)) == 0) -> \
              h[j] = header[r * C + (f + j) % C]; mask = mask | (1 << j) }

/* The ring a round serves: any ring whose head is READY (M8: strictly in
 * turn, waiting for that ring's head). */
#ifdef M8
#define PICK  atomic { (fetched_r[turn] < MAXR) && header[turn * C + fetched_r[turn] % C] == fetched_r[turn] -> r = turn; turn = 1 - turn }
#else
#define PICK  if \
  :: atomic { (fetched_r[0] < MAXR) && header[0 * C + fetched_r[0] % C] == fetched_r[0] -> r = 0 } \
  :: atomic { (fetched_r[1] < MAXR) && header[1 * C + fetched_r[1] % C] == fetched_r[1] -> r = 1 } \
  fi
#endif

#ifdef M6
#define QROOM(i)  true
#else
#define QROOM(i)  (q + (i) - D < S)
#endif

active proctype fetcher()
{
  byte r, f, q, k, i, mask, turn;
  byte h[W];

end_fetch:
  do
  :: PICK;
       f = fetched_r[r];
       q = Q;
       /* the window's headers, in any order, one step each */
       do
       RDH(0)
       RDH(1)
#if W == 4
       RDH(2)
       RDH(3)
#endif
       :: mask == (1 << W) - 1 -> break
       od;
       /* k = the longest READY prefix (acquire fence: no-op under SC) */
       atomic {
         k = 0;
         do
         :: (k < W) && (f + k < MAXR) && h[k] == f + k -> k++
         :: else -> break
         od
       }
       /* stage entries q, q+1, ... while the staged queue has room (reads
          D: device memory), one body word a step */
       i = 0;
       do
       :: (i < k) && QROOM(i) ->
            staged_a[(q + i) % S] = body_a[r * C + (f + i) % C];
            atomic {
              staged_b[(q + i) % S] = body_b[r * C + (f + i) % C];
              staged_ring[(q + i) % S] = r;
              i++
            }
       :: else -> break
       od;
       /* device release: the ring's cursor and the staged count */
       atomic {
         fetched_r[r] = f + i; Q = q + i;
         r = 0; f = 0; q = 0; k = 0; i = 0; mask = 0;
         h[0] = 0; h[1] = 0;
#if W == 4
         h[2] = 0; h[3] = 0;
#endif
       }
  od
}

/* ---------------- consumer: executors ---------------- */

active [NE] proctype executor()
{
  byte c, n, s, a, b, r, t;

end_exec:
  do
  :: atomic { claim < Q ->
       c = claim;
       if
       :: n = 1
       :: claim + 2 <= Q -> n = 2
       fi;
       claim = c + n }
       s = c;
       do
       :: s < c + n ->
            a = staged_a[s % S];
            atomic {
              b = staged_b[s % S];
              r = staged_ring[s % S];
              t = a % 32;
              /* a whole body of one ring's ticket, from the ring it names */
              assert(a == b && a / 32 == r && r < NP && t < MAXR);
              assert(!(died && r == 0) || t < dead_lo);
              executed[IDX(r, t)]++;
              assert(executed[IDX(r, t)] == 1)
            }
            done_ring[s % S] = r;        /* before the flag (release) */
            done_flag[s % S] = s;
            s++
       :: else -> break
       od;
       atomic { c = 0; n = 0; s = 0; a = 0; b = 0; r = 0; t = 0 }
  od
}

/* ---------------- consumer: completer ---------------- */

active proctype completer()
{
  byte d, r, t;
  byte next[NP];            /* a ring's next ticket: entries seen so far */
  bit touched[NP];
  bit early[S];             /* entry's record published by a beyond pass */
  byte ahead[NP];           /* beyond pass: a ring's entries counted past D */
  bit blocked[NP];          /* beyond pass: the ring has an unfinished entry */

end_comp:
  do
  :: (D < MAXQ) && (done_flag[D % S] == D) ->
       d = D;
       do
       :: (d < MAXQ) && (done_flag[d % S] == d) ->
            atomic {
              r = done_ring[d % S];
#ifdef M7
              t = d;                         /* BUG: the sequence number */
#else
              t = next[r];
#endif
              next[r] = t + 1;
              touched[r] = 1
            };
#ifdef M3
            DONE_COUNT[r] = t + 1;           /* BUG: the count before the record */
#endif
#ifdef M9
            early[d % S] = 0;
            record[r * C + t % C] = t;       /* BUG: over a position the host may have reused */
#else
            if
            :: early[d % S] -> early[d % S] = 0   /* published by a beyond pass */
            :: else -> record[r * C + t % C] = t
            fi;
#endif
            d++
       :: else -> break
       od;
       /* a ring's DONE_COUNT once its records are out; one store a ring,
        * never lower than a beyond pass stored */
       if :: touched[0] && DONE_COUNT[0] < next[0] -> DONE_COUNT[0] = next[0] :: else -> skip fi;
       if :: touched[1] && DONE_COUNT[1] < next[1] -> DONE_COUNT[1] = next[1] :: else -> skip fi;
       /* device release: the staged entries below d may be reused */
       atomic { D = d; d = 0; r = 0; t = 0; touched[0] = 0; touched[1] = 0 }
#ifdef BEYOND
  :: (D < Q) && (done_flag[D % S] != D) ->
       /* stalled at D: count the other ring past it (publish_beyond_gap) */
       atomic {
         d = D + 1;
         ahead[0] = 0; ahead[1] = 0; blocked[0] = 0; blocked[1] = 0;
         blocked[staged_ring[D % S]] = 1
       };
       do
       :: d < Q ->
            if
            :: done_flag[d % S] != d ->
#ifdef M10
                 skip                          /* BUG: not blocked by it */
#else
                 blocked[staged_ring[d % S]] = 1
#endif
            :: else ->
                 atomic { r = done_ring[d % S]; t = next[r] + ahead[r] };
                 if
                 :: !blocked[r] && !early[d % S] ->
                      record[r * C + t % C] = t;
                      atomic { early[d % S] = 1; ahead[r]++ }
                 :: !blocked[r] && early[d % S] -> ahead[r]++
                 :: else -> skip
                 fi
            fi;
            d++
       :: else -> break
       od;
       if :: DONE_COUNT[0] < next[0] + ahead[0] -> DONE_COUNT[0] = next[0] + ahead[0] :: else -> skip fi;
       if :: DONE_COUNT[1] < next[1] + ahead[1] -> DONE_COUNT[1] = next[1] + ahead[1] :: else -> skip fi;
       atomic { d = 0; r = 0; t = 0; ahead[0] = 0; ahead[1] = 0; blocked[0] = 0; blocked[1] = 0 }
#endif
  od
}

/* ---------------- host reapers: one a ring ---------------- */

active [NP] proctype reaper()
{
  byte r = _pid - (NP + 1 + NE + 1);   /* after producers, fetcher, executors, completer */
  byte dc, t;

end_reap:
  do
  :: atomic { reaped[r] < DONE_COUNT[r] -> dc = DONE_COUNT[r] };
       do
       :: reaped[r] < dc ->
            atomic {
              t = reaped[r];
              assert(record[r * C + t % C] == t);
              assert(executed[IDX(r, t)] == 1);
              assert(completed[IDX(r, t)] == 0);
              completed[IDX(r, t)]++;
              reaped[r] = t + 1
            }
       :: else -> break
       od;
       atomic { dc = 0; t = 0 }
  od
}

/* ---------------- final check, once the system is quiescent ----------- */

active proctype checker()
{
  byte r, t;

  timeout ->
  atomic {
    /* everything staged was run and completed */
    assert(claim == Q && D == Q);
    r = 0;
    do
    :: r < NP ->
         if
         :: died && r == 0 ->
              /* the dead ring stops at its dead batch ... */
              assert(fetched_r[0] == dead_lo && DONE_COUNT[0] == dead_lo);
              assert(reaped[0] == dead_lo)
         :: else ->
              /* ... and stalls nobody else: every other ring is done */
              assert(fetched_r[r] == tail[r] && DONE_COUNT[r] == tail[r]);
              assert(reaped[r] == tail[r])
         fi;
         t = 0;
         do
         :: t < tail[r] ->
              if
              :: died && r == 0 && t >= dead_lo ->
                   assert(executed[IDX(r, t)] == 0 && completed[IDX(r, t)] == 0)
              :: else ->
                   assert(executed[IDX(r, t)] == 1 && completed[IDX(r, t)] == 1)
              fi;
              t++
         :: else -> break
         od;
         r++
    :: else -> break
    od;
    assert(died || pdone == NP)
  }
}
