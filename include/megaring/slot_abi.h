// SPDX-License-Identifier: Apache-2.0
/*
 * megaring ring ABI: the bytes that cross PCIe between host producers and the
 * persistent consumer (a CUDA megakernel, or CPU worker threads).
 *
 * Plain C, usable from C, C++ host code and CUDA device code. Every size and
 * offset is asserted at the bottom of this file; changing one is an ABI break.
 *
 * ---------------------------------------------------------------------------
 * Regions and their single writers
 * ---------------------------------------------------------------------------
 * No word is written by both the CPU and the GPU: on x86 PCIe hosts a
 * system-scope read-modify-write on pinned memory is not atomic with respect
 * to the CPU, so every shared word has exactly one writing side, and on the
 * consumer side one writing role. (The kernel_ptx_memory_model test checks
 * the built-in kernel's PTX for system-scope RMWs: tests/check_kernel_ptx.cmake.)
 *
 *   submission region  (pinned, host-mapped; host writes, the FETCHER reads)
 *     mr_slot slots[rings][capacity]   one 64-byte slot per ring position
 *     mr_submission_control            ring 0's stop_at ticket, abort flag
 *
 *   completion region  (pinned, host-mapped; the COMPLETER writes, host reads)
 *     mr_completion completions[rings][capacity]
 *     mr_ring_done done[rings]         each ring's DONE_COUNT, a line each
 *     mr_completion_control            heartbeat (fetcher); exited flag (the
 *                                      last unit to leave)
 *
 *   consumer-private   (device memory on the GPU; the details are in
 *                       megaring/consumer.hpp, ConsumerPrivate)
 *     the fetched cursor and staged slot copies (fetcher), the claim cursor
 *     (executors), outcomes and done flags (executors), the done cursor
 *     (completer); the buffer, region and tenant tables (host-written,
 *     executor-read);
 *     tenant counters (executor-written; the host reads copies);
 *     each executor's note of the slot it runs (its leader writes, a line
 *     each; the host reads copies: Runtime::dump_state).
 *
 *   staging arena      (pinned, host-mapped; Config::staging_arena_bytes)
 *     regions of it by handle (mr_region_entry): immutable and append-only
 *     ones host-written, consumer-read below their committed length;
 *     mutable ones the consumer writes (BUFFER_TO_STAGING) and the host
 *     reads after that slot completed (or writes before publishing one):
 *     never both sides at once.
 *
 * After the consumer has stopped (kernel exited, workers joined), the host
 * owns the completion region and writes ABORTED records for tickets that were
 * never completed: ownership moves, it is never shared.
 *
 * ---------------------------------------------------------------------------
 * Rings (ABI v4)
 * ---------------------------------------------------------------------------
 * There are `rings` submission rings (1 .. MR_MAX_RINGS), each with its own
 * slots, completion records and DONE_COUNT. Ring 0 is the runtime's own,
 * shared by every thread that calls Runtime::publish (producers reserve with
 * a CAS on its host-only tail). Each other ring belongs to one Producer at a
 * time (one thread): its tail is a plain store, nothing on its publish path
 * is a read-modify-write, and a producer that stalls holds up nobody else.
 *
 * The consumer merges the rings into one staged queue numbered by its own
 * SEQUENCE (claims, FENCE, done flags); a ring's slots enter it in ticket
 * order, so the completer learns each ring's DONE_COUNT by counting
 * (model/rings_v4.pml checks the design: no loss, no duplicate, no ring
 * waiting for another).
 *
 * Priorities. Each ring has a class (MR_RING_CLASS_*), chosen when a
 * Producer opens it and back to normal when it is released (ring 0:
 * normal), in a consumer-private word the host writes through its
 * table-write path (Runtime::Impl::set_ring_class, the one writer) and the
 * fetcher reads (device memory, relaxed) beside each ring's header in a
 * poll of all rings: never a PCIe read, never per slot. A stale class
 * orders picks differently, nothing more. The poll picks
 * (consumer/ring_priority.cuh), among the classes with a READY ring and
 * room (below):
 *   1. bulk, if at least MR_PRIORITY_CREDIT_SLOTS slots of higher classes
 *      were staged since the last bulk slot was, counted from the first
 *      poll that found a bulk ring READY (a poll that finds none zeroes
 *      the count: no credit is earned while idle); else
 *   2. normal, on the same rule for normal; else
 *   3. the highest class;
 * if no READY class has room, the highest READY class (its turn waits for
 * the completer); round robin among the READY rings of the picked class.
 * Throttle: from a poll that finds a critical ring READY until
 * MR_PRIORITY_CRITICAL_POLLS later polls have picked a normal or bulk ring
 * with room, counting only once the completer has passed every staged
 * critical slot (idle polls, picks of a class without room, and picks while
 * a critical slot waits to run do not count: neither a stalled consumer nor
 * a critical caller waiting for its slot loses the throttle), a normal or bulk ring's turn is
 * kRingTurnRounds rounds (never the longer turn of a ring found alone),
 * and its rounds stage only while the staged queue holds fewer than
 * capacity / 2 normal and bulk slots (normal; bulk also) and fewer than
 * min(MR_PRIORITY_BULK_BACKLOG, capacity / 4) bulk slots (bulk; each limit
 * at least 1): that is the room of a lower class. Critical slots in the
 * queue do not count against it, so a lower class gets room back once the
 * completer passes its own slots. Unthrottled, every class's room is the
 * queue's. Bounds:
 *   - A critical slot is staged behind at most capacity / 2 lower-class
 *     slots (that bulk bound if they are all bulk) when its ring was READY
 *     within the throttle; past it (a critical ring idle while
 *     MR_PRIORITY_CRITICAL_POLLS lower-class turns staged), its first slot
 *     may wait for the rest of a lower class's turn (at most
 *     kRingTurnRoundsAlone + 1 rounds) and a full queue.
 *   - While a bulk ring stays READY, between two slots of its class (and
 *     from the poll that first finds it READY to the first) at most
 *     max(MR_PRIORITY_CREDIT_SLOTS, capacity) + one turn of slots of other
 *     classes are staged (capacity: while throttled, its room comes back
 *     once the completer passes its last slot, and seq stays within
 *     capacity of the completer; MR_PRIORITY_CREDIT_SLOTS + one turn when
 *     the completer keeps up); for normal, one bulk turn more (a bulk turn
 *     due at the same poll goes first).
 * A turn: kRingTurnRounds rounds and the round that ends it, each of at
 * most a round's bodies (256 on a crew of four warps) and at most capacity.
 * Staged slots run in staged order: a class orders fetching, not execution.
 *
 * ---------------------------------------------------------------------------
 * Tickets
 * ---------------------------------------------------------------------------
 * Tickets are free-running 64-bit counts per ring; ticket t of ring r lives
 * in position t & (capacity - 1) of ring r's slots and records. Only the low
 * MR_TICKET_BITS bits travel in a slot header or a completion stamp (2^56
 * slots is years at a billion a second).
 *
 * ---------------------------------------------------------------------------
 * Roles (ABI v3, and v4)
 * ---------------------------------------------------------------------------
 * The consumer has three roles, so that only two of its threads ever touch
 * host memory, and each host-visible line has one writer:
 *   FETCHER    a crew of warps of block 0 that split each round's loads
 *              (Config::fetch_warps; the CPU backend's I/O thread): the only
 *              reader of the submission region. It reads many slot headers
 *              and bodies per PCIe round trip and stages valid runs in
 *              device memory.
 *   EXECUTORS  the other blocks (CPU worker threads): claim staged tickets in
 *              chunks, admit and run them, and record each outcome in device
 *              memory. They never touch host memory.
 *   COMPLETER  one warp (the I/O thread again on the CPU): the only writer of
 *              the completion region. It turns a run of finished tickets into
 *              records (only where needed) plus one fence and one DONE_COUNT
 *              store: no lock, no per-slot system fence.
 *
 * ---------------------------------------------------------------------------
 * Publish (host producer)              consume (consumer)
 * ---------------------------------------------------------------------------
 * Every step below is per ring: "ticket", "position", "record" and
 * "DONE_COUNT" are those of the slot's ring.
 * P1 reserve tickets [t, t+n), only when t + n - reaped <= capacity
 *    (position reuse needs ticket t - capacity completed AND reaped by the
 *    host: back-pressure, never overwrite). Ring 0: a CAS on its host-only
 *    tail. A producer's ring: a plain (seq_cst) store of its tail, before P2.
 * P2 write the slot bodies (opcode, tenant, flags, args): plain stores.
 *    flags carries MR_SLOT_FLAG_KEEP_RESULT when the producer will read the
 *    result.
 * P3 store each header = mr_make_header(t_i, MR_SLOT_READY) with a
 *    system-scope RELEASE (orders that slot's P2 before it), the batch's
 *    first header LAST, so a fetcher that sees the first sees the batch.
 *                                       F1 read the headers of a window of
 *                                          one ring's positions after its last
 *                                          valid one (several rings: that ring
 *                                          while it has READY headers, at most
 *                                          kRingTurnRounds rounds in a row;
 *                                          else one header of every ring, and
 *                                          on with the first READY one after
 *                                          the last served)
 *                                          (relaxed loads, all in flight, then
 *                                          an ACQUIRE fence, system scope, in
 *                                          each warp that saw one READY; an
 *                                          idle poll of one
 *                                          header: an ACQUIRE load; the crew's
 *                                          threads hand them on at the round's
 *                                          block barrier): a header
 *                                          seen READY orders its body's P2
 *                                          before any later read. Valid = the
 *                                          longest prefix whose headers equal
 *                                          mr_make_header(ticket, READY): each
 *                                          header names its own ticket, so a
 *                                          stale lap never matches.
 *                                       F2 in the next round (together with
 *                                          that round's header loads: one
 *                                          round trip) copy the valid bodies
 *                                          into device memory, each at the
 *                                          next number of the consumer's
 *                                          SEQUENCE, with its ring and ticket
 *                                          (several rings: only while the
 *                                          staged queue has room, seq -
 *                                          done_cursor < capacity), then
 *                                          RELEASE (device) the fetched cursor.
 *                                       E1 executors claim chunks of staged
 *                                          sequence numbers below the fetched cursor
 *                                          (ACQUIRE), copy them once, admit
 *                                          (tenant 0, or an ACTIVE tenant whose
 *                                          window holds the opcode and whose
 *                                          grants hold the tenant-local one
 *                                          it becomes) and
 *                                          run them; else FAULT / REVOKED.
 *                                       E2 store the outcome (its stamp names
 *                                          the ring's ticket), then RELEASE
 *                                          (device) the done flag, which names
 *                                          the sequence number and the ring.
 *                                       C1 the completer ACQUIRES consecutive
 *                                          done flags in sequence order,
 *                                          counting each ring's tickets (a
 *                                          ring's slots are staged in ticket
 *                                          order); when
 *                                          the run reaches 64 tickets, or
 *                                          nothing else is fetched, or its
 *                                          oldest ticket waited about a
 *                                          microsecond, it writes a record for
 *                                          each ticket with KEEP_RESULT or a
 *                                          status other than OK in two passes:
 *                                          the result words; a RELEASE fence
 *                                          (system); the records whole, stamp
 *                                          included (whole 64-byte lines where
 *                                          all four tickets are in the run).
 *                                          Then it RELEASE-stores the DONE_COUNT
 *                                          of each ring in the run (system
 *                                          scope: one fence for the whole run,
 *                                          two with records).
 *                                       C2 a run stalled behind an unfinished
 *                                          ticket for 10 us: records of kept
 *                                          tickets after it that finished go
 *                                          out early, each stamp RELEASED
 *                                          (system) after its result; with
 *                                          several rings, each other ring's
 *                                          finished tickets after it, up to
 *                                          that ring's first unfinished one,
 *                                          get their records and then that
 *                                          ring's DONE_COUNT (RELEASE, system).
 * H1 ACQUIRE-load DONE_COUNT: every ticket below it completed; a record whose
 *    stamp names the ticket holds its outcome, and a ticket without one (no
 *    KEEP_RESULT) completed OK. A waiter on a kept ticket may also ACQUIRE
 *    its record's stamp: every stamp is released after its result (C1, C2),
 *    so one naming the ticket makes the record final even before DONE_COUNT
 *    passes it.
 * H2 reap: the host advances its private reaped cursor over completed tickets
 *    in order; a position is reused only after its ticket is reaped.
 *
 * Each ring's DONE_COUNT has prefix meaning (every ticket of the ring below
 * it completed) and never decreases: the completer alone writes it. A
 * FENCE completes after every slot staged before it, from every ring.
 */
