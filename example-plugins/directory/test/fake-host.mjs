// In-memory stand-ins for the host interfaces the directory imports (log, config, store), at
// the WIT level the build binds them (BigInt versions, JSON text bodies, errors thrown with a
// `payload` variant). Enough of the store's semantics for the plugin: eq/prefix/in filters on
// top-level fields, order by a field then id, offset cursors, preconditions.

/** @param {string} tag @param {string} [val] */
function witError(tag, val) {
  const e = new Error(`${tag} (see error.payload)`);
  Object.defineProperty(e, "payload", { value: val === undefined ? { tag } : { tag, val } });
  return e;
}

/**
 * @param {Record<string, string>} settings
 */
export function fakeHost(settings) {
  /** @type {Map<string, {version: bigint, body: string}>} key: collection + "\0" + id */
  const docs = new Map();
  const lines = [];
  const key = (c, id) => `${c}\u0000${id}`;
  const matches = (body, filters) =>
    filters.every((f) => {
      const v = JSON.parse(body)[f.field];
      const want = JSON.parse(f.value);
      if (f.op === "eq") return v === want;
      if (f.op === "prefix") return typeof v === "string" && v.startsWith(want);
      if (f.op === "in") return want.includes(v);
      throw new Error(`fake store: no ${f.op}`);
    });
  const inCollection = (c) =>
    [...docs.entries()].filter(([k]) => k.startsWith(c + "\u0000")).map(([k, d]) => ({ collection: c, id: k.slice(c.length + 1), ...d }));
  const store = {
    get(c, id) {
      const d = docs.get(key(c, id));
      return d ? { collection: c, id, version: d.version, body: d.body } : undefined;
    },
    put(c, id, body, expected) {
      const d = docs.get(key(c, id));
      if (expected !== undefined && (d ? d.version : 0n) !== expected) throw witError("conflict");
      const version = (d ? d.version : 0n) + 1n;
      docs.set(key(c, id), { version, body });
      return version;
    },
    delete(c, id) {
      return docs.delete(key(c, id));
    },
    ensureIndex() {},
    count(c, filters) {
      return BigInt(inCollection(c).filter((d) => matches(d.body, filters)).length);
    },
    find(q) {
      const all = inCollection(q.collection)
        .filter((d) => matches(d.body, q.filters))
        .sort((a, b) => {
          const av = q.orderBy ? JSON.parse(a.body)[q.orderBy] : a.id;
          const bv = q.orderBy ? JSON.parse(b.body)[q.orderBy] : b.id;
          const c = av < bv ? -1 : av > bv ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
          return q.descending ? -c : c;
        });
      const start = q.cursor ? Number(q.cursor) : 0;
      const page = all.slice(start, start + q.limit);
      const next = start + q.limit < all.length ? String(start + q.limit) : undefined;
      return { documents: page, nextCursor: next };
    },
    transaction(pre, writes) {
      for (const p of pre) {
        if (p.tag === "absent" && docs.has(key(p.val.collection, p.val.id))) throw witError("conflict");
        if (p.tag === "at-version" && docs.get(key(p.val[0].collection, p.val[0].id))?.version !== p.val[1]) throw witError("conflict");
        if (p.tag === "count-below" && store.count(p.val[0], p.val[1]) >= p.val[2]) throw witError("conflict");
      }
      return BigUint64Array.from(
        writes.map((w) => (w.tag === "put" ? store.put(w.val.collection, w.val.id, w.val.body, w.val.expectedVersion) : (store.delete(w.val.collection, w.val.id), 0n))),
      );
    },
  };
  return {
    lines,
    docs,
    interfaces: {
      log: { log: (level, message) => lines.push(`${level}: ${message}`) },
      config: {
        get: (k) => settings[k],
        getAll: () => Object.entries(settings).sort(([a], [b]) => (a < b ? -1 : 1)),
      },
      store,
    },
  };
}
