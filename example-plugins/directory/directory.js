// The directory's data, in the host's document store.
//
// - `entries/{id}`: `{id, name, service, phone, office, email, name_key, service_key, terms,
//   created_at}`; `name_key`/`service_key` are the normalised name and service (sort and
//   service pages), `terms` how many term documents the entry has.
// - `terms/{id}:{i}`: `{term, entry, name_key}`, one per word start of the name and of the
//   service (search-keys.js): a search is one `prefix` query on `term`, ordered by `name_key`.
//   All the terms of an entry are adjacent in that order (same `name_key`, ids starting with
//   the entry id), so duplicates are dropped by comparing neighbours.
// - `services/{service_key}`: `{name, key, count}`, the list of services with their number of
//   entries.
//
// An entry, its terms and its service's count change together, in one transaction whose
// preconditions pin the versions read: a concurrent change makes it a `Conflict`, retried.

import { Conflict, store } from "lutetia";
import { normalize, termsOf } from "./search-keys.js";

const ENTRIES = "entries";
const TERMS = "terms";
const SERVICES = "services";

/** Entries per page. */
export const PAGE_SIZE = 20;
/** Attempts of a write that meets concurrent changes. */
const ATTEMPTS = 5;

/** Declares the indexes the queries use (idempotent, cheap). */
export function ensureIndexes() {
  store.ensureIndex(TERMS, ["term"]);
  store.ensureIndex(ENTRIES, ["service_key", "name_key"]);
  store.ensureIndex(ENTRIES, ["name_key"]);
}

/**
 * A new entry id: time-ordered, with random bits (no `:`, which separates term ids).
 * @returns {string}
 */
function newId() {
  const random = new Uint32Array(2);
  crypto.getRandomValues(random);
  return Date.now().toString(36) + random[0].toString(36).padStart(7, "0") + random[1].toString(36).padStart(7, "0");
}

/**
 * Runs `attempt` until it does not meet a concurrent change, at most `ATTEMPTS` times.
 * @template T
 * @param {() => T} attempt
 * @returns {T}
 */
function retrying(attempt) {
  for (let i = 1; ; i++) {
    try {
      return attempt();
    } catch (e) {
      if (!(e instanceof Conflict) || i >= ATTEMPTS) throw e;
    }
  }
}

/**
 * Stores a new entry (already validated) with its terms, and counts it in its service.
 * @param {{name: string, service: string, phone: string, office: string, email: string}} entry
 * @returns {string} the new entry's id
 */
export function createEntry(entry) {
  ensureIndexes();
  return retrying(() => {
    const id = newId();
    const nameKey = normalize(entry.name);
    const serviceKey = normalize(entry.service) || "-";
    const terms = termsOf(entry);
    const service = store.get(SERVICES, serviceKey);
    const body = {
      id,
      name: entry.name,
      service: service ? service.body.name : entry.service,
      phone: entry.phone,
      office: entry.office,
      email: entry.email,
      name_key: nameKey,
      service_key: serviceKey,
      terms: terms.length,
      created_at: Date.now(),
    };
    store.transaction(
      [
        store.require.absent(ENTRIES, id),
        service ? store.require.version(SERVICES, serviceKey, service.version) : store.require.absent(SERVICES, serviceKey),
      ],
      [
        store.write.put(ENTRIES, id, body),
        ...terms.map((term, i) => store.write.put(TERMS, `${id}:${i}`, { term, entry: id, name_key: nameKey })),
        store.write.put(SERVICES, serviceKey, {
          name: body.service,
          key: serviceKey,
          count: (service ? service.body.count : 0) + 1,
        }),
      ],
    );
    return id;
  });
}

/**
 * Deletes an entry, its terms, and its count in its service.
 * @param {string} id
 * @returns {{service: string, remaining: number} | null} the entry's service and how many
 *   entries it still has, or null if there was no such entry
 */
