/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
// A writer worker for the writers-across-workers group of
// bench/writer_bench.ts. It attaches to the shared pool, makes one Writer on
// the main thread's flusher, and on each request writes `count` 32-byte
// messages, flushing every FLUSH_EVERY of them so that the consumer can
// release buffers while the rest is written, then replies.
import { BufferPool, type BufferPoolHandle, type WriteFlusherHandle, Writer } from "../../mod.ts";

const SIZE = 32;
const FLUSH_EVERY = 1000;

type Request =
  | { kind: "attach"; pool: BufferPoolHandle; flusher: WriteFlusherHandle }
  | { kind: "write"; count: number };

/** What a "write" request replies: how often tryWrite found no free buffer. */
interface WriteReply {
  stalls: number;
}

let writer: Writer | null = null;
const message = new Uint8Array(SIZE);

async function write(count: number): Promise<WriteReply> {
  const out = writer!;
  let stalls = 0;
  for (let i = 0; i < count; i++) {
    message[0] = i;
    if (!out.tryWrite(message)) {
      // No free buffer now (tryWrite has flushed): wait for the consumer.
      stalls++;
      await out.write(message);
    }
    if (i % FLUSH_EVERY === FLUSH_EVERY - 1) out.flush();
  }
  out.flush();
  return { stalls };
}

self.onmessage = async (event: MessageEvent<Request>) => {
  const request = event.data;
  switch (request.kind) {
    case "attach":
      writer = new Writer(BufferPool.attach(request.pool), request.flusher, { flush: "manual" });
      self.postMessage("attached");
      return;
    case "write":
      self.postMessage(await write(request.count));
      return;
  }
};
