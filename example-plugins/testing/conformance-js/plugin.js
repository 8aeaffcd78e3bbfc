// `conformance-js`: a test-only plugin, never installed by a city.
//
// It answers the routes of example-plugins/testing/CONFORMANCE.md with the JavaScript SDK
// only; conformance-rust and conformance-python answer the same routes the same way, and
// tests/tests/contract.rs runs one suite against the three. Where the contract leaves a
// detail open, it follows conformance-rust: integers in the query are ASCII digits only, a
// known path with another method is an unknown route (404), a repeated form field keeps its
// first value.

import {
  Invalid,
  NotFound,
  Page,
  Response,
  catchServiceErrors,
  config,
  escapeHtml,
  events,
  files,
  kv,
  log,
  mail,
  store,
} from "lutetia";

/** What `GET /` says the plugin is written in. */
const LANG = "js";
/** The exact body of `GET /text`. */
const TEXT = "Grüße aus Lutèce — 東京 🚲\n";

export default {
  handle: catchServiceErrors(route),

  /** @param {import("lutetia").Event} event */
  onEvent(event) {
    let payload;
    try {
      payload = JSON.parse(event.payload);
    } catch (e) {
      throw new Error(`payload is not JSON: ${e instanceof Error ? e.message : e}`);
    }
    kv.setJson(`event:${event.id}`, {
      id: event.id,
      topic: event.topic,
      publisher: event.publisher,
      payload,
      attempt: event.attempt,
    });
  },

  /** @param {import("lutetia").Job} job */
  onSchedule(job) {
    kv.increment(`job:${job.name}`, 1);
  },

  /** @param {string | null} fromVersion */
  migrate(fromVersion) {
    kv.set("migrated-from", fromVersion ?? "");
    kv.increment("migrations", 1);
  },
};

/**
 * @param {import("lutetia").Request} req
 * @returns {import("lutetia").Reply}
 */
function route(req) {
  const m = req.method;
  const s = req.segments;
  /** @type {(method: string, ...path: string[]) => boolean} */
  const is = (method, ...path) =>
    m === method && s.length === path.length && path.every((p, i) => p === "*" || p === s[i]);

  if (is("GET")) return home();
  if (s.length === 1 && s[0] === "echo") return echo(req);
  if (is("GET", "text")) return Response.text(TEXT);
  if (is("GET", "bytes")) return bytes(req);
  if (is("GET", "query")) return Response.json(req.queryObject());
  if (is("POST", "form")) return Response.json(req.formObject());
  if (is("POST", "json")) return Response.json({ received: req.json() });
  if (is("POST", "json", "native")) return nativeJson(req.body);
  if (is("GET", "recursion")) return recursion(Number(digits(req.queryParam("depth")) ?? 0n));
  if (is("POST", "multipart")) {
    return Response.json({
      parts: req.multipart().map((p) => ({
        name: p.name,
        filename: p.filename,
        content_type: p.contentType,
        size: p.data.length,
        text: p.text(),
      })),
    });
  }
  if (is("GET", "request")) {
    return Response.json({
      method: req.method,
      path: req.path,
      query: req.query,
      locale: req.locale,
      mount: req.mount,
      request_id: req.requestId,
      has_user: req.user !== null,
    });
  }
  if (is("GET", "config")) return Response.json(config.all());
  if (is("GET", "config", "*")) return Response.json({ key: s[1], value: config.get(s[1]) });
  if (is("GET", "log")) {
    log.info(req.queryParam("message") ?? "");
    return new Response(204);
  }

  if (is("GET", "kv")) return Response.json({ keys: kv.listKeys(req.queryParam("prefix") ?? "", { limit: 1000 }) });
  if (is("GET", "kv", "*")) {
    const bytes = kv.get(s[1]);
    if (bytes === null) throw new NotFound();
    return octets(bytes);
  }
  if (is("PUT", "kv", "*")) {
    kv.set(s[1], req.body);
    return Response.json({ key: s[1], bytes: req.body.length });
  }
  if (is("DELETE", "kv", "*")) return Response.json({ deleted: kv.delete(s[1]) });
  if (is("POST", "kv", "*", "increment")) {
    const by = req.queryParam("by");
    const value = kv.incrementBigInt(s[1], by === null ? 1n : integer(by, "by"));
    // A signed 64-bit value, written exactly (JSON.stringify has no BigInt).
    return new Response(200, `{"value":${value.toString()}}`, [["content-type", "application/json"]]);
  }

  if (is("PUT", "store", "*", "*")) return storePut(req, s[1], s[2]);
  if (is("GET", "store", "*", "*")) {
    const doc = store.get(s[1], s[2]);
    if (doc === null) throw new NotFound();
    return Response.json(docJson(doc));
  }
  if (is("DELETE", "store", "*", "*")) return Response.json({ deleted: store.delete(s[1], s[2]) });
  if (is("GET", "store", "*")) return storeFind(req, s[1]);
  if (is("POST", "store", "*", "_index")) {
    const fields = (req.queryParam("fields") ?? "").split(",").filter((f) => f !== "");
    store.ensureIndex(s[1], fields, { unique: req.queryParam("unique") === "1" });
    return new Response(204);
  }
  if (is("POST", "tx")) return transaction(req);

  if (is("PUT", "files", "*")) {
    const info = files.put(s[1], req.header("content-type") ?? "", req.body);
    return Response.json({ name: info.name, content_type: info.contentType, size: info.size, sha256: info.sha256 });
  }
  if (is("GET", "files", "*")) {
    const found = files.get(s[1]);
    if (found === null) throw new NotFound();
    return new Response(200, found.data, [["content-type", found.info.contentType]]);
  }
  if (is("GET", "files")) {
    const list = files.list(req.queryParam("prefix") ?? "", 1000);
    return Response.json({ files: list.map((f) => ({ name: f.name, content_type: f.contentType, size: f.size })) });
  }
  if (is("DELETE", "files", "*")) return Response.json({ deleted: files.delete(s[1]) });
  if (is("GET", "files", "*", "url")) return Response.json({ url: files.url(req, s[1]) });

  if (is("POST", "mail")) return sendMail(req);
  if (is("POST", "events", "*")) {
    events.publishText(s[1], req.text());
    return Response.json({ published: s[1] }, 202);
  }
  if (is("GET", "events")) {
    const list = [];
    for (const key of allKeys("event:")) {
      const record = kv.getJson(key);
      if (record !== null) list.push(record);
    }
    return Response.json({ events: list });
  }
  if (is("GET", "jobs")) return Response.json({ tick: storedInteger("job:tick") });
  if (is("GET", "migrations")) {
    const from = kv.getText("migrated-from");
    return Response.json({ from: from === null || from === "" ? null : from, count: storedInteger("migrations") });
  }
  if (is("GET", "trap")) throw new Error("conformance trap");
  return Response.notFound();
}