#ifndef MEGARING_SLOT_ABI_H_
#define MEGARING_SLOT_ABI_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MR_ABI_VERSION 4u

/* Submission rings a runtime may have (Config::producer_rings). */
#define MR_MAX_RINGS 16u

/* Ring classes (see "Priorities" above); 0, normal, is what zeroed memory
 * and ring 0 hold. A word of another value counts as normal. */
#define MR_RING_CLASS_NORMAL 0u
#define MR_RING_CLASS_CRITICAL 1u
#define MR_RING_CLASS_BULK 2u
/* Higher-class slots staged before a waiting lower class is picked. */
#define MR_PRIORITY_CREDIT_SLOTS 256u
/* The bulk slots the staged queue holds at most while throttled. */
#define MR_PRIORITY_BULK_BACKLOG 128u
/* The throttle's length: polls that pick a lower class with room, after the
 * last poll that found a critical ring READY ("Priorities" above). */
#define MR_PRIORITY_CRITICAL_POLLS 16u

#define MR_SLOT_BYTES 64u
#define MR_SLOT_ARGS 5u
#define MR_COMPLETION_BYTES 16u
#define MR_CACHELINE_BYTES 64u

/* Header word: [63:8] low 56 bits of the ticket, [7:0] slot state. */
#define MR_TICKET_BITS 56u
#define MR_TICKET_MASK ((((uint64_t)1) << MR_TICKET_BITS) - 1u)
#define MR_STATE_BITS 8u
#define MR_STATE_MASK 0xFFu