export function deleteEntry(id) {
  return retrying(() => {
    const doc = store.get(ENTRIES, id);
    if (doc === null) return null;
    const e = doc.body;
    const service = store.get(SERVICES, e.service_key);
    const remaining = service ? service.body.count - 1 : 0;
    const preconditions = [store.require.version(ENTRIES, id, doc.version)];
    const writes = [store.write.delete(ENTRIES, id)];
    for (let i = 0; i < e.terms; i++) writes.push(store.write.delete(TERMS, `${id}:${i}`));
    if (service) {
      preconditions.push(store.require.version(SERVICES, e.service_key, service.version));
      writes.push(
        remaining > 0
          ? store.write.put(SERVICES, e.service_key, { ...service.body, count: remaining })
          : store.write.delete(SERVICES, e.service_key),
      );
    }
    store.transaction(preconditions, writes);
    return { service: e.service, remaining };
  });
}

/**
 * An entry, or null.
 * @param {string} id
 * @returns {Entry | null}
 */
export function getEntry(id) {
  if (id === "" || id.includes(":")) return null;
  const doc = store.get(ENTRIES, id);
  return doc === null ? null : doc.body;
}

/**
 * @typedef {{id: string, name: string, service: string, phone: string, office: string,
 *   email: string, name_key: string, service_key: string, terms: number, created_at: number}} Entry
 * @typedef {{entries: Entry[], next: {cursor: string, after: string} | null}} EntryPage
 */

/**
 * One page of the entries with a word of the name, or of the service, starting with `key`
 * (a normalised query), sorted by name.
 * @param {string} key the normalised query (search-keys.js `queryKey`)
 * @param {{cursor?: string | null, after?: string | null, pageSize?: number}} [from] where the
 *   previous page ended: the store's cursor and the last entry shown
 * @returns {EntryPage}
 */
export function search(key, from = {}) {
  const pageSize = from.pageSize ?? PAGE_SIZE;
  let cursor = from.cursor ?? null;
  let last = from.after ?? null;
  /** @type {string[]} */
  const ids = [];
  let reads = 0;
  do {
    const page = store.find(TERMS, {
      where: store.where("term").prefix(key),
      orderBy: "name_key",
      limit: pageSize,
      cursor,
    });
    for (const doc of page.documents) {
      const entry = doc.body.entry;
      if (entry !== last) ids.push(entry);
      last = entry;
    }
    cursor = page.nextCursor;
    reads += 1;
    // An entry may match several terms: read on until the page is full (a few reads at most).
  } while (ids.length < pageSize && cursor !== null && reads < 5);
  return { entries: entriesIn(ids), next: cursor !== null && last !== null ? { cursor, after: last } : null };
}

/**
 * The entries with these ids, in this order (those deleted meanwhile are skipped).
 * @param {string[]} ids at most 100 (a search page holds fewer than 2 × 50)
 * @returns {Entry[]}
 */
function entriesIn(ids) {
  if (ids.length === 0) return [];
  const found = store.find(ENTRIES, { where: store.where("id").in(ids), limit: ids.length });
  const byId = new Map(found.documents.map((d) => [d.id, d.body]));
  return ids.map((id) => byId.get(id)).filter((e) => e !== undefined);
}

/**
 * One page of the entries of a service, sorted by name.
 * @param {string} serviceKey a normalised service name
 * @param {string | null} cursor the previous page's cursor
 * @returns {EntryPage}
 */
export function entriesOfService(serviceKey, cursor) {
  const page = store.find(ENTRIES, {
    where: store.where("service_key").eq(serviceKey),
    orderBy: "name_key",
    limit: PAGE_SIZE,
    cursor,
  });
  return { entries: page.documents.map((d) => d.body), next: page.nextCursor === null ? null : { cursor: page.nextCursor, after: "" } };
}

/**
 * Every service, sorted by name, with its number of entries.
 * @returns {Array<{name: string, key: string, count: number}>}
 */
export function services() {
  /** @type {Array<{name: string, key: string, count: number}>} */
  const out = [];
  /** @type {string | null} */
  let cursor = null;
  do {
    /** @type {import("lutetia").FindPage<{name: string, key: string, count: number}>} */
    const page = store.find(SERVICES, { limit: 1000, cursor });
    out.push(...page.documents.map((d) => d.body));
    cursor = page.nextCursor;
  } while (cursor !== null && out.length < 10000);
  return out;
}
