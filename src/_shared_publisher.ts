// A SharedWriter's publishing in one worker: under the block's publisher
// lock, it works out which buffers have news (oldest first, stopping at the
// first not delivered whole), hands them to the flusher as one chain, and
// moves the delivery mark past the whole ones. Any worker may publish for
// all: a worker's flush sends the bytes every worker committed before it.

import type { BufferPool } from "./buffer_pool.ts";
import { NOTE_WHOLE, sealForGood, SW_AGAIN, SW_DELIVER } from "./_shared_writer_block.ts";
import { advance, collect, lockPublish, unlockPublish } from "./_shared_writer_publish.ts";
import {
  ENDED,
  linkTo,
  nextLink,
  publish,
  pushChain,
  ringBell,
  takePublished,
} from "./_flush_list.ts";
import { PUBLISH_DONE } from "./_layout.ts";

/** What the publisher needs of a flusher in its own worker: its bell. */
export interface FlusherBellRinger {
  _ring(): void;
}

/** Calls of publishSoon a worker lets wait for the end of its microtask before it publishes at once. */
const SOON_MAX = 8;

/** Publishes a shared writer's finished bytes from this worker. */
export class SharedPublisher {
  readonly #sw: Int32Array;
  readonly #pool: BufferPool;
  readonly #words: Int32Array;
  readonly #control: Int32Array;
  /** The flusher when it lives in this worker: a one-worker pool's flusher sleeps on a promise. */
  readonly #flusher: FlusherBellRinger | null;
  readonly #shared: boolean;
  /** This worker's slot + 1, the lock's value while it publishes. */
  readonly #me: number;
  /** Buffers with news and what to publish for each, oldest first, while publishing. */
  readonly #indices: number[] = [];
  readonly #values: number[] = [];
  /** Set when a push found the flusher gone: the bytes went nowhere. */
  dropped = false;
  /** Local calls waiting for the delivery mark to move (one-worker pools). */
  #onDeliver: (() => void)[] = [];
  /** Whether a publish of whole buffers is queued (see {@link publishSoon}). */
  #soon = false;
  /** Calls of publishSoon since this worker last published whole buffers. */
  #pending = 0;

  readonly #soonTask = (): void => {
    this.#soon = false;
    this.#pending = 0;
    this.publish(false);
  };

  readonly #collectOne = (index: number, value: number): void => {
    this.#indices.push(index);
    this.#values.push(value);
  };

  constructor(
    sw: Int32Array,
    pool: BufferPool,
    control: Int32Array,
    flusher: FlusherBellRinger | null,
    me: number,
  ) {
    this.#sw = sw;
    this.#pool = pool;
    this.#words = pool._words;
    this.#control = control;
    this.#flusher = flusher;
    this.#shared = pool.shared;
    this.#me = me;
  }

  /**
   * Publishes what is ready in every worker's buffers, or leaves it to
   * another worker at it now: whole buffers, and the open buffer's committed
   * bytes if `open`.
   */
  publish(open = true): void {
    const sw = this.#sw;
    const me = this.#me;
    if (!lockPublish(sw, me, open)) return;
    do {
      const before = sw[SW_DELIVER]!;
      const seq = collect(sw, open, this.#collectOne);
      this.#push();
      advance(sw, seq);
      if (seq !== before && this.#onDeliver.length !== 0) this.#delivered();
    } while (unlockPublish(sw, me));
  }

  /**
   * A buffer was sealed, or a commit to a sealed one came: it may be whole.
   * It goes to the flusher at the end of the microtask, with every other
   * buffer that became whole meanwhile, as one chain and one wake-up of the
   * flusher; after SOON_MAX calls, at once, so that a loop that never
   * yields still feeds the flusher.
   */
  publishSoon(): void {
    if (++this.#pending >= SOON_MAX) {
      this.#pending = 0;
      this.publish(false);
    } else if (!this.#soon) {
      this.#soon = true;
      queueMicrotask(this.#soonTask);
    }
  }

  /** Waits until the delivery mark moves from `seen`: a ring slot may be free then. */
  waitDelivered(seen: number): Promise<void> {
    if (!this.#shared) {
      const { promise, resolve } = Promise.withResolvers<void>();
      this.#onDeliver.push(resolve);
      return promise;
    }
    const result = Atomics.waitAsync(this.#sw, SW_DELIVER, seen);
    return result.async ? result.value.then(() => {}) : Promise.resolve();
  }

  #delivered(): void {
    const waiting = this.#onDeliver;
    this.#onDeliver = [];
    for (const resolve of waiting) resolve();
  }

  /** Pushes the collected buffers, oldest first, as one chain. */
  #push(): void {
    const indices = this.#indices;
    const values = this.#values;
    const words = this.#words;
    const pool = this.#pool;
    let first = -1;
    let last = -1;
    for (let i = 0; i < indices.length; i++) {
      const index = indices[i]!;
      const header = pool._headerOf(index);
      if (publish(words, header, values[i]!)) {
        // The chain runs newest first, as the flusher's list does.
        if (last !== -1) linkTo(words, header, last);
        else first = index;
        last = index;
      }
    }
    indices.length = 0;
    values.length = 0;
    if (first === -1) return;
    const head = pushChain(this.#control, words, pool._headerOf(first), last);
    if (head === ENDED) this.#drop(first, last);
    else if (head === 0) {
      if (this.#flusher !== null) this.#flusher._ring();
      else ringBell(this.#control);
    }
  }

  /**
   * The flusher ended: the chain never reaches it. Its buffers are listed no
   * longer, and those that are whole give the flusher's token back. The
   * writer stops taking claims and seals its buffer, so that every buffer
   * becomes whole and goes back.
   */
  #drop(first: number, last: number): void {
    this.dropped = true;
    const sw = this.#sw;
    const words = this.#words;
    const pool = this.#pool;
    for (let index = last;;) {
      const header = pool._headerOf(index);
      const older = nextLink(words, header) - 1;
      if ((takePublished(words, header) & PUBLISH_DONE) !== 0) pool._claim(index).release();
      if (index === first) break;
      index = older;
    }
    sealForGood(sw, this.#shared);
    // Round again under the lock: the sealed buffer may be whole now.
    Atomics.or(sw, SW_AGAIN, NOTE_WHOLE);
  }
}