/* Slot states. Only the host writes headers; the consumer never does. */
#define MR_SLOT_EMPTY 0u /* never published at this position */
#define MR_SLOT_READY 1u /* body written; the ticket in the header may run */

/* Slot flags (mr_slot.flags). Bits 16..31 are reserved for future use; the
 * consumer faults a slot with reserved flags set rather than ignore them. */
#define MR_SLOT_FLAG_NONE 0u
/* Set by the runtime (from PublishOptions::keep_result, whatever the caller
 * put in this bit): the completer writes this ticket's record even when it
 * completed OK. Without it an OK ticket gets no record at all. */
#define MR_SLOT_FLAG_KEEP_RESULT 1u
#define MR_SLOT_FLAGS_RESERVED 0xFFFF0000u

/* ---------------------------------------------------------------------------
 * Opcodes. [0, MR_OP_SYSTEM_END) belongs to the runtime: built-ins now,
 * control-plane opcodes later. User handler tables start at MR_OP_USER_BASE.
 * Opcode 0 is never valid, so a zeroed slot body is always a FAULT.
 * ------------------------------------------------------------------------- */
#define MR_OP_INVALID 0u
#define MR_OP_NOP 1u        /* result = args[0] (echo)                          */
#define MR_OP_STORE_U32 2u  /* buf=a0 off=a1 value=a2; result = value           */
#define MR_OP_ATOMIC_ADD 3u /* buf=a0 off=a1 (8-aligned u64) delta=a2; result = old */
#define MR_OP_FILL 4u       /* buf=a0 off=a1 bytes=a2 byte=a3; result = bytes   */
#define MR_OP_COPY 5u       /* dst=a0 dst_off=a1 src=a2 src_off=a3 bytes=a4;
                               ranges must not overlap; result = bytes          */
