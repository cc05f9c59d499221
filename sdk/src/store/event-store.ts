/**
 * Where the device keeps its raw events. One interface, two implementations (IndexedDB via
 * idb, and memory), run through the same tests. Raw events never leave the device.
 */
import { type IDBPDatabase, openDB } from "idb";

/** A stored event: its name, properties and time. */
export interface StoredEvent {
  name: string;
  properties: Record<string, unknown>;
  timestamp: number;
}

export interface EventStore {
  readonly kind: "indexeddb" | "memory";
  append(events: StoredEvent[]): Promise<void>;
  count(): Promise<number>;
  all(): Promise<StoredEvent[]>;
  /** Erases everything this store holds. */
  clear(): Promise<void>;
  close(): void;
}

/** Keeps events in memory: the fallback when IndexedDB is missing, and the node default. */
export function createMemoryEventStore(): EventStore {
  let events: StoredEvent[] = [];
  return {
    kind: "memory",
    async append(batch) {
      events.push(...batch.map((e) => structuredClone(e)));
    },
    async count() {
      return events.length;
    },
    async all() {
      return structuredClone(events);
    },
    async clear() {
      events = [];
    },
    close() {},
  };
}

const EVENTS = "events";

/** Keeps events in an IndexedDB database named `dbName`. */
export async function createIndexedDbEventStore(dbName: string): Promise<EventStore> {
  const db: IDBPDatabase = await openDB(dbName, 1, {
    upgrade(database) {
      database.createObjectStore(EVENTS, { autoIncrement: true });
    },
  });
  return {
    kind: "indexeddb",
    async append(batch) {
      const tx = db.transaction(EVENTS, "readwrite");
      await Promise.all([...batch.map((event) => tx.store.add(event)), tx.done]);
    },
    count: () => db.count(EVENTS),
    all: () => db.getAll(EVENTS),
    async clear() {
      await db.clear(EVENTS);
    },
    close: () => db.close(),
  };
}