/** `GET /`: a page; the host sanitises it (the script goes) and wraps it in the layout. */
function home() {
  const greeting = config.getOr("greeting", "");
  return new Page(
    "Conformance",
    `<h1>Conformance</h1><p class="lang">${LANG}</p><p class="greeting">${escapeHtml(greeting)}</p>` +
      `<script>alert("x")</script>`,
  );
}

/**
 * `POST /json/native`: the body through `JSON.parse` and `JSON.stringify` without the SDK's
 * checks (a deep one makes SpiderMonkey throw "too much recursion"), then a 64-level document
 * in the same call, and a kv call: a caught recursion error must leave the engine working.
 * @param {Uint8Array} body
 * @returns {import("lutetia").Response}
 */
function nativeJson(body) {
  /** @param {string} text */
  const roundTrip = (text) => JSON.stringify(JSON.parse(text));
  /** @type {string | null} */
  let failure = null;
  try {
    roundTrip(new TextDecoder().decode(body));
  } catch (e) {
    failure = e instanceof Error ? e.name : String(e);
  }
  const deep = "[".repeat(64) + "]".repeat(64);
  let after = false;
  try {
    after = roundTrip(deep) === deep;
  } catch {
    after = false;
  }
  const count = kv.increment("native-json", 1);
  return Response.json({ ok: failure === null, failure, after, count });
}

/**
 * `GET /recursion?depth=N`: plugin code recursing N levels (SpiderMonkey throws "too much
 * recursion" past its stack), then 64 levels and a kv call in the same call: the caught error
 * must leave the engine working.
 * @param {number} depth
 * @returns {import("lutetia").Response}
 */
function recursion(depth) {
  /** @type {(n: number) => number} */
  const down = (n) => (n === 0 ? 0 : 1 + down(n - 1));
  /** @type {string | null} */
  let failure = null;
  try {
    down(depth);
  } catch (e) {
    failure = e instanceof Error ? e.name : String(e);
  }
  const after = down(64) === 64;
  const count = kv.increment("recursion", 1);
  return Response.json({ ok: failure === null, failure, after, count });
}

/**
 * `/echo`: the request's status wish, method, path, query, type and body sent back.
 * @param {import("lutetia").Request} req
 */
function echo(req) {
  const wanted = digits(req.queryParam("status"));
  const status = wanted !== null && wanted >= 100n && wanted <= 599n ? Number(wanted) : 200;
  const response = new Response(status, req.body, [
    ["content-type", req.header("content-type") ?? "application/octet-stream"],
    ["x-echo-method", req.method],
    ["x-echo-path", req.path],
    ["x-echo-query", req.query],
  ]);
  const test = req.header("x-test");
  if (test !== null) response.header("x-echo-header", test);
  return response;
}

