import { openIndexedDbStore } from "./indexeddb-store";
import { createMemoryStore } from "./memory-store";
import { describeStoreContract } from "./store-contract";

describeStoreContract("memory (Chromium)", { open: async () => createMemoryStore(), shared: false });

describeStoreContract("IndexedDB (Chromium, real IndexedDB)", {
  open: (name) => openIndexedDbStore({ name }),
  shared: true,
  databases: async () => (await indexedDB.databases()).flatMap((db) => (db.name ? [db.name] : [])),
});
