/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ring_v3.pml -- Promela model of megaring's ring protocol "v3".
 * Checked with spin (Debian package `spin`); run scripts/model_check.sh.
 * model/README.md says what is modelled, what is abstracted and why.
 *
 * Tickets are global and grow without bound; ticket t lives in ring
 * position t % C. Memory is sequentially consistent (Promela), so release
 * and acquire are just program order; the weak-memory danger the protocol
 * must survive is modelled explicitly instead: the fetcher reads the
 * headers of its window in any order, every body is two words written and
 * read in separate steps (torn reads are possible), and every shared
 * access that matters is its own atomic step.
 *
 * Configuration macros (spin -D...):
 *   C     ring capacity (positions; also the fetch window W)    default 2
 *   NP    host producers                                        default 2
 *   NB    batches per producer                                  default 2
 *   MAXN  largest batch (each batch is 1..MAXN slots, chosen
 *         nondeterministically)                                 default 2
 *   NE    executors                                             default 2
 *   DIE   at most one producer may die (stop forever) before any
 *         step of a batch it has reserved
 * Mutations (each must make the verifier report an error):
 *   M1  header of a batch's first slot is written before its body
 *   M2  fetcher accepts any non-empty header, not only its own ticket
 *   M3  completer stores DONE_COUNT before writing the records
 *   M4  reserve ignores the reaper's back-pressure
 *   M5  executor claim is a load then a separate store, not a CAS
 */

#ifndef C
#define C 2
#endif
#ifndef NP
#define NP 2
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

#define W     C                  /* fetch window */
#define MAXT  (NP * NB * MAXN)   /* upper bound on tickets ever reserved */
#define EMPTY 255                /* initial content of every ring word */

#if C != 2 && C != 4
#error "C must be 2 or 4"
#endif
#if MAXN < 1 || MAXN > 3 || MAXN > C
#error "MAXN must be 1..3 and at most C (a larger batch can never be reserved)"
#endif
#if MAXT > 254
#error "too many tickets for byte-sized tickets"
#endif

/* ---------------- shared state ---------------- */

/* host-mapped ring */
byte header[C]   = EMPTY;   /* header[p] == t : "ticket t READY"           */
byte body_a[C]   = EMPTY;   /* body, first word                            */
byte body_b[C]   = EMPTY;   /* body, second word                           */
byte record[C]   = EMPTY;   /* completion records (written by completer)   */
byte DONE_COUNT  = 0;       /* every ticket below it has a record          */

/* host side */
byte tail   = 0;            /* host reservation cursor                     */
byte reaped = 0;            /* host reaper cursor (back-pressure)          */

/* device side */
byte F = 0;                 /* published fetch cursor                       */
byte claim = 0;             /* executors' claim cursor                      */
byte staged_a[C] = EMPTY;   /* device-side staged copy of the body          */
byte staged_b[C] = EMPTY;
byte done_flag[C] = EMPTY;  /* done_flag[p] == t : ticket t executed        */

/* verification-only (ghost) state */
byte executed[MAXT];        /* times ticket t was executed                 */
byte completed[MAXT];       /* times ticket t was reaped                   */
byte pdone  = 0;            /* producers that published all their batches  */
bit  died   = 0;            /* a producer died                             */
byte dead_lo = 0;           /* first ticket of the batch it died in        */

/* ---------------- macros for configurations / mutations ---------------- */

#ifdef DIE
/* A dying producer stops forever INSTEAD of performing step s.            */
#define STEP(s)  if :: s :: atomic { !died -> died = 1; dead_lo = t; goto dead } fi
#define LBL_WAIT end_wait   /* a live producer may wait forever behind it  */
#else
#define STEP(s)  s
#define LBL_WAIT wait
#endif

#ifdef M4
#define ROOM(n)  true                          /* BUG: no back-pressure */
#else
#define ROOM(n)  (tail + (n) - reaped <= C)
#endif

#ifdef M2
#define ACCEPT(h, t)  ((h) != EMPTY)           /* BUG: any non-empty header */
#else
#define ACCEPT(h, t)  ((h) == (t))
#endif

/* ---------------- host producers ---------------- */

active [NP] proctype producer()
{
  byte b, t, n, i;

  do
  :: b < NB ->
       if
       :: n = 1
#if MAXN >= 2
       :: n = 2
#endif
#if MAXN >= 3
       :: n = 3
#endif
       fi;
       /* P1: reserve [t, t+n) with a CAS on the shared tail */
LBL_WAIT:
       atomic { ROOM(n) -> t = tail; tail = tail + n };
#ifdef M1
       STEP(header[t % C] = t);                 /* BUG: header before body */
#endif
       /* P2: bodies, two words each, separate stores */
       i = 0;
       do
       :: i < n ->
            STEP(body_a[(t + i) % C] = t + i);
            STEP(body_b[(t + i) % C] = t + i);
            i++
       :: else -> break
       od;
       /* P3: headers t+1 .. t+n-1, then header t last */
       i = 1;
       do
       :: i < n -> STEP(header[(t + i) % C] = t + i); i++
       :: else -> break
       od;
#ifndef M1
       STEP(header[t % C] = t);
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
              h[j] = header[(f + j) % C]; mask = mask | (1 << j) }