/**
 * `GET /bytes?n=N`: N bytes, byte i = i % 251.
 * @param {import("lutetia").Request} req
 */
function bytes(req) {
  const n = digits(req.queryParam("n"));
  if (n === null || n > BigInt(Number.MAX_SAFE_INTEGER)) throw new Invalid("n must be a non-negative integer");
  const data = new Uint8Array(Number(n));
  // One period of 251 bytes, then doubling copies (a byte-by-byte loop is slow in the engine).
  for (let i = 0; i < Math.min(251, data.length); i++) data[i] = i;
  for (let filled = 251; filled < data.length; filled *= 2) data.copyWithin(filled, 0, filled);
  return octets(data);
}

/** @param {Uint8Array} data */
function octets(data) {
  return new Response(200, data, [["content-type", "application/octet-stream"]]);
}

/**
 * A decimal integer written with ASCII digits only (no sign, spaces or exponent), or null.
 * @param {string | null} text
 * @returns {bigint | null}
 */
function digits(text) {
  if (text === null || !/^[0-9]+$/.test(text)) return null;
  const n = BigInt(text);
  return n <= 0xffffffffffffffffn ? n : null;
}

/**
 * An integer that may be negative (`-` then ASCII digits), in the signed 64-bit range.
 * @param {string} text
 * @param {string} name
 * @returns {bigint}
 */
function integer(text, name) {
  const negative = text.startsWith("-");
  const magnitude = digits(negative ? text.slice(1) : text);
  if (magnitude === null || magnitude > 0x7fffffffffffffffn) throw new Invalid(`${name} must be an integer`);
  return negative ? -magnitude : magnitude;
}

/**
 * The decimal integer stored at `key` (0 when absent).
 * @param {string} key
 * @returns {number}
 */
function storedInteger(key) {
  const text = kv.getText(key);
  if (text === null) return 0;
  return Number(integer(text.trim(), key));
}

/**
 * Every kv key starting with `prefix`, page after page.
 * @param {string} prefix
 * @returns {string[]}
 */
function allKeys(prefix) {
  /** @type {string[]} */
  const keys = [];
  /** @type {string | null} */
  let startAfter = null;
  for (;;) {
    const page = kv.listKeys(prefix, { startAfter, limit: 1000 });
    keys.push(...page);
    if (page.length < 1000) return keys;
    startAfter = page[page.length - 1];
  }
}

/** @param {import("lutetia").StoredDocument} doc */
function docJson(doc) {
  return { id: doc.id, version: doc.version, body: doc.body };
}

/**
 * `PUT /store/{collection}/{id}`, `if-version: N` being the expected version.
 * @param {import("lutetia").Request} req
 * @param {string} collection
 * @param {string} id
 */
function storePut(req, collection, id) {
  const body = req.json();
  const header = req.header("if-version");
  let expectedVersion = null;
  if (header !== null) {
    const n = digits(header.trim());
    if (n === null || n > BigInt(Number.MAX_SAFE_INTEGER)) throw new Invalid("if-version must be a non-negative integer");
    expectedVersion = Number(n);
  }
  return Response.json({ version: store.put(collection, id, body, { expectedVersion }) });
}

/** @type {import("lutetia").Comparison[]} */
const OPS = ["eq", "ne", "lt", "lte", "gt", "gte", "in", "prefix"];

/**
 * @param {unknown} name
 * @returns {import("lutetia").Comparison}
 */
function op(name) {
  const found = OPS.find((o) => o === name);
  if (found === undefined) throw new Invalid(`unknown operator ${JSON.stringify(name)}`);
  return found;
}

/**
 * `GET /store/{collection}?order=&desc=1&limit=&cursor=&field=&op=&value=`.
 * @param {import("lutetia").Request} req
 * @param {string} collection
 */
function storeFind(req, collection) {
  const field = req.queryParam("field");
  const opName = req.queryParam("op");
  const valueText = req.queryParam("value");
  /** @type {import("lutetia").FilterLike[]} */
  let where = [];
  if (field !== null && opName !== null && valueText !== null) {
    let value;
    try {
      value = JSON.parse(valueText);
    } catch (e) {
      throw new Invalid(`value is not JSON: ${e instanceof Error ? e.message : e}`);
    }
    where = [{ field, op: op(opName), value }];
  } else if (field !== null || opName !== null || valueText !== null) {
    throw new Invalid("a filter needs field, op and value");
  }
  let limit = 100;
  const limitText = req.queryParam("limit");
  if (limitText !== null) {
    const n = digits(limitText);
    if (n === null || n > 0xffffffffn) throw new Invalid("limit must be a positive integer");
    limit = Number(n);
  }
  const order = req.queryParam("order");
  const page = store.find(collection, {
    where,
    orderBy: order,
    descending: order !== null && req.queryParam("desc") === "1",
    limit,
    cursor: req.queryParam("cursor"),
  });
  return Response.json({
    documents: page.documents.map(docJson),
    next: page.nextCursor,
    count: store.count(collection, where),
  });
}

