// The worker side of the smoke's worker check (tools/smoke_checks.mjs): loads
// the bundle it is sent the URL of, attaches to the shared pool, writes
// `count` framed messages to the sender's flusher, receives the batch of
// packets it was sent, and answers with their bytes' sum, or the error.
self.onmessage = async (event) => {
  const { bundle, pool: poolHandle, flusher, count, sent } = event.data;
  try {
    const bab = await import(bundle);
    const pool = bab.BufferPool.attach(poolHandle);
    let sum = 0;
    for (const packet of pool.receiveBatch(sent)) {
      sum += packet.bytes[0];
      packet.release();
    }
    const writer = new bab.Writer(pool, flusher, { codec: bab.lengthPrefix(2) });
    for (let i = 0; i < count; i++) await writer.writeString(`message ${i}`);
    writer.close();
    pool.detach();
    self.postMessage({ sum });
  } catch (error) {
    self.postMessage({ error: String(error?.stack ?? error) });
  }
};