active proctype fetcher()
{
  byte f, k, i, mask;
  byte h[W];

end_fetch:
  do
  :: (f < MAXT) && ACCEPT(header[f % C], f) ->   /* poll: something to do */
       /* read the headers of [f, f+W) in any order, one step each
          (locals mask, k, i, h[] are 0 here: reset at the end of a round) */
       do
       RDH(0)
       RDH(1)
#if W == 4
       RDH(2)
       RDH(3)
#endif
       :: mask == (1 << W) - 1 -> break
       od;
       /* acquire fence: no-op under SC. k = longest READY prefix */
       atomic {
         k = 0;
         do
         :: (k < W) && (f + k < MAXT) && ACCEPT(h[k], f + k) -> k++
         :: else -> break
         od
       }
       /* copy the bodies of [f, f+k), one word per step */
       do
       :: i < k ->
            staged_a[(f + i) % C] = body_a[(f + i) % C];
            atomic { staged_b[(f + i) % C] = body_b[(f + i) % C]; i++ }
       :: else -> break
       od;
       /* device release: publish the fetched cursor */
       atomic {
         f = f + k; F = f;
         k = 0; i = 0; mask = 0;
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
  byte c, n, t, a, b;

end_exec:
  do
#ifndef M5
  :: atomic { claim < F ->                      /* CAS on claim */
       c = claim;
       if
       :: n = 1
       :: claim + 2 <= F -> n = 2
       fi;
       claim = c + n }
#else
  :: atomic { claim < F -> c = claim };         /* BUG: load ...        */
       if
       :: n = 1
       :: c + 2 <= F -> n = 2
       fi;
       claim = c + n;                           /* ... then blind store */
#endif
       t = c;
       do
       :: t < c + n ->
            a = staged_a[t % C];
            atomic {
              b = staged_b[t % C];
              assert(a == t && b == t);          /* no torn/stale/early body */
              assert(!died || t < dead_lo);      /* dead batch never runs */
              executed[t]++;
              assert(executed[t] == 1)           /* never run twice */
            }
            done_flag[t % C] = t;                /* device release */
            t++
       :: else -> break
       od;
       atomic { c = 0; n = 0; t = 0; a = 0; b = 0 }
  od
}

/* ---------------- consumer: completer ---------------- */

active proctype completer()
{
  byte D, d;

end_comp:
  do
  :: (D < MAXT) && (done_flag[D % C] == D) ->
       d = D;
#ifndef M3
       do
       :: (d < MAXT) && (done_flag[d % C] == d) ->
            record[d % C] = d; d++
       :: else -> break
       od;
       DONE_COUNT = d;                 /* one fence + one store per batch */
#else
       do
       :: (d < MAXT) && (done_flag[d % C] == d) -> d++
       :: else -> break
       od;
       DONE_COUNT = d;                 /* BUG: count before the records */
       do
       :: D < d -> record[D % C] = D; D++
       :: else -> break
       od;
#endif
       atomic { D = d; d = 0 }
  od
}

/* ---------------- host reaper ---------------- */

active proctype reaper()
{
  byte dc, t;

end_reap:
  do
  :: atomic { reaped < DONE_COUNT -> dc = DONE_COUNT };
       do
       :: reaped < dc ->
            atomic {
              t = reaped;
              assert(record[t % C] == t);
              assert(executed[t] == 1);
              assert(completed[t] == 0);
              completed[t]++;
              reaped = t + 1                     /* frees position t % C */
            }
       :: else -> break
       od;
       atomic { dc = 0; t = 0 }
  od
}

/* ---------------- final check, once the system is quiescent ----------- */
/* `timeout` is true exactly when no other process can move: every process
 * has terminated or is blocked for good. */

active proctype checker()
{
  byte t;

  timeout ->
  atomic {
    if
    :: died ->
         /* everything below the dead batch completed; nothing at or
            above it was ever executed */
         assert(F == dead_lo && claim == dead_lo);
         assert(DONE_COUNT == dead_lo && reaped == dead_lo);
         t = 0;
         do
         :: t < tail ->
              assert(t >= dead_lo || (executed[t] == 1 && completed[t] == 1));
              assert(t < dead_lo || (executed[t] == 0 && completed[t] == 0));
              t++
         :: else -> break
         od
    :: else ->
         /* no loss: every producer finished, every ticket completed once */
         assert(pdone == NP);
         assert(F == tail && claim == tail && DONE_COUNT == tail);
         assert(reaped == tail);
         t = 0;
         do
         :: t < tail ->
              assert(executed[t] == 1 && completed[t] == 1);
              t++
         :: else -> break
         od
    fi
  }
}