#define MR_OP_REDUCE_ADD_U32 6u /* buf=a0 off=a1 (4-aligned) count=a2 u32 elems;
                                   result = sum mod 2^64 (exact below 2^32
                                   elements)                                   */
#define MR_OP_FENCE 7u      /* completes only after every earlier ticket did;
                               result = its own ticket                          */
#define MR_OP_DELAY_NS 8u   /* busy-wait a0 nanoseconds (<= MR_DELAY_MAX_NS);
                               result = a0. For tests and benchmarks.           */
#define MR_OP_READ_CLOCK 9u /* result = the consumer's clock in ns (GPU
                               globaltimer; host steady clock on the CPU)       */
/* Staging (host memory the consumer reads or writes; regions of the runtime's
 * staging arena, by handle). A descriptor is (region=a0, offset=a1, bytes=a2):
 * it may name only an immutable or append-only region, within what the host
 * has committed (sealed, or appended), so nothing a consumer read can change
 * after it validated it. Checked in this order: region (BAD_REGION,
 * REGION_POLICY, OUT_OF_BOUNDS), then the buffer (BAD_HANDLE, OUT_OF_BOUNDS). */
#define MR_OP_STAGE_TO_BUFFER 10u   /* descriptor a0..a2 -> buf=a3 off=a4;
                                       result = bytes                           */
#define MR_OP_BUFFER_TO_STAGING 11u /* buf=a3 off=a4 -> mutable region=a0 off=a1,
                                       bytes=a2 (results back to the host);
                                       result = bytes                           */
#define MR_OP_AXPY_F32 12u /* y=a0 y_off=a1 x=a2 x_off=a3 (4-aligned f32),
                              a4 = count (low 32 bits) | alpha's f32 bits (high
                              32): y[i] = fmaf(alpha, x[i], y[i]); the ranges
                              are the same or disjoint; result = count        */
