// Unit tests of the directory's pure modules, under plain Node: `npm test`.
import { test } from "node:test";
import assert from "node:assert/strict";

import { MAX_WORDS, normalize, queryKey, telUri, termsOf, wordStarts } from "../search-keys.js";
import { validateEntry } from "../validate.js";

test("normalisation folds case, accents, ligatures and punctuation", () => {
  assert.equal(normalize("  Hélène  MARTIN-Duval "), "helene martin duval");
  assert.equal(normalize("ÉMILE"), "emile");
  assert.equal(normalize("Œuvres sociales"), "oeuvres sociales");
  assert.equal(normalize("Straße Łódź Ångström"), "strasse lodz angstrom");
  assert.equal(normalize("e\u0301cole"), "ecole"); // decomposed accent
  assert.equal(normalize("O'Neil & fils"), "o neil fils");
  assert.equal(normalize("Bureau 2.14"), "bureau 2 14");
  assert.equal(normalize("—"), "");
});

test("terms are the word starts of the name and of the service", () => {
  assert.deepEqual(wordStarts("helene martin duval"), ["helene martin duval", "martin duval", "duval"]);
  assert.deepEqual(wordStarts(""), []);
  assert.deepEqual(termsOf({ name: "Hélène Martin", service: "Voirie" }), ["helene martin", "martin", "voirie"]);
  assert.deepEqual(termsOf({ name: "Voirie", service: "Voirie" }), ["voirie"]);
  const many = termsOf({ name: "a b c d e f g h i j k l m n o p", service: "q r s t u v w x y z 1 2 3 4" });
  assert.equal(many.length, 2 * MAX_WORDS);
});

test("a query matches a term when it is a prefix of it", () => {
  const terms = termsOf({ name: "Hélène Martin-Duval", service: "Direction de la voirie" });
  const matches = (q) => terms.some((t) => t.startsWith(queryKey(q)));
  for (const q of ["hel", "HÉL", "helene m", "martin d", "duv", "voi", "direction de", "la v"]) assert.ok(matches(q), q);
  for (const q of ["elene", "artin", "xyz"]) assert.ok(!matches(q), q);
  assert.equal(queryKey("  !! "), "");
});

test("tel: links keep a leading + and the digits", () => {
  assert.equal(telUri("+33 (0)1 42.76-40 40"), "tel:+330142764040");
  assert.equal(telUri("01 42 76 40 40"), "tel:0142764040");
});

test("entry validation", () => {
  const ok = validateEntry({ name: " Hélène Martin ", service: "Voirie", phone: "+33 1 42 76 40 40", office: "B 214", email: "" });
  assert.deepEqual(ok.errors, {});
  assert.equal(ok.entry.name, "Hélène Martin");

  const bad = validateEntry({ name: "", service: "x".repeat(121), phone: "12a", office: "o".repeat(61), email: "nope" });
  assert.deepEqual(Object.keys(bad.errors).sort(), ["email", "name", "office", "phone", "service"]);
  assert.ok(validateEntry({ name: "A", service: "B", phone: "12" }).errors.phone);
  assert.ok(validateEntry({ name: "A", service: "B", phone: "1".repeat(31) }).errors.phone);
  assert.ok(validateEntry({ name: "A", service: "B", phone: "---" }).errors.phone);
  assert.deepEqual(validateEntry({ name: "A", service: "B", phone: "(01) 2.3-4" }).errors, {});
  assert.deepEqual(validateEntry({ name: "é".repeat(120), service: "B", phone: "123" }).errors, {});
  assert.ok(validateEntry({ name: "é".repeat(121), service: "B", phone: "123" }).errors.name);
  assert.deepEqual(validateEntry({ name: "A", service: "B", phone: "123", email: "a@b.fr" }).errors, {});
});
