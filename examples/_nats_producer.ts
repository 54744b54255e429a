/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
// A producer worker of examples/nats_bridge.ts: it publishes its share of
// the numbered messages (examples/_bus_message.ts) through the main
// thread's NATS connection, with a Writer of its own on the connection's
// flusher, and replies once they are all committed.
import { BufferPool, type BufferPoolHandle } from "../mod.ts";
import { attachPublisher, type NatsPublisherHandle, NatsSubject } from "../nats.ts";
import { fill } from "./_bus_message.ts";

/** What the main thread posts. */
export interface ProduceJob {
  pool: BufferPoolHandle;
  nats: NatsPublisherHandle;
  producer: number;
  messages: number;
}

/** Message sizes, cycled: from the 12-byte header up to 1,000 bytes. */
export const SIZES = [12, 32, 100, 250, 1000, 64];

self.onmessage = async (event: MessageEvent<ProduceJob>) => {
  const job = event.data;
  try {
    const pool = BufferPool.attach(job.pool);
    const publisher = attachPublisher(pool, job.nats);
    const subject = new NatsSubject(`bus.producer.${job.producer}`);
    const scratch = new Uint8Array(1000);
    const view = new DataView(scratch.buffer);
    for (let seq = 0; seq < job.messages; seq++) {
      const size = SIZES[seq % SIZES.length]!;
      fill(view, 0, size, job.producer, seq);
      const payload = scratch.subarray(0, size);
      if (!publisher.tryPublish(subject, payload)) await publisher.publish(subject, payload);
    }
    publisher.close();
    pool.detach();
    self.postMessage({ ok: true });
  } catch (error) {
    self.postMessage({ ok: false, error: String(error) });
  }
};