/** @param {string} what */
function malformed(what) {
  return new Invalid(`malformed transaction: ${what}`);
}

/**
 * @param {unknown[]} args
 * @param {number} i
 * @param {string} what
 * @returns {string}
 */
function textAt(args, i, what) {
  const v = args[i];
  if (typeof v !== "string") throw malformed(what);
  return v;
}

/**
 * @param {unknown[]} args
 * @param {number} i
 * @param {string} what
 * @returns {number}
 */
function numberAt(args, i, what) {
  const n = args[i];
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) throw malformed(what);
  return n;
}

/**
 * `{"NAME": [...]}`: the operation's name and its arguments.
 * @param {unknown} value
 * @returns {[string, unknown[]]}
 */
function operation(value) {
  if (value === null || typeof value !== "object" || Array.isArray(value) || Object.keys(value).length !== 1) {
    throw malformed("each operation is an object with one key");
  }
  const [name, args] = Object.entries(value)[0];
  if (!Array.isArray(args)) throw malformed("arguments must be an array");
  return [name, /** @type {unknown[]} */ (args)];
}

/**
 * @param {any} body
 * @param {string} key
 * @returns {unknown[]}
 */
function list(body, key) {
  const items = body === null || typeof body !== "object" ? undefined : body[key];
  if (items === undefined || items === null) return [];
  if (!Array.isArray(items)) throw malformed(`${key} must be an array`);
  return items;
}

/**
 * `POST /tx`: preconditions and writes, all or nothing.
 * @param {import("lutetia").Request} req
 */
function transaction(req) {
  const body = req.json();
  const preconditions = list(body, "preconditions").map((p) => {
    const [name, args] = operation(p);
    switch (name) {
      case "absent":
        return store.require.absent(textAt(args, 0, "collection"), textAt(args, 1, "id"));
      case "at_version":
        return store.require.version(textAt(args, 0, "collection"), textAt(args, 1, "id"), numberAt(args, 2, "version"));
      case "count_below": {
        if (!Array.isArray(args[1])) throw malformed("filters");
        const where = args[1].map((f) => {
          const parts = Array.isArray(f) ? f : [];
          if (parts.length < 3) throw malformed("filter value");
          return { field: textAt(parts, 0, "filter field"), op: op(textAt(parts, 1, "filter op")), value: parts[2] };
        });
        return store.require.countBelow(textAt(args, 0, "collection"), where, numberAt(args, 2, "count"));
      }
      default:
        throw malformed(`unknown precondition ${JSON.stringify(name)}`);
    }
  });
  const writes = list(body, "writes").map((w) => {
    const [name, args] = operation(w);
    switch (name) {
      case "put": {
        const collection = textAt(args, 0, "collection");
        const id = textAt(args, 1, "id");
        if (args.length < 3) throw malformed("body");
        const expected = args[3] === undefined || args[3] === null ? null : numberAt(args, 3, "expected version");
        return store.write.put(collection, id, /** @type {object} */ (args[2]), { expectedVersion: expected });
      }
      case "delete":
        return store.write.delete(textAt(args, 0, "collection"), textAt(args, 1, "id"));
      default:
        throw malformed(`unknown write ${JSON.stringify(name)}`);
    }
  });
  return Response.json({ versions: store.transaction(preconditions, writes) });
}

/**
 * `POST /mail`: `{"to": [...], "subject", "text", "html"?, "attachments"?}`.
 * @param {import("lutetia").Request} req
 */
function sendMail(req) {
  const body = req.json() ?? {};
  /** @type {(v: unknown) => string} */
  const text = (v) => (typeof v === "string" ? v : "");
  /** @type {string[]} */
  const to = Array.isArray(body.to) ? body.to.filter((/** @type {unknown} */ a) => typeof a === "string") : [];
  /** @type {any[]} */
  const given = Array.isArray(body.attachments) ? body.attachments : [];
  const attachments = given.map((a) => ({
    filename: text(a?.filename),
    contentType: text(a?.content_type),
    data: text(a?.text),
  }));
  const id = mail.send({
    to,
    subject: text(body.subject),
    text: text(body.text),
    html: typeof body.html === "string" ? body.html : null,
    attachments,
  });
  return Response.json({ id });
}