#define MR_OP_BUILTIN_END 13u
#define MR_OP_SYSTEM_END 256u
#define MR_OP_USER_BASE MR_OP_SYSTEM_END
/* Tenant opcode windows live in [MR_OP_TENANT_BASE, MR_OP_TENANT_END): a
 * tenant-less slot (tenant 0) with an opcode there faults OUT_OF_WINDOW, and
 * no window overlaps a built-in, system or tenant-less user opcode. */
#define MR_OP_TENANT_BASE 0x00100000u
#define MR_OP_TENANT_END 0xFFFFFFFFu

#define MR_DELAY_MAX_NS 1000000000ull

/* ---------------------------------------------------------------------------
 * Completion status and fault codes.
 * ------------------------------------------------------------------------- */
#define MR_STATUS_OK 0u
#define MR_STATUS_FAULT 1u   /* refused: not executed; see fault code           */
#define MR_STATUS_ABORTED 2u /* never completed: the runtime was aborted first.
                                Written only by the host, after the consumer
                                stopped (a unit stopping mid-slot abandons it) */
#define MR_STATUS_REVOKED 3u /* not executed: its tenant was unregistered before
                                a consumer unit admitted the slot              */

/* A slot with several faults reports the first found, in this order:
 * tenant admission (BAD_TENANT, OUT_OF_WINDOW, NOT_GRANTED), RESERVED_FLAGS,
 * UNKNOWN_OPCODE, then the handler's own order: a value argument (FILL's
 * byte, STORE_U32's value, DELAY_NS's duration: BAD_ARGUMENT; REDUCE's count
 * overflowing: OUT_OF_BOUNDS) before the buffer it names (BAD_HANDLE,
 * OUT_OF_BOUNDS, MISALIGNED), and COPY's overlap after both buffers. */
#define MR_FAULT_NONE 0u
#define MR_FAULT_UNKNOWN_OPCODE 1u
#define MR_FAULT_BAD_HANDLE 2u     /* buffer handle unknown or freed            */
#define MR_FAULT_OUT_OF_BOUNDS 3u  /* offset/length outside the buffer         */
#define MR_FAULT_MISALIGNED 4u     /* offset not aligned for the access size   */
#define MR_FAULT_BAD_ARGUMENT 5u   /* e.g. overlapping COPY, over-long DELAY    */
#define MR_FAULT_RESERVED_FLAGS 6u /* reserved slot flag bits set               */
#define MR_FAULT_OUT_OF_WINDOW 7u  /* opcode outside the slot's tenant window    */
#define MR_FAULT_BAD_TENANT 8u     /* tenant id unknown, stale or beyond the table */
#define MR_FAULT_NOT_GRANTED 9u    /* tenant-local opcode not in the tenant's grants */
#define MR_FAULT_BAD_REGION 10u    /* region handle unknown, freed or another tenant's */
#define MR_FAULT_REGION_POLICY 11u /* descriptor into a mutable region, or a consumer
                                      write into an immutable/append-only one */
#define MR_FAULT_CODE_COUNT 12u

/* Buffer handles: [15:0] table index, [31:16] generation (never 0).
 * Handle 0 is never valid. */
#define MR_BUFFER_INDEX_BITS 16u
#define MR_BUFFER_INDEX_MASK 0xFFFFu

/* Staging region handles: as buffer handles ([15:0] index, [31:16]
 * generation, never 0). Region policies: */
#define MR_REGION_IMMUTABLE 1u   /* host writes until sealed, then never      */
#define MR_REGION_APPEND_ONLY 2u /* host appends at the committed end only     */
#define MR_REGION_MUTABLE 3u     /* anyone, anytime: never a descriptor        */

/* Tenant ids: [15:0] tenant-table index (never 0), [31:16] generation (never
 * 0). Tenant 0 means "no tenant": the runtime's own, privileged slots. */
#define MR_TENANT_INDEX_BITS 16u
#define MR_TENANT_INDEX_MASK 0xFFFFu

/* Tenant-table entry states. */
#define MR_TENANT_FREE 0u    /* never registered at this index                 */
#define MR_TENANT_ACTIVE 1u  /* slots in its window run                        */
#define MR_TENANT_REVOKED 2u /* unregistered: its slots complete REVOKED       */

