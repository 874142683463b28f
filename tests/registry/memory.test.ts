import { MemoryRegistry } from "../../src/registry/memory.ts";
import { registrySuite } from "./suite.ts";

let current: MemoryRegistry[] = [];
registrySuite("memory", async () => ({
  async registry() {
    const r = new MemoryRegistry();
    current.push(r);
    return r;
  },
  putMany: (r, records) => (r as MemoryRegistry).putMany(records.map(([k, v]) => [k, v, 0])),
  async compact() { for (const r of current) r.compact(); },
  async interrupt(r) { (r as MemoryRegistry).interruptWatches(); },
  minTTL: 1,
  async teardown() { await Promise.all(current.map((r) => r.close())); current = []; },
}));
