// The directory's routes under plain Node, against the in-memory host of fake-host.mjs:
// `npm test` (`node --test test/*.test.mjs`) in example-plugins/directory (Node 20.6 or later).
import { test } from "node:test";
import assert from "node:assert/strict";
import { register } from "node:module";

import { fakeHost } from "./fake-host.mjs";

register("./lutetia-loader.mjs", import.meta.url);
const { Page, Request, Response, __bind } = await import("lutetia");
const { default: plugin } = await import("../plugin.js");

const editor = { id: "u1", login: "agent", displayName: "Agent", roles: ["agent"], rights: ["edit"] };

/** A request to the plugin mounted at /p/directory. */
function request(method, target, { form, user } = {}) {
  const [path, query = ""] = target.split("?");
  return new Request({
    method,
    path,
    query,
    mount: "/p/directory",
    user: user ?? null,
    headers: form ? [["content-type", "application/x-www-form-urlencoded"]] : [],
    body: form ? new URLSearchParams(form).toString() : undefined,
  });
}

function call(method, target, options) {
  const reply = plugin.handle(request(method, target, options));
  assert.ok(reply instanceof Page || reply instanceof Response, "a Page or a Response");
  return reply;
}

/** Adds an entry; returns its id. */
function add(fields, options = { user: editor }) {
  const reply = call("POST", "/new", { form: { phone: "01 42 76 40 40", ...fields }, ...options });
  assert.equal(reply.status, 303, reply instanceof Page ? reply.body : "");
  const location = reply.headers.find(([n]) => n === "location")[1];
  return location.slice("/p/directory/entries/".length);
}

function apiNames(q) {
  const reply = call("GET", `/api/search?q=${encodeURIComponent(q)}`);
  assert.equal(reply.status, 200);
  return JSON.parse(reply.text()).entries.map((e) => e.name);
}

test("editing is closed until the operator sets edit-key", () => {
  __bind(fakeHost({ title: "Annuaire", "edit-key": "" }).interfaces);
  const form = call("GET", "/new");
  assert.equal(form.status, 403);
  assert.match(form.body, /exploitant du site doit d&#39;abord définir le réglage « edit-key »/);
  const post = call("POST", "/new", { form: { name: "A", service: "B", phone: "123", key: "" } });
  assert.equal(post.status, 403);
  // A signed-in user with the `edit` right edits anyway, without a key.
  const withRight = call("GET", "/new", { user: editor });
  assert.equal(withRight.status, 200);
  assert.doesNotMatch(withRight.body, /name="key"/);
  add({ name: "Hélène Martin", service: "Voirie" });
});

test("the edit key, validation, entry pages and deletion", () => {
  const host = fakeHost({ title: "Annuaire", "edit-key": "s3cret" });
  __bind(host.interfaces);
  assert.match(call("GET", "/new").body, /name="key"/);

  const wrong = call("POST", "/new", { form: { name: "Zoé", service: "Sports", phone: "0123", key: "nope" } });
  assert.equal(wrong.status, 403);
  assert.match(wrong.body, /Clé d&#39;édition incorrecte/);
  assert.match(wrong.body, /value="Zoé"/);

  const invalid = call("POST", "/new", { form: { name: "<b>Zoé</b>", service: "", phone: "12ab", office: "x".repeat(61), key: "s3cret" } });
  assert.equal(invalid.status, 400);
  assert.match(invalid.body, /value="&lt;b&gt;Zoé&lt;\/b&gt;"/);
  assert.match(invalid.body, /Le service est obligatoire/);
  assert.match(invalid.body, /Le téléphone ne contient que/);
  assert.match(invalid.body, /Le bureau fait au plus 60 caractères/);
  assert.equal(host.docs.size, 0);

  const id = add({ name: "Zoé <Roux>", service: "Sports", phone: "+33 1 42 76 46 01", office: "Gymnase", key: "s3cret" }, {});
  const page = call("GET", `/entries/${id}`);
  assert.equal(page.status, 200);
  assert.equal(page.title, "Zoé <Roux> — Annuaire");
  assert.match(page.body, /<dd>Zoé &lt;Roux&gt;<\/dd>/);
  assert.match(page.body, /href="tel:\+33142764601"/);
  assert.match(page.body, /name="key"/);

  assert.equal(call("POST", `/entries/${id}/delete`, { form: { key: "nope" } }).status, 403);
  const deleted = call("POST", `/entries/${id}/delete`, { form: { key: "s3cret" } });
  assert.equal(deleted.status, 303);
  assert.equal(host.docs.size, 0, "entry, terms and service count all gone");
  assert.equal(call("GET", `/entries/${id}`).status, 404);
  assert.equal(call("POST", `/entries/${id}/delete`, { form: { key: "s3cret" } }).status, 404);
  assert.equal(call("GET", "/nope").status, 404);
});

test("search ignores case and accents, matches word starts of name and service", () => {
  __bind(fakeHost({ "edit-key": "" }).interfaces);
  add({ name: "Hélène Martin", service: "Direction de la voirie" });
  add({ name: "Émile Durand", service: "Direction de la voirie" });
  add({ name: "Émilie Bernard", service: "État civil" });
  add({ name: "Jean-Pierre Hélias", service: "Urbanisme" });
  add({ name: "Michel Helmut", service: "Helpdesk" }); // two matching terms for "hel": listed once
  assert.deepEqual(apiNames("hel"), ["Hélène Martin", "Jean-Pierre Hélias", "Michel Helmut"]);
  assert.deepEqual(apiNames("EMI"), ["Émile Durand", "Émilie Bernard"]);
  assert.deepEqual(apiNames("voi"), ["Émile Durand", "Hélène Martin"]);
  assert.deepEqual(apiNames("etat c"), ["Émilie Bernard"]);
  assert.deepEqual(apiNames("pierre h"), ["Jean-Pierre Hélias"]);
  assert.deepEqual(apiNames("ilie"), []);
  assert.deepEqual(apiNames(" !! "), []);
  const entry = JSON.parse(call("GET", "/api/search?q=hel").text()).entries[0];
  assert.deepEqual(Object.keys(entry), ["id", "name", "service", "phone", "office"]);

  const home = call("GET", "/");
  assert.match(home.body, /<h2>Services<\/h2>/);
  assert.match(home.body, /\?service=Direction%20de%20la%20voirie[^>]*>Direction de la voirie<\/a> <span class="count">\(2\)/);
  const service = call("GET", "/?service=direction+de+la+VOIRIE");
  assert.match(service.body, /Émile Durand[\s\S]*Hélène Martin/);
});

test("results are paginated with the store's cursor, without repeats or gaps", () => {
  __bind(fakeHost({}).interfaces);
  const names = [];
  for (let i = 0; i < 45; i++) {
    const name = `Agent ${String(i).padStart(2, "0")} Accueil`;
    names.push(name);
    add({ name, service: "Accueil" });
  }
  for (const q of ["accueil", "agent", "a"]) {
    const seen = [];
    let target = `/?q=${q}`;
    let pages = 0;
    while (target) {
      const page = call("GET", target);
      seen.push(...[...page.body.matchAll(/\/entries\/[^"]+"[^>]*>([^<]+)<\/a><\/td>/g)].map((m) => m[1]));
      const next = /<p class="next"><a href="([^"]+)"/.exec(page.body);
      target = next ? next[1].replaceAll("&amp;", "&").slice("/p/directory".length) : null;
      pages += 1;
    }
    assert.deepEqual(seen, names, q);
    assert.equal(pages, 3, q);
  }
  assert.equal(apiNames("agent").length, 45);
});