/* One 64-byte ring slot, on its own cache line. */
typedef struct mr_slot {
  uint64_t header;  /* mr_make_header(ticket, state); written LAST (release) */
  uint32_t opcode;
  uint32_t tenant;  /* tenant id; 0 = no tenant                              */
  uint32_t flags;
  uint32_t reserved; /* 0                                                     */
  uint64_t args[MR_SLOT_ARGS];
} mr_slot; /* allocate slot arrays 64-byte aligned: one slot per cache line */

/* One completion record per ring position, written by the completer only
 * for tickets published with MR_SLOT_FLAG_KEEP_RESULT or completed with a
 * status other than OK (and by the host, ABORTED, after the consumer
 * stopped). The stamp names the whole ticket (56 bits), so a record left
 * from any earlier lap never passes for ticket t's. Read it only below
 * DONE_COUNT (or after the consumer stopped): DONE_COUNT's release orders it. */
typedef struct mr_completion {
  uint64_t result;
  uint64_t stamp; /* mr_make_stamp(ticket, status, fault)                   */
} mr_completion;

/* Stamp: [63:8] low 56 bits of the ticket, [7:6] MR_STATUS_*, [5:0] fault.
 * Fault codes are 6 bits: a handler's code above MR_FAULT_MAX is reported as
 * MR_FAULT_BAD_ARGUMENT. */
#define MR_FAULT_MAX 63u

/* Host-written control words the consumer polls. */
/* stop_at's suspension request (Runtime::suspend): never a ticket (tickets
 * stay below 2^56). */
#define MR_STOP_AT_SUSPEND (UINT64_MAX - 1u)

typedef struct mr_submission_control {
  uint64_t stop_at;    /* consumer exits once it has fetched ring 0 up to this
                          ticket (the host drains the other rings first);
                          UINT64_MAX while running (graceful shutdown);
                          MR_STOP_AT_SUSPEND: stop fetching now, finish what
                          is staged, save where every ring stopped, exit      */
  uint64_t pad0[7];
  uint32_t abort_flag; /* non-zero: stop after the current slot              */
  uint32_t pad1[15];
} mr_submission_control;

/* One ring's DONE_COUNT, on a line of its own (the completer writes it). */
typedef struct mr_ring_done {
  uint64_t done_count;   /* every ticket of the ring below it completed      */
  uint64_t pad[7];
} mr_ring_done;

/* Consumer-written words the host reads. Each on its own cache line. */
typedef struct mr_completion_control {
  uint64_t heartbeat_ns; /* consumer clock (GPU globaltimer), rate-limited    */
  uint64_t pad1[7];
  uint32_t exited_units; /* written once a run, by the last consumer unit
                            (block or worker) to return: the count that ran;
                            the host resets it before a relaunch (resume)    */
  uint32_t pad2[15];
} mr_completion_control;

/* One buffer-table entry (consumer-private memory). */
typedef struct mr_buffer_entry {
  uint64_t base;   /* device (or host, on the CPU backend) address          */
  uint64_t bytes;
  uint32_t handle; /* full handle incl. generation; 0 = free slot            */
  uint32_t owner;  /* tenant id that owns it, or 0: the runtime's. A tenant
                      slot may only name buffers its tenant owns          */
  uint64_t retire_ticket; /* slots with tickets >= this fault BAD_HANDLE:
                             set by free_buffer; ~0 while the buffer lives */
} mr_buffer_entry;

/* One staging-region entry (consumer-private memory, beside the buffer
 * table; host-written). Written whole (handle last) before any slot can
 * name it, as a buffer entry; `committed` is the one word that changes
 * while slots may read it: the host stores it with RELEASE after the bytes
 * it covers, and the consumer ACQUIRES it before reading them. */
typedef struct mr_region_entry {
  uint64_t base;          /* consumer address of the region's first byte    */
  uint64_t bytes;
  uint64_t committed;     /* what a descriptor may read: immutable 0 until
                             sealed, then bytes; append-only, the committed
                             end; mutable 0                                 */
  uint64_t retire_ticket; /* as mr_buffer_entry's                           */
  uint32_t handle;        /* full handle incl. generation; 0 = free slot    */
  uint32_t owner;         /* tenant id, or 0: the runtime's                 */
  uint32_t policy;        /* MR_REGION_*                                    */
  uint32_t pad;
} mr_region_entry;

/* One tenant-table entry (consumer-private memory; host-written).
 * Revocation changes the state word alone. Registration reuses an index only
 * after the slots its previous tenant published have drained, always under a
 * new generation (ids never repeat within a runtime's life, up to 65535 reuses
 * of one index), and writes the tenant word first, then the rest (and the
 * index's mr_tenant_grants): the consumer reads state, window and a grant
 * word, then (after an acquire fence) the tenant word, so a stray slot of an
 * older id is refused, never run in the new window or under the new grants. */
