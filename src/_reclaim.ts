// Reclaiming a dead worker: each protocol gives back its share of what the
// worker held, then its slot is freed and the waiting workers are woken.

import { reclaimHeld } from "./_buffer_record.ts";
import { dropRegistration, wakeWaiters } from "./_cross_worker_wait.ts";
import { type FreeStack, pushAll } from "./_free_stack.ts";
import type { Layout } from "./_layout.ts";
import { freeDeadSlot } from "./_pool_block.ts";

/**
 * Gives back what dead worker `workerId` held and frees its slot; returns
 * how many buffers came back to the free stack. `self` is the reclaiming
 * pool object's own worker id, or -1 once it detached.
 *
 * @throws {RangeError} If `workerId` is not another worker's slot number.
 */
export function reclaimWorker(
  words: Int32Array,
  layout: Layout,
  free: FreeStack,
  workerId: number,
  self: number,
): number {
  const { maxWorkers } = layout;
  if (!Number.isInteger(workerId) || workerId < 0 || workerId >= maxWorkers) {
    throw new RangeError(
      `Cannot reclaim worker ${workerId}: worker ids run from 0 to maxWorkers - 1 (${
        maxWorkers - 1
      })`,
    );
  }
  if (workerId === self) {
    throw new RangeError(`Cannot reclaim worker ${workerId}: it is this pool object's own`);
  }
  const freed = reclaimHeld(words, layout, workerId);
  pushAll(free, words, layout, freed);
  dropRegistration(words, layout, workerId);
  freeDeadSlot(words, layout, workerId);
  wakeWaiters(words);
  return freed.length;
}
