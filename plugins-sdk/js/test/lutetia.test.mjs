// Unit tests of the SDK's pure helpers, under plain Node: `node --test plugins-sdk/js/test/`.
// The services need the host; here they must throw `Unavailable`.

import { test } from "node:test";
import assert from "node:assert/strict";

import {
  API_VERSION,
  Conflict,
  Denied,
  Event,
  Filter,
  Invalid,
  Job,
  NotFound,
  Page,
  QuotaExceeded,
  Request,
  Response,
  SafeHtml,
  ServiceError,
  Unavailable,
  User,
  __bind,
  __exports,
  catchServiceErrors,
  config,
  decodeUtf8,
  escapeHtml,
  events,
  files,
  html,
  kv,
  limits,
  log,
  mail,
  multipart,
  Part,
  rawHtml,
  store,
  toBytes,
  url,
} from "../lutetia.js";

const text = (bytes) => new TextDecoder().decode(bytes);

test("api version", () => {
  assert.equal(API_VERSION, "0.1.0");
});

test("percent-decoding is lenient", () => {
  assert.equal(url.decode("%41%42c"), "ABc");
  assert.equal(url.decode("%e2%82%ac"), "€");
  assert.equal(url.decode("100%25"), "100%");
  assert.equal(url.decode(""), "");
  assert.equal(url.decode("%"), "%");
  assert.equal(url.decode("%4"), "%4");
  assert.equal(url.decode("%zz%41"), "%zzA");
  assert.equal(url.decode("50%+"), "50%+");
  assert.equal(url.decode("a%FFb"), "a\uFFFDb");
  assert.equal(url.decode("%C3"), "\uFFFD");
  assert.equal(url.decode("a+b"), "a+b");
  assert.equal(url.decodeQueryComponent("a+b"), "a b");
  assert.equal(url.decodeQueryComponent("a%2Bb"), "a+b");
  assert.equal(url.decodeQueryComponent("Jean+Dupont%21"), "Jean Dupont!");
});

test("query strings and forms", () => {
  assert.deepEqual(url.parseQuery(""), []);
  assert.deepEqual(url.parseQuery("a=1&b=2"), [["a", "1"], ["b", "2"]]);
  assert.deepEqual(url.parseQuery("a=1&&b=&c"), [["a", "1"], ["b", ""], ["c", ""]]);
  assert.deepEqual(url.parseQuery("x=a=b"), [["x", "a=b"]]);
  assert.deepEqual(url.parseQuery("na%6De=J%C3%A9r%C3%B4me+L."), [["name", "Jérôme L."]]);
  assert.deepEqual(url.parseQuery("t=1&t=2"), [["t", "1"], ["t", "2"]]);
  assert.deepEqual(url.parseQuery("=v"), [["", "v"]]);
  assert.equal(url.formatQuery({ q: "rue de Rivoli", page: 2, none: null }), "q=rue%20de%20Rivoli&page=2");
  assert.equal(url.formatQuery([["a", "é"], ["a", "&"]]), "a=%C3%A9&a=%26");
});

test("encode round-trips", () => {
  for (const s of ["", "plain", "a b&c=d/e?f#g", "café ☕", "100%", "~-._"]) {
    assert.equal(url.decode(url.encode(s)), s);
    assert.equal(url.decodeQueryComponent(url.encode(s)), s);
  }
  assert.equal(url.encode("a/b"), "a%2Fb");
  assert.equal(url.encode("café & co"), "caf%C3%A9%20%26%20co");
});

test("request defaults and normalisation", () => {
  const r = new Request({ method: "post", path: "a/b" });
  assert.equal(r.method, "POST");
  assert.equal(r.path, "/a/b");
  assert.equal(r.query, "");
  assert.equal(r.body.length, 0);
  assert.equal(r.user, null);
  assert.equal(r.locale, "fr-FR");
  assert.equal(r.mount, "/p/test");
  assert.equal(r.requestId, "test");
  assert.deepEqual(new Request().segments, []);
});