typedef struct mr_tenant_entry {
  uint32_t tenant;      /* full id incl. generation; 0 = never registered     */
  uint32_t state;       /* MR_TENANT_*                                        */
  uint32_t base_opcode; /* window [base_opcode, base_opcode + opcode_cap)     */
  uint32_t opcode_cap;
} mr_tenant_entry;

/* Per-tenant-index counters (consumer-private memory; consumer-written with
 * device-scope atomics, read by the host with copies). Counted only for slots
 * whose tenant id matches the entry; the host subtracts the values it saw at
 * registration, so an index's earlier tenants do not leak into its next one. */
typedef struct mr_tenant_counters {
  uint64_t admitted;      /* passed the tenant and window checks             */
  uint64_t out_of_window; /* faulted MR_FAULT_OUT_OF_WINDOW                   */
  uint64_t revoked;       /* completed MR_STATUS_REVOKED                      */
  uint64_t not_granted;   /* faulted MR_FAULT_NOT_GRANTED                     */
} mr_tenant_counters;

/* Opcode grants of one tenant-table index (consumer-private memory, beside
 * the tenant table; host-written): which tenant-local opcodes its slots may
 * run. A bitmap of MR_GRANT_WORDS words, one 64-byte line an index: word 0
 * bit b grants local opcode b for b in [1, MR_GRANT_SYSTEM_END) (the
 * built-ins); word 1 + k bit b grants user opcode MR_OP_USER_BASE + 64k + b,
 * up to MR_GRANT_USER_END; bit 0 of word 0 grants every other local opcode
 * of the window at once (0, [MR_GRANT_SYSTEM_END, MR_OP_USER_BASE),
 * [MR_GRANT_USER_END, opcode_cap)), so "everything" is every bit set.
 * Admission reads the one word that holds the slot's bit, once, with the
 * entry's state and window (mr_tenant_entry): a slot runs entirely under
 * the old or entirely under the new grants. Registration writes the words
 * with the entry (after the tenant word); a change of a live tenant's grants
 * stores the words alone. */
#define MR_GRANT_WORDS 8u
#define MR_GRANT_SYSTEM_END 64u
#define MR_GRANT_USER_END (MR_OP_USER_BASE + 64u * (MR_GRANT_WORDS - 1u))
typedef struct mr_tenant_grants {
  uint64_t words[MR_GRANT_WORDS];
} mr_tenant_grants;

/* One timeline record (timeline mode only; consumer-private memory), written
 * by the unit that ran the ticket, at position ticket & (timeline capacity-1),
 * before that ticket's completion. A host snapshot taken between reading
 * DONE_COUNT = D and the published end E uses a record only if its ticket t
 * has t < D (complete) and t + capacity >= E (no later ticket can be writing
 * that position). Times: consumer clock, ns. */
typedef struct mr_timeline_record {
  uint64_t ticket;
  uint64_t claim_ns;    /* the unit saw the slot READY and copied its body */
  uint64_t complete_ns; /* the handler finished; the completion follows     */
  uint32_t unit;        /* GPU block index, or CPU worker index             */
  uint32_t opcode;
} mr_timeline_record;

#if defined(__cplusplus)
#define MR_ABI_INLINE static inline constexpr
#else
#define MR_ABI_INLINE static inline
#endif

#if defined(__CUDACC__)
#define MR_ABI_HD __host__ __device__
#else
#define MR_ABI_HD
#endif

