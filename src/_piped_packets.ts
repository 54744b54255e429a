// How a framer's readable keeps a failed pipe from stranding packets: the
// packets (or batches of them) handed to the pipe, of which those nobody
// used are released once the pipe fails (see _tracked_pipe_readable.ts).

import type { Packet } from "./packet.ts";
import type { PipeTracker } from "./_tracked_pipe_readable.ts";

/** What a framer hands out: a packet, or a batch of them. */
type Item = Packet | Packet[];

/** Whether any packet of `item` was used: then its destination took it. */
function used(item: Item): boolean {
  if (!Array.isArray(item)) return item._used();
  for (let i = 0; i < item.length; i++) if (item[i]!._used()) return true;
  return false;
}

function release(item: Item): void {
  if (!Array.isArray(item)) item.release();
  else for (let i = 0; i < item.length; i++) item[i]!.release();
}

/**
 * The items handed to the current pipe of a framer's readable that nobody
 * used when last looked at, so that those a failed pipe dropped are
 * released.
 */
export class PipedPackets implements PipeTracker {
  /** While the readable is piped, the items handed and not yet seen used; null while not. */
  #piped: Item[] | null = null;

  started(): void {
    this.#piped = [];
  }

  /** Notes an item handed out, if to a pipe, and forgets those used since. */
  handed(item: Item): void {
    const piped = this.#piped;
    if (piped === null) return;
    let kept = 0;
    for (let i = 0; i < piped.length; i++) {
      const earlier = piped[i]!;
      if (!used(earlier)) piped[kept++] = earlier;
    }
    piped.length = kept;
    piped.push(item);
  }

  /** The pipe failed, or the readable was cancelled under it: releases what nobody used. */
  failed(): void {
    const piped = this.#piped;
    if (piped === null) return;
    for (let i = 0; i < piped.length; i++) {
      const item = piped[i]!;
      if (!used(item)) release(item);
    }
    piped.length = 0;
  }

  ended(error: { reason: unknown } | undefined): unknown {
    if (error !== undefined) this.failed();
    this.#piped = null;
    return error?.reason;
  }
}
