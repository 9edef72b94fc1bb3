// SPDX-License-Identifier: Apache-2.0
// Internal: the order in which the host writes the consumer-visible tables
// (buffer table, tenant table), defined once for both backends. A backend
// supplies the word-store primitive, a TableStore:
//   void store(Word* table_word, Word value)  one aligned word (uint32_t or
//       uint64_t) of table memory, which the consumer reads whole, old or new;
//   void fence()    every word stored before it lands before any stored
//       after it (a RELEASE);
//   void release_store(Word* table_word, Word value)  one word, after every
//       write of this thread before it, host memory included (a RELEASE
//       store: what a staging region's committed length needs);
//   Status finish() every word stored has landed (slots published after this
//       returns see them); the first error of any store or fence, after
//       which the store wrote nothing more.
// Words stored between two fences land in any order.
#pragma once

#include <cstdint>

#include "megaring/slot_abi.h"
#include "megaring/status.hpp"

namespace megaring::detail::table_writes {

// An entry's handle is the sequence word of a seqlock (load_entry,
// load_region): a slot may name a handle while the host issues it (a hostile
// slot can guess an index's next generation), so the consumer reads the
// handle, the body, the handle again, and uses the body only if both handle
// reads agree. So the host changes a body only while the handle reads 0: it
// clears the handle, fences, writes the body, fences, stores the new handle.
//
// A whole buffer entry. The handle is cleared first even where collect
// already did (a fresh or collected entry): one store, and the order holds
// whatever path freed the index.
template <class TableStore>
Status write_buffer_entry(TableStore& store, mr_buffer_entry* table_entry,
                          const mr_buffer_entry& entry) {
  store.store(&table_entry->handle, uint32_t{0});
  // RELEASE: the cleared handle before the new body (a reader that sees a
  // new body word then reads a handle other than the old one).
  store.fence();
  store.store(&table_entry->base, entry.base);
  store.store(&table_entry->bytes, entry.bytes);
  store.store(&table_entry->owner, entry.owner);
  store.store(&table_entry->retire_ticket, entry.retire_ticket);
  // RELEASE: the body before the handle that makes the entry match a slot.
  store.fence();
  store.store(&table_entry->handle, entry.handle);
  return store.finish();
}

// The retire ticket of a live entry: one word, so the consumer reads the
// old or the new one; slots published after this returns (tickets from
// `retire_ticket` on) are ordered after it by their header release.
template <class TableStore>
Status retire_buffer_entry(TableStore& store, mr_buffer_entry* table_entry,
                           uint64_t retire_ticket) {
  store.store(&table_entry->retire_ticket, retire_ticket);
  return store.finish();
}

// The handle of a retired entry, once no slot can name it any more.
template <class TableStore>
Status clear_buffer_handle(TableStore& store, mr_buffer_entry* table_entry) {
  // RELEASE: the entry's earlier words (its retire ticket) before the cleared handle.
  store.fence();
  store.store(&table_entry->handle, uint32_t{0});
  return store.finish();
}

// A whole region entry, as a buffer entry: the handle cleared, a RELEASE,
// the body, a RELEASE, the handle.
template <class TableStore>
Status write_region_entry(TableStore& store, mr_region_entry* table_entry,
                          const mr_region_entry& entry) {
  store.store(&table_entry->handle, uint32_t{0});
  // RELEASE: the cleared handle before the new body.
  store.fence();
  store.store(&table_entry->base, entry.base);
  store.store(&table_entry->bytes, entry.bytes);
  store.store(&table_entry->committed, entry.committed);
  store.store(&table_entry->retire_ticket, entry.retire_ticket);
  store.store(&table_entry->owner, entry.owner);
  store.store(&table_entry->policy, entry.policy);
  // RELEASE: the body before the handle that makes the entry match a slot.
  store.fence();
  store.store(&table_entry->handle, entry.handle);
  return store.finish();
}

// A region's committed length (a seal, an append): the region's bytes were
// written before this is called; the store is a RELEASE of them (the
// store's release_store), which load_region's ACQUIRE pairs with, so a slot
// that sees the new length sees the bytes. Slots published after this
// returns see it through their header release anyway.
template <class TableStore>
Status set_region_committed(TableStore& store, mr_region_entry* table_entry, uint64_t committed) {
  store.release_store(&table_entry->committed, committed);
  return store.finish();
}

template <class TableStore>
Status retire_region_entry(TableStore& store, mr_region_entry* table_entry,
                           uint64_t retire_ticket) {
  store.store(&table_entry->retire_ticket, retire_ticket);
  return store.finish();
}

template <class TableStore>
Status clear_region_handle(TableStore& store, mr_region_entry* table_entry) {
  // RELEASE: the entry's earlier words (its retire ticket) before the cleared handle.
  store.fence();
  store.store(&table_entry->handle, uint32_t{0});
  return store.finish();
}

// A whole tenant entry and its grants. The tenant word first, then (after a
// RELEASE) the state, window and grants: admit_slot reads state, window and
// a grant word, then (after an ACQUIRE fence) the tenant word, as a seqlock,
// so a slot of the index's previous tenant never pairs its old id with the
// new window, state or grants. The header release of the new tenant's first
// slot orders all of them before use.
template <class TableStore>
Status write_tenant_entry(TableStore& store, mr_tenant_entry* table_entry,
                          const mr_tenant_entry& entry, mr_tenant_grants* table_grants,
                          const mr_tenant_grants& grants) {
  store.store(&table_entry->tenant, entry.tenant);
  // RELEASE: the new tenant word before the state, window and grants it guards.
  store.fence();
  store.store(&table_entry->state, entry.state);
  store.store(&table_entry->base_opcode, entry.base_opcode);
  store.store(&table_entry->opcode_cap, entry.opcode_cap);
  for (uint32_t w = 0; w < MR_GRANT_WORDS; ++w) store.store(&table_grants->words[w], grants.words[w]);
  return store.finish();
}

// The grants of a live entry: word stores alone, and a slot's admission
// reads the one word that holds its opcode's bit, so it is admitted under
// the old grants or the new. Once finish() returns, every later admission
// reads the new words, and slots published after it are ordered after them
// by their header release.
template <class TableStore>
Status set_tenant_grants(TableStore& store, mr_tenant_grants* table_grants,
                         const mr_tenant_grants& grants) {
  for (uint32_t w = 0; w < MR_GRANT_WORDS; ++w) store.store(&table_grants->words[w], grants.words[w]);
  return store.finish();
}

// The state word of a live entry (revocation): one word, so a unit admitting
// a queued slot reads the old or the new state; slots admitted after this
// returns see the new one.
template <class TableStore>
Status set_tenant_state(TableStore& store, mr_tenant_entry* table_entry, uint32_t state) {
  store.store(&table_entry->state, state);
  return store.finish();
}

// A control word (ConsumerPrivate::control_request or control_release:
// control_barrier.hpp): a RELEASE after every table word stored before it,
// landed when this returns. An executor that acquires a release epoch reads
// the change's words in the slots after it.
template <class TableStore>
Status set_control_word(TableStore& store, uint64_t* word, uint64_t epoch) {
  store.release_store(word, epoch);
  return store.finish();
}

// A ring's class (slot_abi.h, "Priorities"): one word, so the fetcher reads
// the old class or the new; it orders only the fetcher's picks, and the
// ring's next slots are published after finish() returns.
template <class TableStore>
Status set_ring_class(TableStore& store, uint32_t* class_word, uint32_t ring_class) {
  store.store(class_word, ring_class);
  return store.finish();
}

}  // namespace megaring::detail::table_writes