MR_ABI_INLINE MR_ABI_HD uint64_t mr_make_header(uint64_t ticket, uint32_t state) {
  return ((ticket & MR_TICKET_MASK) << MR_STATE_BITS) | (uint64_t)(state & MR_STATE_MASK);
}
MR_ABI_INLINE MR_ABI_HD uint64_t mr_header_ticket(uint64_t header) {
  return header >> MR_STATE_BITS;
}
MR_ABI_INLINE MR_ABI_HD uint32_t mr_header_state(uint64_t header) {
  return (uint32_t)(header & MR_STATE_MASK);
}
MR_ABI_INLINE MR_ABI_HD uint64_t mr_make_stamp(uint64_t ticket, uint32_t status, uint32_t fault) {
  return ((ticket & MR_TICKET_MASK) << 8) | ((uint64_t)(status & 3u) << 6) |
         (uint64_t)(fault > MR_FAULT_MAX ? MR_FAULT_BAD_ARGUMENT : fault);
}
MR_ABI_INLINE MR_ABI_HD uint64_t mr_stamp_ticket(uint64_t stamp) { return stamp >> 8; }
MR_ABI_INLINE MR_ABI_HD uint32_t mr_stamp_status(uint64_t stamp) {
  return (uint32_t)((stamp >> 6) & 3u);
}
MR_ABI_INLINE MR_ABI_HD uint32_t mr_stamp_fault(uint64_t stamp) { return (uint32_t)(stamp & 63u); }
/* Whether a record's stamp names `ticket` (the low 56 bits). */
MR_ABI_INLINE MR_ABI_HD int mr_stamp_names(uint64_t stamp, uint64_t ticket) {
  return mr_stamp_ticket(stamp) == (ticket & MR_TICKET_MASK);
}
/* Where a tenant-local opcode's grant lives: (word << 6) | bit in
 * mr_tenant_grants (see there; an opcode the bitmap does not name shares
 * bit 0 of word 0). */
MR_ABI_INLINE MR_ABI_HD uint32_t mr_grant_bit(uint32_t local) {
  return local < MR_GRANT_SYSTEM_END ? local
         : (local >= MR_OP_USER_BASE && local < MR_GRANT_USER_END)
             ? (local - MR_OP_USER_BASE) + 64u
             : 0u;
}

#ifdef __cplusplus
} /* extern "C" */
#define MR_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define MR_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

MR_STATIC_ASSERT(sizeof(mr_slot) == MR_SLOT_BYTES, "slot is 64 bytes");
MR_STATIC_ASSERT(offsetof(mr_slot, header) == 0, "header first");
MR_STATIC_ASSERT(offsetof(mr_slot, opcode) == 8, "opcode at 8");
MR_STATIC_ASSERT(offsetof(mr_slot, tenant) == 12, "tenant at 12");
MR_STATIC_ASSERT(offsetof(mr_slot, flags) == 16, "flags at 16");
MR_STATIC_ASSERT(offsetof(mr_slot, args) == 24, "args at 24");
MR_STATIC_ASSERT(sizeof(mr_completion) == MR_COMPLETION_BYTES, "completion is 16 bytes");
MR_STATIC_ASSERT(offsetof(mr_completion, result) == 0, "result at 0");
MR_STATIC_ASSERT(offsetof(mr_completion, stamp) == 8, "stamp at 8");
MR_STATIC_ASSERT(sizeof(mr_submission_control) == 2 * MR_CACHELINE_BYTES, "two lines");
MR_STATIC_ASSERT(offsetof(mr_submission_control, abort_flag) == MR_CACHELINE_BYTES,
                 "abort flag on its own line");
MR_STATIC_ASSERT(sizeof(mr_completion_control) == 2 * MR_CACHELINE_BYTES, "two lines");
MR_STATIC_ASSERT(offsetof(mr_completion_control, exited_units) == MR_CACHELINE_BYTES,
                 "exited count on its own line");
MR_STATIC_ASSERT(sizeof(mr_ring_done) == MR_CACHELINE_BYTES, "a DONE_COUNT a line");
MR_STATIC_ASSERT(sizeof(mr_buffer_entry) == 32, "buffer entry is 32 bytes");
MR_STATIC_ASSERT(offsetof(mr_buffer_entry, retire_ticket) == 24, "retire ticket at 24");
MR_STATIC_ASSERT(sizeof(mr_timeline_record) == 32, "timeline record is 32 bytes");
MR_STATIC_ASSERT(offsetof(mr_buffer_entry, owner) == 20, "buffer owner at 20");
MR_STATIC_ASSERT(sizeof(mr_region_entry) == 48, "region entry is 48 bytes");
MR_STATIC_ASSERT(offsetof(mr_region_entry, handle) == 32, "region handle at 32");
MR_STATIC_ASSERT(sizeof(mr_tenant_entry) == 16, "tenant entry is 16 bytes");
MR_STATIC_ASSERT(offsetof(mr_tenant_entry, state) == 4, "tenant state at 4");
MR_STATIC_ASSERT(sizeof(mr_tenant_counters) == 32, "tenant counters are 32 bytes");
MR_STATIC_ASSERT(sizeof(mr_tenant_grants) == MR_CACHELINE_BYTES, "grants are one line");

#endif /* MEGARING_SLOT_ABI_H_ */