test("segments are percent-decoded", () => {
  assert.deepEqual(new Request({ path: "/" }).segments, []);
  assert.deepEqual(new Request({ path: "/api/echo" }).segments, ["api", "echo"]);
  assert.deepEqual(new Request({ path: "//a//b/" }).segments, ["a", "b"]);
  assert.deepEqual(new Request({ path: "/kv/a%2Fb/c%20d+e" }).segments, ["kv", "a/b", "c d+e"]);
  assert.deepEqual(new Request({ path: "/entries/H%C3%A9l%C3%A8ne" }).segments, ["entries", "Hélène"]);
  const r = new Request({ path: "/x" });
  r.segments.push("mutated");
  assert.deepEqual(r.segments, ["x"]);
});

test("query parameters", () => {
  const r = new Request({ query: "a=1&b=x+y&a=2&c=%2B%26&empty=&q=h%C3%A9l" });
  assert.equal(r.queryParam("a"), "1");
  assert.equal(r.queryParam("b"), "x y");
  assert.equal(r.queryParam("c"), "+&");
  assert.equal(r.queryParam("empty"), "");
  assert.equal(r.queryParam("q"), "hél");
  assert.equal(r.queryParam("A"), null);
  assert.equal(r.queryParams.length, 6);
  assert.deepEqual(r.queryObject(), { a: "1", b: "x y", c: "+&", empty: "", q: "hél" });
  const proto = new Request({ query: "__proto__=x&constructor=y" }).queryObject();
  assert.equal(Object.getPrototypeOf(proto), Object.prototype);
  assert.equal(proto["__proto__"], "x");
  assert.equal(JSON.stringify(proto), '{"__proto__":"x","constructor":"y"}');
});

test("headers are case-insensitive", () => {
  const r = new Request({
    headers: [
      ["X-Forwarded-Proto", "https"],
      ["accept", "a"],
      ["Accept", "b"],
    ],
  });
  assert.equal(r.header("x-forwarded-proto"), "https");
  assert.equal(r.header("X-FORWARDED-PROTO"), "https");
  assert.equal(r.header("accept"), "a");
  assert.equal(r.header("content-type"), null);
  assert.deepEqual(new Request({ headers: { "Content-Type": "text/plain" } }).headers, [["content-type", "text/plain"]]);
});

test("bodies: text, json, form", () => {
  const j = new Request({ method: "POST", body: '{"n": 3, "tags": ["a"]}' });
  assert.deepEqual(j.json(), { n: 3, tags: ["a"] });
  assert.equal(j.text(), '{"n": 3, "tags": ["a"]}');
  assert.throws(() => new Request({ body: "{nope" }).json(), (e) => e instanceof Invalid && /not valid JSON/.test(e.message));
  assert.throws(() => new Request({ body: new Uint8Array([0x61, 0xff]) }).text(), Invalid);
  assert.throws(() => new Request({ body: new Uint8Array([0xed, 0xa0, 0x80]) }).text(), Invalid); // a surrogate
  assert.throws(() => new Request({ body: new Uint8Array([0xc0, 0xaf]) }).text(), Invalid); // overlong
  assert.equal(new Request({ body: new Uint8Array([0xf0, 0x9f, 0x9a, 0xb2]) }).text(), "🚲");

  const form = new Request({
    method: "POST",
    headers: [["content-type", "application/x-www-form-urlencoded; charset=UTF-8"]],
    body: "street=10+rue+de+la+Paix&note=caf%C3%A9+%26+th%C3%A9&ok&note=2",
  });
  assert.deepEqual(form.form(), [
    ["street", "10 rue de la Paix"],
    ["note", "café & thé"],
    ["ok", ""],
    ["note", "2"],
  ]);
  assert.deepEqual(form.formObject(), { street: "10 rue de la Paix", note: "café & thé", ok: "" });
  assert.deepEqual(new Request({ body: "a=1" }).form(), [["a", "1"]]);
  const multipart = new Request({ headers: [["content-type", "multipart/form-data; boundary=x"]], body: "--x" });
  assert.throws(() => multipart.form(), Invalid);
  assert.throws(() => new Request({ body: new Uint8Array([0x61, 0x3d, 0xff]) }).form(), Invalid);
});

