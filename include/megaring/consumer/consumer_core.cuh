// SPDX-License-Identifier: Apache-2.0
// The consumer side of the ring protocol (ABI v3), written once for both
// consumers: compiled for the device it runs in the persistent kernel's
// warps; compiled for the host in the CPU backend's threads. Step names
// (F1, E1, C1, ...) and the three roles (fetcher, executors, completer)
// are those of megaring/slot_abi.h. Each role has its file: fetcher.cuh,
// executor.cuh, completer.cuh; consumer_common.cuh holds what they share.
// Include this one.
//
// Who calls what:
//   fetch_round      every thread of the fetch crew (block 0: warp 0 and
//                    warps 2 ..); the CPU backend's I/O thread
//   complete_step    one lane of the completer warp (block 0, warp 1); the
//                    I/O thread, between fetch rounds
//   claim_chunk, admit_slot, finish_ticket
//                    an executor's leader (thread 0 of blocks 1..; a CPU
//                    worker); handlers run block-wide (builtin_ops.cuh)
//
// Invariants (each cursor has one writing role, and never decreases). The
// cursors count the consumer's sequence (slot_abi.h, "Rings"), which with
// one ring is ring 0's ticket:
//   done_cursor <= claim_cursor <= fetched; each ring's DONE_COUNT counts
//     that ring's slots below done_cursor;
//   slots in [done_cursor, fetched) are staged: their copy in `staged` is
//     final until the completer passes them;
//   a done flag equal to done_flag(s, ...) means s's outcome is final in
//     `outcomes`;
//   a staged position, outcome and done flag are rewritten only for
//     sequence number s + capacity: with one ring, which the host publishes
//     only after reaping s; with several, which the fetcher stages only once
//     done_cursor passed s.
#pragma once

#include "megaring/consumer/consumer_common.cuh"
#include "megaring/consumer/fetcher.cuh"
#include "megaring/consumer/executor.cuh"
#include "megaring/consumer/completer.cuh"
