// Search keys: how the directory makes names and services findable with the store's
// `prefix` filter, which compares a top-level string field (no array membership).
//
// Text is normalised (lower case, accents and ligatures folded, anything but letters and
// digits a space), then every entry gets one small "term" document per word start: the words
// of the name "Hélène Martin-Duval" give the terms "helene martin duval", "martin duval" and
// "duval". A query, normalised the same way, is a prefix of one of them: `hel`, `MARTIN D` and
// `duv` all find Hélène. The service is indexed the same way.
//
// Pure functions with no import: unit-tested under plain Node (test/search-keys.test.mjs).

// The engine the plugin runs in (SpiderMonkey without ICU) has no `String.prototype.normalize`:
// accents are folded with this table of the lower-case Latin letters with diacritics (Latin-1,
// Latin Extended-A/B, Latin Extended Additional), generated from Unicode's decompositions.
const ACCENTED =
  "àáâãäåçèéêëìíîïñòóôõöùúûüýÿāăąćĉċčďēĕėęěĝğġģĥĩīĭįĵķĺļľńņňōŏőŕŗřśŝşšţťũūŭůűųŵŷźżžơưǎǐǒǔǖǘǚǜǟǡǧǩǫǭǰǵǹǻȁȃȅȇȉȋȍȏȑȓȕȗșțȟȧȩȫȭȯȱȳ" +
  "ḁḃḅḇḉḋḍḏḑḓḕḗḙḛḝḟḡḣḥḧḩḫḭḯḱḳḵḷḹḻḽḿṁṃṅṇṉṋṍṏṑṓṕṗṙṛṝṟṡṣṥṧṩṫṭṯṱṳṵṷṹṻṽṿẁẃẅẇẉẋẍẏẑẓẕẖẗẘẙạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ";
const BASE =
  "aaaaaaceeeeiiiinooooouuuuyyaaaccccdeeeeegggghiiiijklllnnnooorrrssssttuuuuuuwyzzzouaiouuuuuaagkoojgnaaaeeiioorruusthaeooooy" +
  "abbbcdddddeeeeefghhhhhiikkkllllmmmnnnnoooopprrrrsssssttttuuuuuvvwwwwwxxyzzzhtwyaaaaaaaaaaaaeeeeeeeeiioooooooooooouuuuuuuyyyy";

/** Letters folded into one or more ASCII letters. @type {Record<string, string>} */
const FOLDED = { "œ": "oe", "æ": "ae", "ß": "ss", "ø": "o", "đ": "d", "ł": "l", "ı": "i", "ð": "d", "þ": "th", "ŀ": "l" };
for (let i = 0; i < ACCENTED.length; i++) FOLDED[ACCENTED[i]] = BASE[i];

/** At most this many word starts are indexed per field (a store transaction holds 100 writes). */
export const MAX_WORDS = 12;
/** Terms are cut to this many characters (queries longer than that are cut too). */
export const MAX_TERM = 120;

/**
 * Lower-cases, folds accents and ligatures, and turns anything but ASCII letters and digits
 * into single spaces: `"  Hélène  MARTIN-Duval "` gives `"helene martin duval"`.
 * @param {string} text
 * @returns {string}
 */
export function normalize(text) {
  let out = "";
  for (const c of String(text).toLowerCase()) out += FOLDED[c] ?? c;
  // Combining marks (a decomposed "é" is "e" + U+0301) go; other symbols become spaces.
  out = out.replace(/[\u0300-\u036f]/g, "");
  return out.replace(/[^a-z0-9]+/g, " ").trim();
}

/**
 * The word-start suffixes of a normalised text, longest first, at most `MAX_WORDS`, each cut
 * to `MAX_TERM` characters: `"helene martin"` gives `["helene martin", "martin"]`.
 * @param {string} key a normalised text
 * @returns {string[]}
 */
export function wordStarts(key) {
  const words = key === "" ? [] : key.split(" ");
  const out = [];
  for (let i = 0; i < words.length && out.length < MAX_WORDS; i++) {
    out.push(words.slice(i).join(" ").slice(0, MAX_TERM));
  }
  return out;
}

/**
 * The distinct search terms of an entry: the word starts of its name, then of its service.
 * @param {{name: string, service: string}} entry
 * @returns {string[]}
 */
export function termsOf(entry) {
  return [...new Set([...wordStarts(normalize(entry.name)), ...wordStarts(normalize(entry.service))])];
}

/**
 * A query as the prefix to look for in the terms (`""` when it has no letter or digit).
 * @param {string} query
 * @returns {string}
 */
export function queryKey(query) {
  return normalize(query).slice(0, MAX_TERM);
}

/**
 * The `tel:` URI of a phone number written for people: `+33 (0)1 42.76-40 40` gives
 * `tel:+330142764040` (only a leading `+` and the digits are kept).
 * @param {string} phone
 * @returns {string}
 */
export function telUri(phone) {
  const trimmed = String(phone).trim();
  return "tel:" + (trimmed.startsWith("+") ? "+" : "") + trimmed.replace(/[^0-9]/g, "");
}