// The body parsers' limits and strictness, as in the Rust and Python SDKs.
const nested = (depth) => "[".repeat(depth) + "]".repeat(depth);
const invalidWith = (body, pattern) =>
  assert.throws(
    () => new Request({ method: "POST", body }).json(),
    (e) => e instanceof Invalid && e.status === 400 && pattern.test(e.message),
    String(body).slice(0, 40),
  );

test("limits", () => {
  assert.deepEqual({ ...limits }, { MAX_JSON_DEPTH: 64, MAX_FORM_FIELDS: 1000, MAX_MULTIPART_PARTS: 1000 });
  assert.ok(Object.isFrozen(limits));
});

test("JSON depth is limited before parsing", () => {
  const deep = /nested deeper than 64 levels \(the SDK's limit\)/;
  assert.deepEqual(new Request({ body: nested(64) }).json(), JSON.parse(nested(64)));
  invalidWith(nested(65), deep);
  invalidWith('{"a":'.repeat(65) + "1" + "}".repeat(65), deep);
  invalidWith('{"a":['.repeat(33) + "]}".repeat(33), deep);
  invalidWith("[".repeat(2600), deep);
  invalidWith(new Uint8Array(2_000_000).fill(0x5b), deep);
  // Brackets in strings are text, escaped quotes and backslashes included.
  const text = '["' + "[".repeat(5000) + '\\"' + "{".repeat(5000) + '\\\\", "]]]"]';
  assert.equal(new Request({ body: text }).json().length, 2);
  // An unclosed string full of escaped quotes is read once, not from every quote.
  invalidWith('"' + '\\"'.repeat(200_000) + "\\", /not valid JSON/);
  // Siblings do not add up; whitespace does not matter.
  assert.equal(new Request({ body: "[" + Array(2000).fill(nested(40)).join(",") + "]" }).json().length, 2000);
  assert.deepEqual(new Request({ body: " [ ".repeat(64) + " ] ".repeat(64) }).json(), JSON.parse(nested(64)));
  const event = (payload) => new Event({ id: "e", topic: "t", publisher: "p", payload, publishedAt: 1, attempt: 1 });
  assert.deepEqual(event(nested(64)).json(), JSON.parse(nested(64)));
  assert.throws(() => event(nested(65)).json(), (e) => e instanceof Invalid && /event payload is JSON nested deeper than 64/.test(e.message));
});

test("JSON is read as the other SDKs read it", () => {
  for (const bad of ["NaN", "[Infinity]", '{"a": -Infinity}', "1e400", "[-1e400]", "9".repeat(309), "1".repeat(400), "{'a': 1}", "\uFEFF{}"]) {
    invalidWith(bad, /not valid JSON/);
  }
  invalidWith('"\\ud800"', /lone surrogate/);
  invalidWith('{"\\udc00": 1}', /lone surrogate/);
  invalidWith('["\\ude00\\ud83d"]', /lone surrogate/);
  assert.equal(new Request({ body: '"\\ud83d\\ude00"' }).json(), "😀");
  assert.deepEqual(new Request({ body: '["\\\\ud800"]' }).json(), ["\\ud800"]);
  assert.deepEqual(new Request({ body: "[1e-400, 1e308, 2.5E3]" }).json(), [0, 1e308, 2500]);
  // A byte-order mark is text, as in Rust and Python.
  assert.equal(new Request({ body: "\uFEFFa" }).text(), "\uFEFFa");
});

test("stored JSON has serde_json's depth limit (127)", () => {
  const values = new Map([
    ["ok", nested(127)],
    ["deep", nested(128)],
    ["huge", "[".repeat(100_000)],
  ]);
  __bind({ kv: { get: (key) => (values.has(key) ? new TextEncoder().encode(values.get(key)) : undefined) } });
  try {
    assert.deepEqual(kv.getJson("ok"), JSON.parse(nested(127)));
    for (const key of ["deep", "huge"]) {
      assert.throws(
        () => kv.getJson(key),
        (e) => e instanceof Invalid && e.message === `the value of "${key}" is JSON nested deeper than 127 levels (the SDK's limit)`,
      );
    }
  } finally {
    __bind(undefined);
  }
});

test("form fields are limited; escapes are lenient", () => {
  const atLimit = new Request({ body: Array(1000).fill("a=1").join("&&") + "&" }).form();
  assert.equal(atLimit.length, 1000);
  assert.throws(
    () => new Request({ body: Array(1001).fill("a").join("&") }).form(),
    (e) => e instanceof Invalid && /more than 1000 fields \(the SDK's limit\)/.test(e.message),
  );
  assert.equal(new Request({ body: "a&".repeat(1000) + "&".repeat(5000) }).form().length, 1000);
  assert.deepEqual(new Request({ body: "a=%&b=%4&c=%zz%41&d=%FF&e=%C3&f=100%25+%2B" }).formObject(), {
    a: "%",
    b: "%4",
    c: "%zzA",
    d: "\uFFFD",
    e: "\uFFFD",
    f: "100% +",
  });
});

const FIREFOX = new Uint8Array([
  ...new TextEncoder().encode(
    "-----------------------------9051914041544843365972754266\r\n" +
      'Content-Disposition: form-data; name="text"\r\n\r\n' +
      "text default\r\n" +
      "-----------------------------9051914041544843365972754266\r\n" +
      'Content-Disposition: form-data; name="file1"; filename="C:\\dir\\a.png"\r\n' +
      "Content-Type: image/png\r\n\r\n",
  ),
  0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0,
  ...new TextEncoder().encode(
    "\r\n--not-the-boundary\r\n" +
      "-----------------------------9051914041544843365972754266\r\n" +
      "Content-Disposition: form-data; name=\"file2\"; filename=\"\"; filename*=UTF-8''%e2%82%ac.txt\r\n" +
      "Content-Type: application/octet-stream\r\n\r\n" +
      "\r\n" +
      "-----------------------------9051914041544843365972754266--\r\n",
  ),
]);

test("multipart bodies", () => {
  const ct = "multipart/form-data; boundary=---------------------------9051914041544843365972754266";
  const parts = new Request({ method: "POST", headers: [["content-type", ct]], body: FIREFOX }).multipart();
  assert.deepEqual(parts.map((p) => p.name), ["text", "file1", "file2"]);
  assert.ok(parts[0] instanceof Part);
  assert.deepEqual([parts[0].text(), parts[0].filename, parts[0].contentType, parts[0].isFile], ["text default", null, null, false]);
  assert.deepEqual([parts[1].filename, parts[1].contentType, parts[1].isFile], ["a.png", "image/png", true]);
  assert.deepEqual(Array.from(parts[1].data.subarray(0, 4)), [0x89, 0x50, 0x4e, 0x47]);
  assert.equal(text(parts[1].data.subarray(10)), "\r\n--not-the-boundary");
  assert.equal(parts[1].text(), null, "not UTF-8");
  assert.deepEqual([parts[2].filename, parts[2].data.length, parts[2].isFile], ["€.txt", 0, true]);

  assert.equal(multipart.boundary('Multipart/Form-Data; charset=utf-8; boundary="a b"'), "a b");
  assert.equal(multipart.boundary("multipart/form-data; boundary=" + "x".repeat(71)), null);
  assert.equal(multipart.boundary("application/json"), null);
  const quoted = multipart.parse(
    "multipart/form-data; boundary=b",
    'pre\r\n--b\r\nContent-Disposition: form-data; name="q\\"x"; filename="a\\\\b\\c.txt"\r\n\r\nv\r\n--b--',
  );
  assert.deepEqual([quoted[0].name, quoted[0].filename], ['q"x', "c.txt"]);
  assert.throws(() => new Request({ body: "x" }).multipart(), Invalid);

  const ctB = "multipart/form-data; boundary=b";
  const many = (n) => "--b" + '\r\nContent-Disposition: form-data; name="f"\r\n\r\nv\r\n--b'.repeat(n) + "--\r\n";
  assert.equal(multipart.parse(ctB, toBytes(many(1000))).length, 1000);
  assert.throws(() => multipart.parse(ctB, toBytes(many(1001))), (e) => e instanceof Invalid && /more than 1000 parts/.test(e.message));
  for (const bad of [
    "",
    "--b",
    "--b\r\n",
    "--b\r\n\r\n",
    "--b\r\n\r\ndata\r\n--b--",
    '--b\r\nContent-Disposition: form-data; name="a"\r\n',
    '--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n',
    new Uint8Array([...toBytes("--b\r\n"), 0xff, ...toBytes(": x\r\n\r\nx\r\n--b--")]),
    "--b\r\nno colon\r\n\r\nx\r\n--b--",
    '--b\r\nContent-Disposition: attachment; name="a"\r\n\r\nx\r\n--b--',
    "--bX\r\n",
  ]) {
    assert.throws(() => multipart.parse(ctB, toBytes(bad)), (e) => e instanceof Invalid && e.message.startsWith("multipart body: "), String(bad));
  }
});

test("users", () => {
  const r = new Request({ user: { id: "1", login: "jd", displayName: "J D", roles: ["agent"], rights: ["edit"] } });
  assert.ok(r.user instanceof User);
  assert.equal(r.user.displayName, "J D");
  assert.ok(r.user.hasRole("agent"));
  assert.ok(r.user.hasRight("edit"));
  assert.ok(!r.user.hasRight("admin"));
});

test("links", () => {
  const r = new Request({ mount: "/p/hello/" });
  assert.equal(r.link("/x"), "/p/hello/x");
  assert.equal(r.link("x"), "/p/hello/x");
  assert.equal(files.url(new Request({ mount: "/p/x" }), "a b.png"), "/p/x/_files/a%20b.png");
});

test("pages", () => {
  const p = new Page("Hello", "<p>x</p>", { status: 404, headers: { "X-Test": "1" } }).header("x-test", "2");
  assert.equal(p.status, 404);
  assert.equal(p.title, "Hello");
  assert.equal(p.body, "<p>x</p>");
  assert.deepEqual(p.headers, [["x-test", "2"]]);
  assert.equal(new Page("T", html`<b>${"<i>"}</b>`).body, "<b>&lt;i&gt;</b>");
  assert.throws(() => new Page("T", "", { status: 42 }), RangeError);
});

test("responses", () => {
  const json = Response.json({ a: [1, null] });
  assert.equal(json.status, 200);
  assert.deepEqual(json.headers, [["content-type", "application/json"]]);
  assert.equal(text(json.body), '{"a":[1,null]}');
  assert.equal(Response.json({ id: 7 }, 201).status, 201);

  const big = Response.json({ n: 1n });
  assert.equal(big.status, 500);
  assert.equal(JSON.parse(big.text()).error, "serialization");

  const t = Response.text("hé");
  assert.deepEqual(t.headers, [["content-type", "text/plain; charset=utf-8"]]);
  assert.deepEqual(Array.from(t.body), [0x68, 0xc3, 0xa9]);
  assert.deepEqual(Response.html("<b>x</b>").headers, [["content-type", "text/html; charset=utf-8"]]);

  const redirect = Response.redirect("/p/x/done");
  assert.equal(redirect.status, 303);
  assert.deepEqual(redirect.headers, [["location", "/p/x/done"]]);
  assert.equal(redirect.body.length, 0);
  assert.equal(Response.redirect("/x", 302).status, 302);

  const missing = Response.notFound();
  assert.equal(missing.status, 404);
  assert.equal(missing.text(), "Not found");

  const raw = new Response(201, new Uint8Array([1, 2, 3]), [["X-A", "1"]]);
  assert.deepEqual(Array.from(raw.body), [1, 2, 3]);
  assert.deepEqual(raw.headers, [["x-a", "1"]]);
  assert.equal(new Response(204).body.length, 0);
  const h = Response.text("x").header("Content-Type", "text/csv").appendHeader("Vary", "a").appendHeader("vary", "b");
  assert.deepEqual(h.headers, [
    ["content-type", "text/csv"],
    ["vary", "a"],
    ["vary", "b"],
  ]);
  assert.throws(() => new Response(600), RangeError);
  assert.throws(() => new Response(200, 42), TypeError);
});

test("html escaping", () => {
  assert.equal(escapeHtml(""), "");
  assert.equal(escapeHtml("a & b"), "a &amp; b");
  assert.equal(escapeHtml(`say "hi" & 'bye' <b>`), "say &quot;hi&quot; &amp; &#39;bye&#39; &lt;b&gt;");
  assert.equal(escapeHtml("Hôtel de Ville — Paris"), "Hôtel de Ville — Paris");
  assert.equal(escapeHtml("&amp;"), "&amp;amp;");
  const name = "<script>";
  const items = ["a&b", html`<i>${"c"}</i>`];
  const out = html`<p title="${name}">${name}</p><ul>${items.map((i) => html`<li>${i}</li>`)}</ul>${null}${false}${undefined}${rawHtml("<br>")}${0}`;
  assert.ok(out instanceof SafeHtml);
  assert.equal(String(out), '<p title="&lt;script&gt;">&lt;script&gt;</p><ul><li>a&amp;b</li><li><i>c</i></li></ul><br>0');
});

test("service errors", () => {
  const cases = [
    [new NotFound(), "not-found", 404, "not found"],
    [new Denied(), "denied", 403, "denied"],
    [new Conflict("stale"), "conflict", 409, "stale"],
    [new Invalid("key too long"), "invalid", 400, "key too long"],
    [new QuotaExceeded(), "quota-exceeded", 429, "quota exceeded"],
    [new Unavailable("db down"), "unavailable", 503, "db down"],
  ];
  for (const [e, code, status, message] of cases) {
    assert.ok(e instanceof ServiceError && e instanceof Error);
    assert.equal(e.code, code);
    assert.equal(e.status, status);
    assert.equal(e.message, message);
    const r = e.response();
    assert.equal(r.status, status);
    assert.deepEqual(r.headers, [["content-type", "application/json"]]);
    assert.deepEqual(JSON.parse(r.text()), { error: code, message });
  }
  assert.equal(new Invalid("x").name, "Invalid");
  assert.equal(String(new Invalid("bad key")), "Invalid: bad key");
  assert.equal(new ServiceError("conflict").status, 409);
  assert.throws(() => new ServiceError("nope"), TypeError);
});

test("catchServiceErrors turns service errors into answers, nothing else", async () => {
  const handle = catchServiceErrors((req) => {
    if (req.path === "/missing") throw new NotFound("no such entry");
    if (req.path === "/bug") throw new TypeError("a bug");
    if (req.path === "/async") return Promise.reject(new Conflict());
    return Response.text("ok");
  });
  assert.equal(handle(new Request({ path: "/" })).status, 200);
  const missing = handle(new Request({ path: "/missing" }));
  assert.equal(missing.status, 404);
  assert.deepEqual(JSON.parse(missing.text()), { error: "not-found", message: "no such entry" });
  assert.throws(() => handle(new Request({ path: "/bug" })), TypeError);
  assert.equal((await handle(new Request({ path: "/async" }))).status, 409);
});

test("filters", () => {
  assert.deepEqual({ ...store.where("age").gt(3) }, { field: "age", op: "gt", value: 3 });
  assert.deepEqual({ ...store.where("a.b").in([1, 2]) }, { field: "a.b", op: "in", value: [1, 2] });
  assert.deepEqual({ ...store.where("name_key").prefix("hel") }, { field: "name_key", op: "prefix", value: "hel" });
  for (const op of ["eq", "ne", "lt", "lte", "gt", "gte"]) assert.equal(store.where("x")[op](1).op, op);
  assert.ok(store.where("x").eq(1) instanceof Filter);
  assert.throws(() => new Filter("x", "like", 1), TypeError);
  assert.throws(() => store.where("x").prefix(3), TypeError);
  assert.deepEqual(store.require.absent("c", "a"), { absent: { collection: "c", id: "a" } });
  assert.deepEqual(store.require.version("c", "a", 3), { atVersion: { collection: "c", id: "a", version: 3 } });
  assert.deepEqual(store.write.put("c", "a", { x: 1 }), { put: { collection: "c", id: "a", body: { x: 1 }, expectedVersion: null } });
  assert.deepEqual(store.write.delete("c", "a"), { delete: { collection: "c", id: "a" } });
});

test("bytes and UTF-8", () => {
  assert.deepEqual(Array.from(toBytes("é")), [0xc3, 0xa9]);
  const u = new Uint8Array([1, 2]);
  assert.equal(toBytes(u), u);
  assert.deepEqual(Array.from(toBytes(new Uint16Array([0x0201]))), [1, 2]);
  assert.throws(() => toBytes(3), TypeError);
  assert.equal(decodeUtf8(new Uint8Array([0xe6, 0x9d, 0xb1])), "東");
  assert.throws(() => decodeUtf8(new Uint8Array([0xe6, 0x9d])), Invalid);
});

test("events and jobs", () => {
  const e = new Event({ id: "e1", topic: "t", publisher: "p", payload: '{"a":1}', publishedAt: 1700000000000n, attempt: 2 });
  assert.equal(e.publishedAt, 1700000000000);
  assert.deepEqual(e.json(), { a: 1 });
  assert.throws(() => new Event({ ...e, payload: "{" }).json(), Invalid);
  assert.deepEqual({ ...new Job({ name: "tick", scheduledAt: 5n }) }, { name: "tick", scheduledAt: 5 });
});

test("services are absent outside the host", () => {
  for (const f of [
    () => kv.get("a"),
    () => config.get("a"),
    () => log.info("x"),
    () => store.get("c", "a"),
    () => files.stat("a"),
    () => mail.send({ to: "a@example.org", subject: "s", text: "t" }),
    () => events.publish("t", {}),
  ]) {
    assert.throws(f, (e) => e instanceof Unavailable && /only inside the Lutetia host/.test(e.message));
  }
});

test("exports adapter with fake interfaces", async () => {
  const calls = [];
  __bind({
    log: { log: (level, message) => calls.push([level, message]) },
    config: { get: (k) => (k === "title" ? "Annuaire" : undefined), getAll: () => [["a", "1"], ["title", "Annuaire"]] },
    store: {
      transaction: (pre, writes) => {
        assert.deepEqual(pre, [
          { tag: "absent", val: { collection: "c", id: "a" } },
          { tag: "at-version", val: [{ collection: "c", id: "b" }, 3n] },
          { tag: "count-below", val: ["c", [{ field: "x", op: "gt", value: "0" }], 5n] },
        ]);
        assert.deepEqual(writes, [
          { tag: "put", val: { collection: "c", id: "a", body: '{"x":1}', expectedVersion: undefined } },
          { tag: "put", val: { collection: "c", id: "b", body: "{}", expectedVersion: 3n } },
          { tag: "delete", val: { collection: "c", id: "z" } },
        ]);
        return new BigUint64Array([1n, 4n, 0n]);
      },
      find: (q) => {
        assert.deepEqual(q, { collection: "c", filters: [{ field: "n", op: "in", value: "[1,2]" }], orderBy: "n", descending: true, limit: 2, cursor: undefined });
        return { documents: [{ collection: "c", id: "a", version: 2n, body: '{"n":1}' }], nextCursor: "abc" };
      },
    },
    kv: {
      get: () => undefined,
      increment: (key, delta) => {
        if (key === "") {
          const err = new Error("(see error.payload)");
          Object.defineProperty(err, "payload", { value: { tag: "invalid", val: "empty key" } });
          throw err;
        }
        // As componentize-js 0.23 lowers an s64: `toInt64`, then an engine check that the
        // BigInt is in the unsigned range (ComponentizeJS#343), then the raw 64 bits.
        const lowered = BigInt.asIntN(64, BigInt(delta));
        if (lowered < 0n || lowered > 0xffffffffffffffffn) throw new Error("Internal bindgen error in coreabi_from_bigint64 validation");
        return 41n + BigInt.asIntN(64, lowered);
      },
    },
  });
  try {
    assert.equal(config.get("title"), "Annuaire");
    assert.equal(config.get("nope"), null);
    assert.equal(config.getOr("nope", "x"), "x");
    assert.deepEqual(config.all(), { a: "1", title: "Annuaire" });
    assert.equal(kv.get("a"), null);
    assert.equal(kv.increment("n"), 42);
    assert.equal(kv.incrementBigInt("n", 2n), 43n);
    assert.throws(() => kv.increment("n", 1.5), Invalid);
    assert.equal(kv.increment("n", -50), -9);
    assert.equal(kv.incrementBigInt("n", -(2n ** 63n)), 41n - 2n ** 63n);
    assert.equal(BigInt.asIntN(64, -1n), -1n); // restored after the call
    assert.throws(() => kv.increment("n", 2 ** 53), Invalid);
    assert.throws(() => kv.increment(""), (e) => e instanceof Invalid && e.message === "empty key");
    assert.throws(() => files.stat("a"), (e) => e instanceof Denied && /\[capabilities\.files\]/.test(e.message));
    assert.throws(() => events.publish("t", 1), (e) => e instanceof Denied && /publish/.test(e.message));
    assert.deepEqual(
      store.transaction(
        [store.require.absent("c", "a"), store.require.version("c", "b", 3), store.require.countBelow("c", store.where("x").gt(0), 5)],
        [store.write.put("c", "a", { x: 1 }), store.write.put("c", "b", {}, { expectedVersion: 3 }), store.write.delete("c", "z")],
      ),
      [1, 4, 0],
    );
    assert.deepEqual(store.find("c", { where: [{ field: "n", op: "in", value: [1, 2] }], orderBy: "n", descending: true, limit: 2 }), {
      documents: [{ collection: "c", id: "a", version: 2, body: { n: 1 } }],
      nextCursor: "abc",
    });
    assert.throws(() => store.put("c", "a", { n: 1n }), Invalid);
    log.warn("careful");
    assert.deepEqual(calls, [["warn", "careful"]]);

    const seen = [];
    const plugin = {
      handle(request) {
        seen.push(request);
        if (request.path === "/page") return new Page("T", "<p>b</p>");
        if (request.path === "/error") return new Conflict();
        if (request.path === "/bad") return "nope";
        return Response.text("ok");
      },
      onEvent(event) {
        if (event.json().fail) throw new Invalid("told to fail");
      },
      async onSchedule() {
        throw new Error("async failure");
      },
      migrate(from) {
        seen.push(from);
      },
    };
    const x = __exports(plugin);
    const wit = { method: "GET", path: "/page", query: "", headers: [], body: new Uint8Array(), user: undefined, locale: "fr", mount: "/p/x", requestId: "r" };
    assert.deepEqual(x.handler.handle(wit), { tag: "page", val: { status: 200, title: "T", body: "<p>b</p>", headers: [] } });
    assert.ok(seen[0] instanceof Request);
    assert.equal(seen[0].user, null);
    const resp = x.handler.handle({ ...wit, path: "/" });
    assert.equal(resp.tag, "response");
    assert.equal(text(resp.val.body), "ok");
    assert.equal(x.handler.handle({ ...wit, path: "/error" }).val.status, 409);
    assert.throws(() => x.handler.handle({ ...wit, path: "/bad" }), TypeError);

    const event = { id: "1", topic: "t", publisher: "p", payload: "{}", publishedAt: 1n, attempt: 1 };
    assert.deepEqual(x.subscriber.onEvent(event), { tag: "ok", val: undefined });
    assert.deepEqual(x.subscriber.onEvent({ ...event, payload: '{"fail":true}' }), { tag: "err", val: "Invalid: told to fail" });
    assert.deepEqual(await x.scheduler.onSchedule({ name: "tick", scheduledAt: 1n }), { tag: "err", val: "async failure" });
    assert.deepEqual(x.lifecycle.migrate(undefined), { tag: "ok", val: undefined });
    assert.equal(seen.at(-1), null);
    x.lifecycle.migrate("0.1.0");
    assert.equal(seen.at(-1), "0.1.0");

    const minimal = __exports({ handle: () => Response.notFound() });
    assert.deepEqual(minimal.subscriber.onEvent(event), { tag: "ok", val: undefined });
    assert.deepEqual(minimal.scheduler.onSchedule({ name: "x", scheduledAt: 0n }), { tag: "ok", val: undefined });
    assert.deepEqual(minimal.lifecycle.migrate("1"), { tag: "ok", val: undefined });
    assert.throws(() => __exports({}), TypeError);
    assert.throws(() => __exports(undefined), TypeError);
  } finally {
    __bind(undefined);
  }
});
