// Lutetia plugin SDK for JavaScript.
//
// A Lutetia plugin is a WebAssembly component targeting the `lutetia:plugin@0.1.0` world.
// A JavaScript plugin default-exports an object with a `handle(request)` method (and,
// optionally, `onEvent(event)`, `onSchedule(job)` and `migrate(fromVersion)`), imports this
// module as "lutetia", and is built with `lutetia plugin build DIR`, which compiles it with
// componentize-js (SpiderMonkey) into a component.
//
//     import { Page, Response, kv, escapeHtml } from "lutetia";
//
//     export default {
//       handle(request) {
//         if (request.method === "GET" && request.path === "/") {
//           const visits = kv.increment("visits");
//           return new Page("Hello", `<p>Visits: ${visits}</p>`);
//         }
//         return Response.notFound();
//       },
//     };
//
// This module has no dependencies and no import of its own: the build's generated entry
// module imports the WIT interfaces the manifest asks for and hands them to the SDK, so the
// pure helpers (Request, Page, Response, errors, filters, url, html) also run under plain
// Node for unit tests. The services (log, config, kv, store, files, mail, events) exist only
// inside the host; elsewhere they throw `Unavailable`.
//
// A fresh instance serves every call: keep state in the host's services, not in module
// variables. The module's top level runs once, at build time (the component is a snapshot of
// the initialised engine): do not read the clock or call services there.

/** The version of the `lutetia:plugin` WIT package this SDK targets (`api` in plugin.toml). */
export const API_VERSION = "0.1.0";

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/** HTTP status of each error code (the WIT `error` case names). */
const STATUS_OF = Object.freeze({
  "not-found": 404,
  denied: 403,
  conflict: 409,
  invalid: 400,
  "quota-exceeded": 429,
  unavailable: 503,
});

/** @typedef {"not-found"|"denied"|"conflict"|"invalid"|"quota-exceeded"|"unavailable"} ErrorCode */
/** @typedef {Page | Response | ServiceError} Reply what `handle` may return */

/** Default message of each error code. */
const DEFAULT_MESSAGE = Object.freeze({
  "not-found": "not found",
  denied: "denied",
  conflict: "conflict",
  invalid: "invalid",
  "quota-exceeded": "quota exceeded",
  unavailable: "unavailable",
});

/**
 * An error of one of the host's services, or from decoding a request: the cases of the WIT
 * `error` variant. Every service call throws one of its subclasses (`NotFound`, `Denied`,
 * `Conflict`, `Invalid`, `QuotaExceeded`, `Unavailable`) when the host answers an error.
 *
 * `response()` turns it into the JSON answer `{"error": code, "message": message}` with the
 * matching status, the usual reply of an API route:
 *
 *     try { return Response.json({ value: kv.increment(key) }); }
 *     catch (e) { if (e instanceof ServiceError) return e.response(); throw e; }
 */
export class ServiceError extends Error {
  /**
   * @param {"not-found"|"denied"|"conflict"|"invalid"|"quota-exceeded"|"unavailable"} code
   *   the WIT case name
   * @param {string} [message] what went wrong (defaults to a short text of the code)
   */
  constructor(code, message) {
    if (!Object.prototype.hasOwnProperty.call(STATUS_OF, code)) {
      throw new TypeError(`unknown service error code ${JSON.stringify(code)}`);
    }
    super(message === undefined || message === null || message === "" ? DEFAULT_MESSAGE[code] : String(message));
    /** The WIT case name: `not-found`, `denied`, `conflict`, `invalid`, `quota-exceeded` or `unavailable`. */
    this.code = code;
    /** The HTTP status that describes it: 404, 403, 409, 400, 429 or 503. */
    this.status = STATUS_OF[code];
    this.name = new.target.name;
  }

  /**
   * The JSON error answer: status `this.status`, body `{"error": code, "message": message}`.
   * @returns {Response}
   */
  response() {
    return Response.json({ error: this.code, message: this.message }, this.status);
  }
}

/** The thing asked for does not exist (404). */
export class NotFound extends ServiceError {
  /** @param {string} [message] */
  constructor(message) {
    super("not-found", message);
  }
}

/** The plugin was not granted the capability, or the call is not allowed (403). */
export class Denied extends ServiceError {
  /** @param {string} [message] */
  constructor(message) {
    super("denied", message);
  }
}

/** A concurrent change won: stale version, unique index, failed precondition (409). */
export class Conflict extends ServiceError {
  /** @param {string} [message] */
  constructor(message) {
    super("conflict", message);
  }
}

/** The arguments, or the request body being decoded, are invalid (400). */
export class Invalid extends ServiceError {
  /** @param {string} [message] why */
  constructor(message) {
    super("invalid", message);
  }
}

/** The plugin's quota for the service is used up (429). */
export class QuotaExceeded extends ServiceError {
  /** @param {string} [message] */
  constructor(message) {
    super("quota-exceeded", message);
  }
}

/** The service is temporarily unavailable, or absent (outside the host) (503). */
export class Unavailable extends ServiceError {
  /** @param {string} [message] why */
  constructor(message) {
    super("unavailable", message);
  }
}

const ERROR_CLASS = {
  "not-found": NotFound,
  denied: Denied,
  conflict: Conflict,
  invalid: Invalid,
  "quota-exceeded": QuotaExceeded,
  unavailable: Unavailable,
};

/**
 * Converts a WIT `error` variant (`{tag, val}`) into a `ServiceError`.
 * @param {{tag: string, val?: string}} variant
 * @returns {ServiceError}
 */
function fromWitError(variant) {
  const Class = ERROR_CLASS[/** @type {ErrorCode} */ (variant.tag)];
  return new Class(typeof variant.val === "string" ? variant.val : undefined);
}

/**
 * What a failed host call threw, as a `ServiceError` when it is a WIT error (componentize-js
 * throws an `Error` whose `payload` is the `error` variant); anything else is returned as is.
 * @param {unknown} e
 * @returns {unknown}
 */
function fromThrown(e) {
  if (e instanceof ServiceError) return e;
  const payload = e !== null && typeof e === "object" ? /** @type {any} */ (e).payload : undefined;
  if (payload !== null && typeof payload === "object" && Object.prototype.hasOwnProperty.call(ERROR_CLASS, payload.tag)) {
    return fromWitError(payload);
  }
  return e;
}

/**
 * Wraps a `handle` function so that a `ServiceError` it throws becomes its JSON answer
 * (`error.response()`) instead of a trap; any other exception still traps (the host answers
 * a clean 500 and logs it).
 *
 *     export default { handle: catchServiceErrors((request) => { ... }) };
 *
 * @template {any[]} A
 * @param {(...args: A) => Reply | Promise<Reply>} handle
 * @returns {(...args: A) => Reply | Promise<Reply>}
 */
export function catchServiceErrors(handle) {
  /** @this {any} @param {A} args */
  return function (...args) {
    const onError = (/** @type {unknown} */ e) => {
      if (e instanceof ServiceError) return e.response();
      throw e;
    };
    let result;
    try {
      result = handle.apply(this, args);
    } catch (e) {
      return onError(e);
    }
    if (result !== null && typeof result === "object" && typeof (/** @type {any} */ (result).then) === "function") {
      return /** @type {Promise<Reply>} */ (result).then((r) => r, onError);
    }
    return result;
  };
}

// ---------------------------------------------------------------------------------------
// Bytes, UTF-8 and URLs
// ---------------------------------------------------------------------------------------

const ENCODER = new TextEncoder();
// `ignoreBOM` keeps a leading U+FEFF as text, as the Rust and Python SDKs do (a JSON body
// starting with one is then invalid everywhere, not only outside JavaScript).
const LOSSY_DECODER = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * Encodes text as UTF-8 (`string`), or returns the bytes (`Uint8Array`, other views,
 * `ArrayBuffer`) as a `Uint8Array`.
 * @param {string | Uint8Array | ArrayBuffer | ArrayBufferView} value
 * @param {string} [what] what the value is, for the error message
 * @returns {Uint8Array}
 */
export function toBytes(value, what = "value") {
  if (typeof value === "string") return ENCODER.encode(value);
  if (value instanceof Uint8Array) return value;
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  throw new TypeError(`${what} must be a string or a Uint8Array, not ${describe(value)}`);
}

/**
 * Decodes UTF-8 bytes strictly: malformed UTF-8 throws `Invalid`.
 * @param {Uint8Array} bytes
 * @param {string} [what] what the bytes are, for the error message
 * @returns {string}
 */
export function decodeUtf8(bytes, what = "the bytes") {
  const i = invalidUtf8At(bytes);
  if (i >= 0) throw new Invalid(`${what} is not valid UTF-8 (byte ${i})`);
  return LOSSY_DECODER.decode(bytes);
}

/**
 * The index of the first byte of the first malformed UTF-8 sequence, or -1 if it is valid.
 * @param {Uint8Array} b
 * @returns {number}
 */
function invalidUtf8At(b) {
  const n = b.length;
  let i = 0;
  while (i < n) {
    const c = b[i];
    if (c < 0x80) {
      i += 1;
      continue;
    }
    let len;
    let min;
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
      min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      min = 0x10000;
    } else {
      return i;
    }
    if (i + len > n) return i;
    let cp = c & (0xff >> (len + 1));
    for (let k = 1; k < len; k++) {
      const d = b[i + k];
      if ((d & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += len;
  }
  return -1;
}

/**
 * @param {number} c a byte
 * @returns {number} its hex digit value, or -1
 */
function hexValue(c) {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/**
 * Percent-decodes `s` into UTF-8 text, leniently as browsers do: a `%` not followed by two hex
 * digits is kept, bytes that are not valid UTF-8 become U+FFFD.
 * @param {string} s
 * @param {boolean} plusAsSpace whether `+` means a space
 * @returns {string}
 */
function decodeComponent(s, plusAsSpace) {
  if (s.indexOf("%") < 0 && !(plusAsSpace && s.indexOf("+") >= 0)) return s;
  const input = ENCODER.encode(s);
  const out = new Uint8Array(input.length);
  let o = 0;
  for (let i = 0; i < input.length; i++) {
    const c = input[i];
    if (c === 0x25 && i + 2 < input.length) {
      const hi = hexValue(input[i + 1]);
      const lo = hexValue(input[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out[o++] = (hi << 4) | lo;
        i += 2;
        continue;
      }
      out[o++] = c;
    } else if (c === 0x2b && plusAsSpace) {
      out[o++] = 0x20;
    } else {
      out[o++] = c;
    }
  }
  return LOSSY_DECODER.decode(out.subarray(0, o));
}

const HEX = "0123456789ABCDEF";

/**
 * Percent-encoding helpers for query strings, form bodies and path segments. Decoding is
 * lenient: a `%` not followed by two hex digits is kept, invalid UTF-8 becomes U+FFFD.
 */
export const url = Object.freeze({
  /**
   * Decodes a percent-encoded string (`%41` gives `A`); `+` is kept (path segments).
   * @param {string} s
   * @returns {string}
   */
  decode(s) {
    return decodeComponent(String(s), false);
  },
  /**
   * Decodes one component of a query string or form body: `+` is a space, then
   * percent-escapes are decoded as UTF-8.
   * @param {string} s
   * @returns {string}
   */
  decodeQueryComponent(s) {
    return decodeComponent(String(s), true);
  },
  /**
   * Percent-encodes everything but ASCII letters, digits and `-._~` (for a path segment or a
   * query component).
   * @param {string} s
   * @returns {string}
   */
  encode(s) {
    const bytes = ENCODER.encode(String(s));
    let out = "";
    for (const b of bytes) {
      if ((b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e) {
        out += String.fromCharCode(b);
      } else {
        out += "%" + HEX[b >> 4] + HEX[b & 15];
      }
    }
    return out;
  },
  /**
   * Parses `application/x-www-form-urlencoded` text (a query string or a form body) into
   * decoded `[name, value]` pairs, in order: pairs split on `&`, empty pairs skipped, a pair
   * without `=` has an empty value, `+` is a space.
   * @param {string} s
   * @returns {Array<[string, string]>}
   */
  parseQuery(s) {
    /** @type {Array<[string, string]>} */
    const pairs = [];
    for (const part of String(s).split("&")) {
      if (part === "") continue;
      const eq = part.indexOf("=");
      const name = eq < 0 ? part : part.slice(0, eq);
      const value = eq < 0 ? "" : part.slice(eq + 1);
      pairs.push([decodeComponent(name, true), decodeComponent(value, true)]);
    }
    return pairs;
  },
  /**
   * Builds a query string from pairs or an object (values `null`/`undefined` skipped).
   * @param {Iterable<[string, unknown]> | Record<string, unknown>} params
   * @returns {string} without the leading `?`
   */
  formatQuery(params) {
    const entries = isIterable(params) ? Array.from(/** @type {Iterable<[string, unknown]>} */ (params)) : Object.entries(params);
    return entries
      .filter(([, v]) => v !== undefined && v !== null)
      .map(([k, v]) => `${url.encode(k)}=${url.encode(String(v))}`)
      .join("&");
  },
});

// ---------------------------------------------------------------------------------------
// Limits and JSON
// ---------------------------------------------------------------------------------------

/**
 * The limits of the SDK's request-body parsers, the same in the JavaScript, Rust and Python
 * SDKs (`docs/plugin-guide.md`, "Request bodies and their limits"). A body over a limit is
 * refused with `Invalid`, whose message names the limit, before it is decoded.
 */
export const limits = Object.freeze({
  /** The deepest nesting of arrays and objects in a JSON body or event payload (`[]` is 1). */
  MAX_JSON_DEPTH: 64,
  /** The most fields of an `application/x-www-form-urlencoded` body (empty pairs do not count). */
  MAX_FORM_FIELDS: 1000,
  /** The most parts of a `multipart/form-data` body. */
  MAX_MULTIPART_PARTS: 1000,
});

// A JSON string, or the rest of the text after a quote that is never closed: the pattern
// matches wherever a quote starts, so the scan reads each character once (no retry at the
// escaped quotes inside, which would be quadratic).
const JSON_STRING = /"[^"\\]*(?:\\[\s\S][^"\\]*)*(?:"|\\?$)/g;
const NOT_BRACKET = /[^[\]{}]+/g;
// Where a number may exceed a double (an exponent, or 309 digits in a row) and where a
// `\u` escape may leave a lone surrogate: only then does the parse check every value.
const MAYBE_HUGE_NUMBER = /[0-9][eE]|(?<![0-9])[0-9]{309}/;
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The depth limit of data the plugin stored itself: serde_json's (the Rust SDK reads no
 * deeper, and the host's store checks documents with it on the way in). */
const STORED_JSON_DEPTH = 127;

/**
 * Whether `text` nests arrays and objects deeper than `max`, without recursing and in
 * whole-string operations. Brackets inside strings are text. Each pass of
 * `replaceAll` removes the innermost `[]` pairs, one level of every branch: a balanced
 * document of depth d takes d passes. What no pass removes (`]]…[[…`, a truncated or
 * malformed text) is added as depth, so the answer never under-counts what a parser would
 * descend into before it fails; for valid JSON it is exact.
 * @param {string} text
 * @param {number} max
 * @returns {boolean}
 */
function jsonTooDeep(text, max) {
  let brackets = 0;
  for (const open of ["[", "{"]) {
    for (let i = text.indexOf(open); i >= 0 && brackets <= max; i = text.indexOf(open, i + 1)) brackets++;
  }
  if (brackets <= max) return false;
  let s = text.indexOf('"') >= 0 ? text.replace(JSON_STRING, "") : text;
  s = s.replace(NOT_BRACKET, "").replaceAll("{", "[").replaceAll("}", "]");
  let passes = 0;
  while (s.includes("[]")) {
    passes++;
    if (passes > max) return true;
    s = s.replaceAll("[]", "");
  }
  const firstOpen = s.indexOf("[");
  return passes + (firstOpen < 0 ? 0 : s.length - firstOpen) > max;
}

/**
 * A `JSON.parse` reviver refusing what serde_json refuses and `JSON.parse` lets through:
 * numbers beyond the range of a double (`1e400` gives `Infinity`) and strings or names with a
 * lone surrogate (`"\ud800"`).
 * @param {string} key
 * @param {unknown} value
 * @returns {unknown}
 */
function strictJsonValue(key, value) {
  if (typeof value === "number" && !Number.isFinite(value)) throw new JsonProblem("a number is out of the range of a double");
  if ((typeof value === "string" && LONE_SURROGATE.test(value)) || LONE_SURROGATE.test(key)) {
    throw new JsonProblem("a \\u escape is a lone surrogate");
  }
  return value;
}

/** What `strictJsonValue` throws, to tell it from the reviver's other errors. */
class JsonProblem extends Error {}

/**
 * Parses JSON text as the three SDKs do; `Invalid` names `what` and says why not. `maxDepth`
 * is `limits.MAX_JSON_DEPTH` for what comes from outside the plugin, `STORED_JSON_DEPTH` for
 * what it stored itself.
 * @param {string} text
 * @param {string} what
 * @param {number} [maxDepth]
 * @returns {any}
 */
function parseJson(text, what, maxDepth = limits.MAX_JSON_DEPTH) {
  if (jsonTooDeep(text, maxDepth)) {
    throw new Invalid(`${what} is JSON nested deeper than ${maxDepth} levels (the SDK's limit)`);
  }
  const strict = MAYBE_HUGE_NUMBER.test(text) || SURROGATE_ESCAPE.test(text);
  try {
    return strict ? JSON.parse(text, strictJsonValue) : JSON.parse(text);
  } catch (e) {
    if (e instanceof SyntaxError || e instanceof JsonProblem) throw new Invalid(`${what} is not valid JSON: ${e.message}`);
    // The engine's own limits: "too much recursion" (an InternalError in SpiderMonkey) on
    // data deeper than its stack, "out of memory".
    throw new Invalid(`${what} could not be parsed as JSON: ${errorMessage(e)}`);
  }
}

/**
 * An object from pairs, the first occurrence of a name winning (`__proto__` is an ordinary
 * key).
 * @param {Array<[string, string]>} pairs
 * @returns {Record<string, string>}
 */
function firstWins(pairs) {
  /** @type {Record<string, string>} */
  const out = {};
  for (const [name, value] of pairs) {
    if (!Object.prototype.hasOwnProperty.call(out, name)) {
      Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// multipart/form-data
// ---------------------------------------------------------------------------------------

/** One part of a `multipart/form-data` body: a form field, or a file when it has a `filename`. */
export class Part {
  /**
   * @param {string} name the form control's name
   * @param {string | null} filename the file's name as the browser sent it (last path component)
   * @param {string | null} contentType the part's declared `Content-Type`
   * @param {Uint8Array} data the content, exactly as sent
   */
  constructor(name, filename, contentType, data) {
    /** The form control's name. */
    this.name = name;
    /** The file's name (last path component), for file parts; otherwise null. */
    this.filename = filename;
    /** The part's declared `Content-Type`, or null. */
    this.contentType = contentType;
    /** The content, exactly as sent. */
    this.data = data;
  }

  /** Whether this part is a file input with a file chosen. */
  get isFile() {
    return this.filename !== null && this.filename !== "";
  }

  /**
   * The content as UTF-8 text, or null if it is not UTF-8.
   * @returns {string | null}
   */
  text() {
    return invalidUtf8At(this.data) < 0 ? LOSSY_DECODER.decode(this.data) : null;
  }
}

// A quoted parameter value: only `\"` and `\\` are escapes (browsers send Windows paths with
// bare backslashes). Each alternative starts differently, so the scan never backtracks.
const QUOTED_VALUE = /"((?:[^"\\]+|\\["\\]|\\(?!["\\]))*)(?:"|$)/y;

/**
 * `key=value; key="quoted \"value\""` parameters of a header value, in order.
 * @param {string} s
 * @returns {Array<[string, string]>}
 */
function headerParams(s) {
  /** @type {Array<[string, string]>} */
  const out = [];
  const n = s.length;
  let i = 0;
  for (;;) {
    while (i < n && (s[i] === ";" || /\s/.test(s[i]))) i++;
    const eq = s.indexOf("=", i);
    if (eq < 0) return out;
    const key = s.slice(i, eq).trim();
    if (key === "") return out;
    i = eq + 1;
    QUOTED_VALUE.lastIndex = i;
    const quoted = QUOTED_VALUE.exec(s);
    if (quoted !== null) {
      out.push([key, quoted[1].replace(/\\(["\\])/g, "$1")]);
      const end = s.indexOf(";", QUOTED_VALUE.lastIndex);
      i = end < 0 ? n : end;
    } else {
      const end = s.indexOf(";", i) < 0 ? n : s.indexOf(";", i);
      out.push([key, s.slice(i, end).trim()]);
      i = end;
    }
  }
}

/**
 * Where `needle` first occurs in `haystack` at or after `from`, or -1.
 * @param {Uint8Array} haystack
 * @param {Uint8Array} needle (not empty)
 * @param {number} from
 * @returns {number}
 */
function indexOfBytes(haystack, needle, from) {
  const last = haystack.length - needle.length;
  for (let i = haystack.indexOf(needle[0], from); i >= 0 && i <= last; i = haystack.indexOf(needle[0], i + 1)) {
    let k = 1;
    while (k < needle.length && haystack[i + k] === needle[k]) k++;
    if (k === needle.length) return i;
  }
  return -1;
}

/**
 * @param {Uint8Array} b
 * @param {Uint8Array} prefix
 * @param {number} at
 * @returns {boolean}
 */
function startsWithAt(b, prefix, at) {
  if (at + prefix.length > b.length) return false;
  for (let k = 0; k < prefix.length; k++) if (b[at + k] !== prefix[k]) return false;
  return true;
}

const CRLF = ENCODER.encode("\r\n");
const CRLFCRLF = ENCODER.encode("\r\n\r\n");
const DASHES = ENCODER.encode("--");

/**
 * One part from its header block and content.
 * @param {string} headers
 * @param {Uint8Array} data
 * @returns {Part}
 */
function multipartPart(headers, data) {
  /** @type {string | null} */ let name = null;
  /** @type {string | null} */ let filename = null;
  /** @type {string | null} */ let filenameStar = null;
  /** @type {string | null} */ let contentType = null;
  for (const line of headers.split("\r\n")) {
    if (line === "") continue;
    const colon = line.indexOf(":");
    if (colon < 0) throw new Invalid(`multipart body: malformed part header ${JSON.stringify(line)}`);
    const key = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1);
    if (key === "content-disposition") {
      const semi = value.indexOf(";");
      const kind = (semi < 0 ? value : value.slice(0, semi)).trim();
      if (kind.toLowerCase() !== "form-data") {
        throw new Invalid(`multipart body: part disposition is ${JSON.stringify(kind)}, not form-data`);
      }
      for (const [k, v] of headerParams(semi < 0 ? "" : value.slice(semi + 1))) {
        const lower = k.toLowerCase();
        if (lower === "name") name = v;
        else if (lower === "filename") filename = v;
        else if (lower === "filename*") {
          // RFC 8187: UTF-8''%e2%82%ac.txt
          const pieces = v.split("'");
          filenameStar = pieces.length >= 3 && pieces[0].toLowerCase() === "utf-8" ? url.decode(pieces.slice(2).join("'")) : null;
        }
      }
    } else if (key === "content-type") {
      contentType = value.trim();
    }
  }
  if (name === null) throw new Invalid("multipart body: a part has no name");
  let chosen = filenameStar !== null ? filenameStar : filename;
  // Keep the last path component: old browsers sent C:\Users\...\photo.jpg.
  if (chosen !== null) chosen = chosen.replaceAll("\\", "/").split("/").pop() ?? "";
  return new Part(name, chosen, contentType, data);
}

/** A small `multipart/form-data` parser (RFC 7578), as in the Rust and Python SDKs. */
export const multipart = Object.freeze({
  /**
   * The `boundary` parameter of a `multipart/form-data` content type, or null.
   * @param {string} contentType
   * @returns {string | null}
   */
  boundary(contentType) {
    const text = String(contentType);
    const semi = text.indexOf(";");
    const essence = (semi < 0 ? text : text.slice(0, semi)).trim().toLowerCase();
    if (essence !== "multipart/form-data" || semi < 0) return null;
    for (const [k, v] of headerParams(text.slice(semi + 1))) {
      if (k.toLowerCase() === "boundary" && v.length > 0 && v.length <= 70) return v;
    }
    return null;
  },
  /**
   * Parses a `multipart/form-data` body into its parts, in order; `Invalid` says what is
   * wrong, including a body of more than `limits.MAX_MULTIPART_PARTS` parts.
   * @param {string} contentType
   * @param {string | Uint8Array} bytes the body (text is taken as UTF-8)
   * @returns {Part[]}
   */
  parse(contentType, bytes) {
    const body = toBytes(bytes, "the body");
    const b = multipart.boundary(contentType);
    if (b === null) throw new Invalid("multipart body: the content type is not multipart/form-data with a boundary");
    const delimiter = ENCODER.encode("--" + b);
    const nextDelimiter = ENCODER.encode("\r\n--" + b);
    let pos;
    if (startsWithAt(body, delimiter, 0)) {
      pos = delimiter.length;
    } else {
      const found = indexOfBytes(body, nextDelimiter, 0);
      if (found < 0) throw new Invalid("multipart body: no boundary found");
      pos = found + nextDelimiter.length;
    }
    /** @type {Part[]} */
    const parts = [];
    for (;;) {
      if (startsWithAt(body, DASHES, pos)) return parts;
      while (pos < body.length && (body[pos] === 0x20 || body[pos] === 0x09)) pos++;
      if (!startsWithAt(body, CRLF, pos)) throw new Invalid("multipart body: a boundary line is not followed by a line break");
      pos += 2;
      // The headers end with an empty line; a part without headers starts with it.
      let headersEnd = pos;
      let dataStart = pos + 2;
      if (!startsWithAt(body, CRLF, pos)) {
        headersEnd = indexOfBytes(body, CRLFCRLF, pos);
        if (headersEnd < 0) throw new Invalid("multipart body: a part's headers do not end");
        dataStart = headersEnd + 4;
      }
      const headerBytes = body.subarray(pos, headersEnd);
      if (invalidUtf8At(headerBytes) >= 0) throw new Invalid("multipart body: a part's headers are not UTF-8");
      const dataEnd = indexOfBytes(body, nextDelimiter, dataStart);
      if (dataEnd < 0) throw new Invalid("multipart body: a part does not end with the boundary (truncated body?)");
      if (parts.length === limits.MAX_MULTIPART_PARTS) {
        throw new Invalid(`multipart body: more than ${limits.MAX_MULTIPART_PARTS} parts (the SDK's limit)`);
      }
      parts.push(multipartPart(LOSSY_DECODER.decode(headerBytes), body.slice(dataStart, dataEnd)));
      pos = dataEnd + nextDelimiter.length;
    }
  },
});

// ---------------------------------------------------------------------------------------
// HTML
// ---------------------------------------------------------------------------------------

/**
 * Escapes text for HTML element content and quoted attribute values: `& < > " '` become
 * character references. Escape everything that does not come from the plugin's own code.
 * @param {unknown} text (converted with `String`)
 * @returns {string}
 */
export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) =>
    c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : c === '"' ? "&quot;" : "&#39;",
  );
}

/** HTML that is already safe: `html` templates do not escape it again. */
export class SafeHtml {
  /** @param {string} html */
  constructor(html) {
    /** The HTML text. */
    this.html = String(html);
  }
  /** @returns {string} */
  toString() {
    return this.html;
  }
}

/**
 * @param {unknown} value
 * @returns {string}
 */
function htmlPiece(value) {
  if (value === null || value === undefined || value === false) return "";
  if (value instanceof SafeHtml) return value.html;
  if (Array.isArray(value)) return value.map(htmlPiece).join("");
  return escapeHtml(value);
}

/**
 * A tagged template that escapes every interpolated value, except `SafeHtml` (other `html`
 * templates, `rawHtml`); arrays are joined, `null`, `undefined` and `false` give nothing.
 *
 *     html`<li><a href="${link}">${name}</a></li>`
 *
 * @param {TemplateStringsArray} strings
 * @param {...unknown} values
 * @returns {SafeHtml}
 */
export function html(strings, ...values) {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += htmlPiece(values[i]) + strings[i + 1];
  return new SafeHtml(out);
}

/**
 * Marks trusted HTML as safe, for `html` templates. Never use it on request data.
 * @param {string} text
 * @returns {SafeHtml}
 */
export function rawHtml(text) {
  return new SafeHtml(text);
}

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

/** The signed-in person making a request, as the host knows them. */
export class User {
  /**
   * @param {{id: string, login: string, displayName: string, roles?: string[], rights?: string[]}} user
   */
  constructor(user) {
    /** Stable identifier of the account. */
    this.id = String(user.id);
    /** Login name. */
    this.login = String(user.login);
    /** Name to show. */
    this.displayName = String(user.displayName);
    /** Back-office roles held (`agent`, `admin`). @type {string[]} */
    this.roles = Array.from(user.roles ?? [], String);
    /** Rights held on this plugin (names the plugin defines). @type {string[]} */
    this.rights = Array.from(user.rights ?? [], String);
  }
  /**
   * @param {string} role
   * @returns {boolean} whether the user holds this role
   */
  hasRole(role) {
    return this.roles.includes(role);
  }
  /**
   * @param {string} right
   * @returns {boolean} whether the user holds this right on the plugin
   */
  hasRight(right) {
    return this.rights.includes(right);
  }
}

/**
 * An HTTP request routed to the plugin. The host strips the mount from the path
 * (`/p/hello/a/b` arrives as `/a/b`), lower-cases header names and removes hop-by-hop,
 * cookie and credential headers.
 *
 * For unit tests, build one by hand: `new Request({ method: "POST", path: "/x", body: "a=1" })`
 * (defaults: `GET /`, no query, headers, body or user, locale `fr-FR`, mount `/p/test`,
 * request id `test`).
 */
export class Request {
  /**
   * @param {{method?: string, path?: string, query?: string,
   *   headers?: Array<[string, string]> | Record<string, string>,
   *   body?: string | Uint8Array, user?: User | {id: string, login: string, displayName: string, roles?: string[], rights?: string[]} | null,
   *   locale?: string, mount?: string, requestId?: string}} [init]
   *   the WIT `request` record, or parts of it
   */
  constructor(init = {}) {
    const path = init.path === undefined ? "/" : String(init.path);
    /** Method in upper case: `GET`, `POST`... */
    this.method = (init.method === undefined ? "GET" : String(init.method)).toUpperCase();
    /** Path below the mount, starting with `/`, still percent-encoded. */
    this.path = path.startsWith("/") ? path : "/" + path;
    /** Raw query string without the `?` (may be empty). */
    this.query = init.query === undefined ? "" : String(init.query);
    /** Headers as `[name, value]` pairs, names in lower case. @type {Array<[string, string]>} */
    this.headers = headerList(init.headers);
    /** The body bytes. @type {Uint8Array} */
    this.body = init.body === undefined || init.body === null ? new Uint8Array(0) : toBytes(init.body, "the body");
    /** The signed-in user, or null. @type {User | null} */
    this.user = init.user === undefined || init.user === null ? null : init.user instanceof User ? init.user : new User(init.user);
    /** Preferred locale of the visitor, a BCP 47 tag (`fr-FR`). */
    this.locale = init.locale === undefined ? "fr-FR" : String(init.locale);
    /** Absolute path where the plugin is mounted (`/p/hello`), to build links. */
    this.mount = init.mount === undefined ? "/p/test" : String(init.mount);
    /** Identifier of this request, also in the host's logs. */
    this.requestId = init.requestId === undefined ? "test" : String(init.requestId);
  }

  /** @type {string[] | undefined} */
  #segments = undefined;
  /** @type {Array<[string, string]> | undefined} */
  #queryParams = undefined;

  /**
   * The path's non-empty segments, percent-decoded (`%2F` gives `/` inside a segment):
   * `[]` for `/`, `["entries", "a b"]` for `/entries/a%20b`.
   * @returns {string[]}
   */
  get segments() {
    if (this.#segments === undefined) {
      this.#segments = this.path.split("/").filter((s) => s !== "").map((s) => decodeComponent(s, false));
    }
    return this.#segments.slice();
  }

  /**
   * The query's `[name, value]` pairs, decoded as `application/x-www-form-urlencoded`.
   * @returns {Array<[string, string]>}
   */
  get queryParams() {
    if (this.#queryParams === undefined) this.#queryParams = url.parseQuery(this.query);
    return this.#queryParams.map(([k, v]) => /** @type {[string, string]} */ ([k, v]));
  }

  /**
   * The first value of a query parameter, or null.
   * @param {string} name
   * @returns {string | null}
   */
  queryParam(name) {
    if (this.#queryParams === undefined) this.#queryParams = url.parseQuery(this.query);
    const found = this.#queryParams.find(([n]) => n === name);
    return found ? found[1] : null;
  }

  /**
   * The query as an object, the first occurrence of a repeated name winning.
   * @returns {Record<string, string>}
   */
  queryObject() {
    return firstWins(this.queryParams);
  }

  /**
   * The value of the first header with this name (case-insensitive), or null.
   * @param {string} name
   * @returns {string | null}
   */
  header(name) {
    const lower = String(name).toLowerCase();
    const found = this.headers.find(([n]) => n.toLowerCase() === lower);
    return found ? found[1] : null;
  }

  /**
   * The body as UTF-8 text; `Invalid` if it is not UTF-8.
   * @returns {string}
   */
  text() {
    return decodeUtf8(this.body, "the request body");
  }

  /**
   * The body parsed as JSON; `Invalid` if it is not UTF-8 or not JSON. As in the Rust and
   * Python SDKs, a body nested deeper than `limits.MAX_JSON_DEPTH` levels is refused before it
   * is parsed, and numbers beyond the range of a double and lone surrogate escapes (`"\\ud800"`)
   * are invalid.
   * @returns {any}
   */
  json() {
    return parseJson(this.text(), "the request body");
  }

  /**
   * The body decoded as `application/x-www-form-urlencoded` `[name, value]` pairs, in order.
   * `Invalid` if the request has another content type, the body is not UTF-8 or it has more
   * than `limits.MAX_FORM_FIELDS` fields. Malformed percent-escapes are decoded leniently, as
   * browsers do (see `url`).
   * @returns {Array<[string, string]>}
   */
  form() {
    const contentType = this.header("content-type");
    if (contentType !== null) {
      const essence = contentType.split(";")[0].trim().toLowerCase();
      if (essence !== "application/x-www-form-urlencoded") {
        throw new Invalid(`expected an application/x-www-form-urlencoded body, got ${contentType}`);
      }
    }
    const text = this.text();
    // Counted before anything is decoded, and only up to one past the limit.
    const max = limits.MAX_FORM_FIELDS;
    let fields = 0;
    const field = /[^&]+/g;
    while (fields <= max && field.exec(text) !== null) fields++;
    if (fields > max) throw new Invalid(`the request body is a form of more than ${max} fields (the SDK's limit)`);
    return url.parseQuery(text);
  }

  /**
   * The form body as an object, the first occurrence of a repeated field winning.
   * @returns {Record<string, string>}
   */
  formObject() {
    return firstWins(this.form());
  }

  /**
   * The parts of a `multipart/form-data` body (a form with file inputs), in order; `Invalid`
   * if it is not one, is malformed or has more than `limits.MAX_MULTIPART_PARTS` parts.
   * @returns {Part[]}
   */
  multipart() {
    const contentType = this.header("content-type");
    if (contentType === null) throw new Invalid("the request has no content-type");
    return multipart.parse(contentType, this.body);
  }

  /**
   * An absolute link to a path of the plugin: `request.link("/entries/7")` gives
   * `/p/directory/entries/7`.
   * @param {string} path
   * @returns {string}
   */
  link(path) {
    return this.mount.replace(/\/+$/, "") + "/" + String(path).replace(/^\/+/, "");
  }
}

// ---------------------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------------------

/**
 * Headers as lower-cased `[name, value]` pairs, from pairs or an object.
 * @param {Iterable<[string, string]> | Record<string, string> | undefined | null} headers
 * @returns {Array<[string, string]>}
 */
function headerList(headers) {
  if (headers === undefined || headers === null) return [];
  const entries = isIterable(headers) ? Array.from(/** @type {Iterable<[string, string]>} */ (headers)) : Object.entries(headers);
  return entries.map((pair) => {
    if (!Array.isArray(pair) || pair.length !== 2) throw new TypeError("a header must be a [name, value] pair");
    return /** @type {[string, string]} */ ([String(pair[0]).toLowerCase(), String(pair[1])]);
  });
}

/**
 * Sets a header in place, replacing any with the same name.
 * @param {Array<[string, string]>} headers
 * @param {string} name
 * @param {string} value
 */
function setHeader(headers, name, value) {
  const lower = String(name).toLowerCase();
  for (let i = headers.length - 1; i >= 0; i--) if (headers[i][0] === lower) headers.splice(i, 1);
  headers.push([lower, String(value)]);
}

/**
 * A page: the host wraps `body` (an HTML fragment, sanitised by the host) in the site layout,
 * with `title` (plain text) in the heading and the browser tab.
 *
 *     new Page("Annuaire", html`<p>${count} entries</p>`, { status: 200, headers: { "cache-control": "no-store" } })
 */
export class Page {
  /**
   * @param {string} title plain text (the host escapes it)
   * @param {string | SafeHtml} body an HTML fragment: escape untrusted text
   * @param {{status?: number, headers?: Array<[string, string]> | Record<string, string>}} [options]
   */
  constructor(title, body, options = {}) {
    /** HTTP status, 200 by default. */
    this.status = checkStatus(options.status === undefined ? 200 : options.status);
    /** Plain-text title. */
    this.title = String(title);
    /** HTML fragment. */
    this.body = body === undefined || body === null ? "" : String(body);
    /** Extra response headers, lower-cased `[name, value]` pairs. @type {Array<[string, string]>} */
    this.headers = headerList(options.headers);
  }

  /**
   * Sets a header, replacing any with the same name; returns the page.
   * @param {string} name
   * @param {string} value
   * @returns {this}
   */
  header(name, value) {
    setHeader(this.headers, name, value);
    return this;
  }
}

/**
 * A raw HTTP response, sent as is (JSON APIs, files, redirects).
 *
 *     new Response(201, JSON.stringify({ id }), { "content-type": "application/json" })
 *     Response.json({ id }, 201).header("location", request.link(`/api/items/${id}`))
 */
export class Response {
  /**
   * @param {number} [status] 100-599, 200 by default
   * @param {string | Uint8Array | null} [body] text (sent as UTF-8) or bytes
   * @param {Array<[string, string]> | Record<string, string>} [headers]
   */
  constructor(status = 200, body = null, headers = undefined) {
    /** HTTP status. */
    this.status = checkStatus(status);
    /** Response headers, lower-cased `[name, value]` pairs. @type {Array<[string, string]>} */
    this.headers = headerList(headers);
    /** Response body. @type {Uint8Array} */
    this.body = body === undefined || body === null ? new Uint8Array(0) : toBytes(body, "the response body");
  }

  /**
   * `value` as JSON (`content-type: application/json`). A value JSON cannot represent (a
   * BigInt, a cycle) gives a 500 whose JSON body says why.
   * @param {unknown} value
   * @param {number} [status]
   * @returns {Response}
   */
  static json(value, status = 200) {
    let text;
    try {
      text = JSON.stringify(value);
    } catch (e) {
      return new Response(500, JSON.stringify({ error: "serialization", message: `could not serialize the response: ${errorMessage(e)}` }), [["content-type", "application/json"]]);
    }
    if (text === undefined) text = "null";
    return new Response(status, text, [["content-type", "application/json"]]);
  }

  /**
   * Plain text (`text/plain; charset=utf-8`).
   * @param {string} text
   * @param {number} [status]
   * @returns {Response}
   */
  static text(text, status = 200) {
    return new Response(status, String(text), [["content-type", "text/plain; charset=utf-8"]]);
  }

  /**
   * A complete HTML document (`text/html; charset=utf-8`), sent without the site layout; use a
   * `Page` to get the layout.
   * @param {string | SafeHtml} html
   * @param {number} [status]
   * @returns {Response}
   */
  static html(html, status = 200) {
    return new Response(status, String(html), [["content-type", "text/html; charset=utf-8"]]);
  }

  /**
   * A redirect, `303 See Other` by default (the answer to a form post).
   * @param {string} location build it with `request.link(...)`
   * @param {number} [status]
   * @returns {Response}
   */
  static redirect(location, status = 303) {
    return new Response(status, null, [["location", String(location)]]);
  }

  /**
   * A plain-text `404 Not Found`.
   * @returns {Response}
   */
  static notFound() {
    return Response.text("Not found", 404);
  }

  /**
   * Sets a header, replacing any with the same name; returns the response.
   * @param {string} name
   * @param {string} value
   * @returns {this}
   */
  header(name, value) {
    setHeader(this.headers, name, value);
    return this;
  }

  /**
   * Adds a header, keeping any with the same name; returns the response.
   * @param {string} name
   * @param {string} value
   * @returns {this}
   */
  appendHeader(name, value) {
    this.headers.push([String(name).toLowerCase(), String(value)]);
    return this;
  }

  /**
   * The body as text (lossy UTF-8), handy in tests.
   * @returns {string}
   */
  text() {
    return LOSSY_DECODER.decode(this.body);
  }
}

/**
 * @param {unknown} status
 * @returns {number}
 */
function checkStatus(status) {
  if (typeof status !== "number" || !Number.isInteger(status) || status < 100 || status > 599) {
    throw new RangeError(`an HTTP status must be an integer 100-599, not ${describe(status)}`);
  }
  return status;
}

/**
 * What `handle` returned, as the WIT `reply` variant.
 * @param {unknown} reply
 * @returns {{tag: "page", val: object} | {tag: "response", val: object}}
 */
function toWitReply(reply) {
  if (reply instanceof Page) {
    return { tag: "page", val: { status: reply.status, title: reply.title, body: reply.body, headers: reply.headers } };
  }
  if (reply instanceof ServiceError) reply = reply.response();
  if (reply instanceof Response) {
    return { tag: "response", val: { status: reply.status, headers: reply.headers, body: reply.body } };
  }
  throw new TypeError(`handle(request) must return a Page or a Response (or a ServiceError), not ${describe(reply)}`);
}

// ---------------------------------------------------------------------------------------
// Events and jobs
// ---------------------------------------------------------------------------------------

/** An event delivered to `onEvent`. */
export class Event {
  /**
   * @param {{id: string, topic: string, publisher: string, payload: string, publishedAt: number | bigint, attempt: number}} e
   */
  constructor(e) {
    /** Unique id, the same on every delivery attempt (use it to ignore duplicates). */
    this.id = String(e.id);
    /** Topic it was published on. */
    this.topic = String(e.topic);
    /** Id of the publishing plugin. */
    this.publisher = String(e.publisher);
    /** The payload, JSON text. */
    this.payload = String(e.payload);
    /** When it was published, milliseconds since the Unix epoch. */
    this.publishedAt = Number(e.publishedAt);
    /** 1 on the first delivery, more on retries. */
    this.attempt = Number(e.attempt);
  }
  /**
   * The payload parsed; `Invalid` if it is not JSON or is nested deeper than
   * `limits.MAX_JSON_DEPTH` levels (another plugin wrote it).
   * @returns {any}
   */
  json() {
    return parseJson(this.payload, "the event payload");
  }
}

/** A scheduled job run, given to `onSchedule`. */
export class Job {
  /** @param {{name: string, scheduledAt: number | bigint}} j */
  constructor(j) {
    /** The job's name, as in the manifest. */
    this.name = String(j.name);
    /** When this run was due, milliseconds since the Unix epoch. */
    this.scheduledAt = Number(j.scheduledAt);
  }
}

// ---------------------------------------------------------------------------------------
// Services
// ---------------------------------------------------------------------------------------

/** What to add to plugin.toml to get each service. */
const CAPABILITY_HINT = Object.freeze({
  kv: "add `kv = true` under [capabilities] in plugin.toml",
  store: "add a [capabilities.store] table (with max-documents and max-bytes) to plugin.toml",
  files: "add a [capabilities.files] table (max-size, max-total-bytes, content-types) to plugin.toml",
  mail: "add a [capabilities.mail] table (max-per-hour) to plugin.toml",
  events: "list the topics it publishes in [capabilities.events] publish in plugin.toml",
});

/** The WIT interfaces handed over by the build's entry module. @type {Record<string, any> | null} */
let bound = null;

/**
 * Internal: called once by the entry module the build generates, with the WIT interfaces the
 * manifest asks for (`{log, config, kv, ...}`). Not for plugins.
 * @param {Record<string, any> | null | undefined} interfaces (none: unbind, for tests)
 */
export function __bind(interfaces) {
  bound = interfaces === undefined || interfaces === null ? null : Object.assign(Object.create(null), interfaces);
}

/**
 * The bound WIT interface, or a `Denied`/`Unavailable` error saying why not.
 * @param {"log"|"config"|"kv"|"store"|"files"|"mail"|"events"} name
 * @returns {any}
 */
function wit(name) {
  if (bound === null) {
    throw new Unavailable(`the ${name} service exists only inside the Lutetia host (not in plain Node, nor at module load time, which runs at build time)`);
  }
  const iface = bound[name];
  if (iface === undefined) {
    throw new Denied(`the plugin's manifest does not ask for the ${name} capability: ${CAPABILITY_HINT[/** @type {keyof typeof CAPABILITY_HINT} */ (name)] ?? "add it to plugin.toml"}`);
  }
  return iface;
}

/**
 * Calls the host, turning a thrown WIT error into a `ServiceError`.
 * @template T
 * @param {() => T} fn
 * @returns {T}
 */
function call(fn) {
  try {
    return fn();
  } catch (e) {
    throw fromThrown(e);
  }
}

/**
 * @param {unknown} v
 * @param {string} what
 * @returns {string}
 */
function str(v, what) {
  if (typeof v !== "string") throw new TypeError(`${what} must be a string, not ${describe(v)}`);
  return v;
}

/**
 * @param {unknown} v
 * @param {string} what
 * @param {number} max
 * @returns {number}
 */
function uint(v, what, max) {
  if (typeof v === "bigint") v = Number(v);
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max) {
    throw new Invalid(`${what} must be an integer from 0 to ${max}, not ${describe(v)}`);
  }
  return v;
}

/**
 * A version or count for a u64 parameter.
 * @param {unknown} v
 * @param {string} what
 * @returns {bigint}
 */
function u64(v, what) {
  if (typeof v === "bigint") {
    if (v < 0n || v > 0xffffffffffffffffn) throw new Invalid(`${what} is out of range`);
    return v;
  }
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw new Invalid(`${what} must be a non-negative integer, not ${describe(v)}`);
  }
  return BigInt(v);
}

/**
 * `JSON.stringify` that throws `Invalid` when the value has no JSON form.
 * @param {unknown} value
 * @param {string} what
 * @returns {string}
 */
function toJson(value, what) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    throw new Invalid(`cannot serialize ${what} as JSON: ${errorMessage(e)}`);
  }
  if (text === undefined) throw new Invalid(`cannot serialize ${what} as JSON: ${describe(value)}`);
  return text;
}

/**
 * Calls `fn` (a host call with an `s64` argument) so that negative values reach the host.
 *
 * componentize-js 0.23 lowers an `s64` argument with its generated `toInt64`
 * (`BigInt.asIntN(64, v)`: a negative BigInt for a negative value), then its engine's
 * `coreabi_from_bigint64` accepts only BigInts in the unsigned range and aborts on the rest
 * (bytecodealliance/ComponentizeJS#343). While `fn` runs, the bindings' `BigInt.asIntN(64, v)`
 * gives the same 64 bits as an unsigned BigInt, which the engine passes on unchanged: the host
 * receives the right signed value. The bindings live in their own realm, so it is that realm's
 * `BigInt` (reached through the import function's own `Function` constructor) that is patched,
 * for the duration of the call only (a plugin runs one call at a time, single-threaded). The
 * result is read with `DataView.getBigInt64`, already signed.
 * @template T
 * @param {Function} hostFunction the imported function about to be called
 * @param {() => T} fn
 * @returns {T}
 */
function withUnsignedI64Lowering(hostFunction, fn) {
  let realmBigInt = BigInt;
  try {
    realmBigInt = /** @type {BigIntConstructor} */ (hostFunction.constructor("return BigInt")());
  } catch {
    // No Function constructor there: patch this realm's (the same one in tests).
  }
  const asIntN = realmBigInt.asIntN;
  realmBigInt.asIntN = (bits, value) => (bits === 64 ? realmBigInt.asUintN(64, value) : asIntN(bits, value));
  try {
    return fn();
  } finally {
    realmBigInt.asIntN = asIntN;
  }
}

/** The five log levels. */
const LEVELS = ["trace", "debug", "info", "warn", "error"];

/** Log lines, recorded by the host with the plugin's id (long ones truncated). */
export const log = Object.freeze({
  /**
   * Writes one line at `level`.
   * @param {"trace"|"debug"|"info"|"warn"|"error"} level
   * @param {unknown} message (converted with `String`)
   */
  log(level, message) {
    if (!LEVELS.includes(level)) throw new TypeError(`unknown log level ${describe(level)}`);
    const iface = wit("log");
    iface.log(level, String(message));
  },
  /** @param {unknown} message */
  trace(message) {
    log.log("trace", message);
  },
  /** @param {unknown} message */
  debug(message) {
    log.log("debug", message);
  },
  /** @param {unknown} message */
  info(message) {
    log.log("info", message);
  },
  /** @param {unknown} message */
  warn(message) {
    log.log("warn", message);
  },
  /** @param {unknown} message */
  error(message) {
    log.log("error", message);
  },
});

/** The plugin's settings: its manifest's `[config]` defaults, overridden by the operator. */
export const config = Object.freeze({
  /**
   * A setting, or null if it is not set.
   * @param {string} key
   * @returns {string | null}
   */
  get(key) {
    const value = wit("config").get(str(key, "a setting's key"));
    return value === undefined || value === null ? null : value;
  },
  /**
   * A setting, or `fallback` if it is not set.
   * @param {string} key
   * @param {string} fallback
   * @returns {string}
   */
  getOr(key, fallback) {
    const value = config.get(key);
    return value === null ? fallback : value;
  },
  /**
   * Every setting, as an object sorted by key.
   * @returns {Record<string, string>}
   */
  all() {
    return firstWins(wit("config").getAll());
  },
});

/**
 * @param {Uint8Array | undefined | null} bytes
 * @returns {Uint8Array | null}
 */
function orNull(bytes) {
  return bytes === undefined || bytes === null ? null : ownBytes(bytes);
}

/**
 * The same bytes as a Uint8Array of this realm (no copy). componentize-js creates the values it
 * returns in the bindings' own realm, where `instanceof Uint8Array` and `instanceof Array` are
 * false here: the SDK hands plugins values of their own realm.
 * @param {Uint8Array} bytes
 * @returns {Uint8Array}
 */
function ownBytes(bytes) {
  if (bytes instanceof Uint8Array) return bytes;
  const view = /** @type {ArrayBufferView} */ (bytes);
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/**
 * The plugin's private key-value store (capability `kv`). Keys are at most 512 bytes of
 * UTF-8, values at most 1 MiB.
 */
export const kv = Object.freeze({
  /**
   * The bytes stored at `key`, or null.
   * @param {string} key
   * @returns {Uint8Array | null}
   */
  get(key) {
    const iface = wit("kv");
    return orNull(call(() => iface.get(str(key, "a key"))));
  },
  /**
   * The value at `key` as UTF-8 text, or null; `Invalid` if it is not UTF-8.
   * @param {string} key
   * @returns {string | null}
   */
  getText(key) {
    const bytes = kv.get(key);
    return bytes === null ? null : decodeUtf8(bytes, `the value of ${JSON.stringify(key)}`);
  },
  /**
   * The value at `key` parsed as JSON, or null if there is none; `Invalid` if it is not JSON.
   * @param {string} key
   * @returns {any}
   */
  getJson(key) {
    const text = kv.getText(key);
    if (text === null) return null;
    return parseJson(text, `the value of ${JSON.stringify(key)}`, STORED_JSON_DEPTH);
  },
  /**
   * Stores `value` (text, stored as UTF-8, or bytes) at `key`.
   * @param {string} key
   * @param {string | Uint8Array} value
   */
  set(key, value) {
    const iface = wit("kv");
    const bytes = toBytes(value);
    call(() => iface.set(str(key, "a key"), bytes));
  },
  /**
   * Stores `value` serialised as JSON at `key`.
   * @param {string} key
   * @param {unknown} value
   */
  setJson(key, value) {
    kv.set(key, toJson(value, `the value of ${JSON.stringify(key)}`));
  },
  /**
   * Deletes the value at `key`; returns whether there was one.
   * @param {string} key
   * @returns {boolean}
   */
  delete(key) {
    const iface = wit("kv");
    return call(() => iface.delete(str(key, "a key")));
  },
  /**
   * Adds `by` (default 1, possibly negative) to the decimal integer at `key` (missing: 0) and
   * returns the new value, atomically; `Invalid` if the value is not an integer. The result is
   * a number (exact up to 2^53 - 1; use `incrementBigInt` beyond).
   * @param {string} key
   * @param {number | bigint} [by]
   * @returns {number}
   */
  increment(key, by = 1) {
    return Number(kv.incrementBigInt(key, by));
  },
  /**
   * `increment` with the exact signed 64-bit result, as a BigInt.
   * @param {string} key
   * @param {number | bigint} [by]
   * @returns {bigint}
   */
  incrementBigInt(key, by = 1) {
    const iface = wit("kv");
    let delta;
    if (typeof by === "bigint") delta = by;
    else if (typeof by === "number" && Number.isSafeInteger(by)) delta = BigInt(by);
    else throw new Invalid(`the increment must be an integer, not ${describe(by)}`);
    if (delta < -(2n ** 63n) || delta >= 2n ** 63n) throw new Invalid("the increment does not fit in 64 bits");
    const k = str(key, "a key");
    return BigInt.asIntN(64, call(() => withUnsignedI64Lowering(iface.increment, () => iface.increment(k, delta))));
  },
  /**
   * Stores `value` at `key` only if the current value is `expected` (null: absent); returns
   * whether the swap happened.
   * @param {string} key
   * @param {string | Uint8Array | null} expected
   * @param {string | Uint8Array} value
   * @returns {boolean}
   */
  compareAndSwap(key, expected, value) {
    const iface = wit("kv");
    const old = expected === null || expected === undefined ? undefined : toBytes(expected, "the expected value");
    const bytes = toBytes(value);
    return call(() => iface.compareAndSwap(str(key, "a key"), old, bytes));
  },
  /**
   * Keys starting with `prefix`, in byte order, after `startAfter` if given, at most `limit`
   * (default and host cap: 1000). Pass the last key of a page as `startAfter` for the next.
   * @param {string} [prefix]
   * @param {{startAfter?: string | null, limit?: number}} [options]
   * @returns {string[]}
   */
  listKeys(prefix = "", options = {}) {
    const iface = wit("kv");
    const startAfter = options.startAfter === undefined || options.startAfter === null ? undefined : str(options.startAfter, "startAfter");
    const limit = uint(options.limit === undefined ? 1000 : options.limit, "the limit", 0xffffffff);
    return Array.from(call(() => iface.listKeys(str(prefix, "the prefix"), startAfter, limit)), String);
  },
});

/** The comparisons a store filter may use (the WIT `comparison` cases). */
const COMPARISONS = ["eq", "ne", "lt", "lte", "gt", "gte", "in", "prefix"];

/** One condition on a document field: `store.where("age").gt(3)`. */
export class Filter {
  /**
   * @param {string} field a top-level key or a dotted path (`address.city`)
   * @param {"eq"|"ne"|"lt"|"lte"|"gt"|"gte"|"in"|"prefix"} op
   * @param {unknown} value a JSON value (an array for `in`, a string for `prefix`)
   */
  constructor(field, op, value) {
    if (!COMPARISONS.includes(op)) throw new TypeError(`unknown comparison ${describe(op)} (one of ${COMPARISONS.join(", ")})`);
    /** The field. */
    this.field = str(field, "a filter's field");
    /** The comparison. */
    this.op = op;
    /** The value, a JS value sent as JSON. */
    this.value = value;
  }
}

/** The comparisons on one field, made by `store.where(field)`. */
export class FieldCondition {
  /** @param {string} field */
  constructor(field) {
    /** The field. */
    this.field = str(field, "a filter's field");
  }
  /** Equal (JSON equality: `1` and `"1"` differ). @param {unknown} value @returns {Filter} */
  eq(value) {
    return new Filter(this.field, "eq", value);
  }
  /** Not equal (documents without the field match). @param {unknown} value @returns {Filter} */
  ne(value) {
    return new Filter(this.field, "ne", value);
  }
  /** Less than (numbers with numbers, strings with strings). @param {unknown} value @returns {Filter} */
  lt(value) {
    return new Filter(this.field, "lt", value);
  }
  /** Less than or equal. @param {unknown} value @returns {Filter} */
  lte(value) {
    return new Filter(this.field, "lte", value);
  }
  /** Greater than. @param {unknown} value @returns {Filter} */
  gt(value) {
    return new Filter(this.field, "gt", value);
  }
  /** Greater than or equal. @param {unknown} value @returns {Filter} */
  gte(value) {
    return new Filter(this.field, "gte", value);
  }
  /** Equal to one of the values (at most 100). @param {unknown[]} values @returns {Filter} */
  in(values) {
    return new Filter(this.field, "in", values);
  }
  /** A string field starting with `prefix`. @param {string} prefix @returns {Filter} */
  prefix(prefix) {
    return new Filter(this.field, "prefix", str(prefix, "a prefix"));
  }
}

/**
 * Filters as the WIT `filter` records: a Filter, a `{field, op, value}` object or a list of them.
 * @param {unknown} where
 * @returns {Array<{field: string, op: string, value: string}>}
 */
function witFilters(where) {
  if (where === undefined || where === null) return [];
  const list = Array.isArray(where) ? where : [where];
  return list.map((f) => {
    if (f === null || typeof f !== "object") throw new TypeError(`a filter must be store.where(field).op(value) or {field, op, value}, not ${describe(f)}`);
    const filter = f instanceof Filter ? f : new Filter(f.field, f.op, f.value);
    return { field: filter.field, op: filter.op, value: toJson(filter.value, `the value of the filter on ${JSON.stringify(filter.field)}`) };
  });
}

/**
 * @param {{collection: string, id: string, version: bigint, body: string}} d
 * @returns {StoredDocument}
 */
function fromWitDocument(d) {
  // The host only stores JSON objects, checked on the way in.
  const body = parseJson(d.body, `document ${JSON.stringify(d.id)} of ${JSON.stringify(d.collection)}`, STORED_JSON_DEPTH);
  return { collection: d.collection, id: d.id, version: Number(d.version), body };
}

/**
 * @typedef {object} StoredDocument
 * @property {string} collection its collection
 * @property {string} id its id, unique in the collection
 * @property {number} version 1 after the first write, plus one on each write
 * @property {any} body the document (a JSON object), parsed
 */

/**
 * @param {unknown} v
 * @returns {bigint | undefined}
 */
function optionalVersion(v) {
  return v === undefined || v === null ? undefined : u64(v, "the expected version");
}

/**
 * The plugin's private document store (capability `store`): JSON objects in collections
 * (`[a-z0-9_-]`, 1-64), each with an id and a version; filters, order, pagination, indexes,
 * transactions. Bodies are JS objects, sent as JSON (at most 1 MiB).
 */
export const store = Object.freeze({
  /**
   * The comparisons on `field`, to build a filter: `store.where("age").gt(3)`.
   * @param {string} field a top-level key or a dotted path
   * @returns {FieldCondition}
   */
  where(field) {
    return new FieldCondition(field);
  },
  /**
   * Reads a document, or null.
   * @param {string} collection
   * @param {string} id
   * @returns {StoredDocument | null}
   */
  get(collection, id) {
    const iface = wit("store");
    const d = call(() => iface.get(str(collection, "the collection"), str(id, "the id")));
    return d === undefined || d === null ? null : fromWitDocument(d);
  },
  /**
   * Creates or replaces a document; returns its new version. `expectedVersion`: `0` requires
   * that it does not exist, `n` that it is at version n (`Conflict` otherwise).
   * @param {string} collection
   * @param {string} id
   * @param {object} body a JSON object
   * @param {{expectedVersion?: number | null}} [options]
   * @returns {number}
   */
  put(collection, id, body, options = {}) {
    const iface = wit("store");
    const text = toJson(body, "the document");
    const expected = optionalVersion(options.expectedVersion);
    return Number(call(() => iface.put(str(collection, "the collection"), str(id, "the id"), text, expected)));
  },
  /**
   * Creates a document that must not exist yet (`Conflict` if it does); returns 1.
   * @param {string} collection
   * @param {string} id
   * @param {object} body
   * @returns {number}
   */
  insert(collection, id, body) {
    return store.put(collection, id, body, { expectedVersion: 0 });
  },
  /**
   * Writes `doc.body` back only if the document is still at `doc.version` (`Conflict`
   * otherwise); returns the new version.
   * @param {StoredDocument} doc as read by `get` or `find`
   * @returns {number}
   */
  update(doc) {
    return store.put(doc.collection, doc.id, doc.body, { expectedVersion: doc.version });
  },
  /**
   * Deletes a document; returns whether it existed. With `expectedVersion`, a document at
   * another version is a `Conflict`.
   * @param {string} collection
   * @param {string} id
   * @param {{expectedVersion?: number | null}} [options]
   * @returns {boolean}
   */
  delete(collection, id, options = {}) {
    const iface = wit("store");
    const expected = optionalVersion(options.expectedVersion);
    return call(() => iface.delete(str(collection, "the collection"), str(id, "the id"), expected));
  },
  /**
   * One page of the documents matching every filter, ordered by `orderBy` (ties by id) or by
   * id, at most `limit` (1-1000, default 100). Pass `nextCursor` as `cursor` for the next page.
   * @param {string} collection
   * @param {{where?: FilterLike | FilterLike[], orderBy?: string | null, descending?: boolean,
   *   limit?: number, cursor?: string | null}} [options]
   * @returns {{documents: StoredDocument[], nextCursor: string | null}}
   */
  find(collection, options = {}) {
    const iface = wit("store");
    const query = {
      collection: str(collection, "the collection"),
      filters: witFilters(options.where),
      orderBy: options.orderBy === undefined || options.orderBy === null ? undefined : str(options.orderBy, "orderBy"),
      descending: Boolean(options.descending),
      limit: uint(options.limit === undefined ? 100 : options.limit, "the limit", 0xffffffff),
      cursor: options.cursor === undefined || options.cursor === null || options.cursor === "" ? undefined : str(options.cursor, "the cursor"),
    };
    const page = call(() => iface.find(query));
    return {
      documents: Array.from(page.documents, fromWitDocument),
      nextCursor: page.nextCursor === undefined || page.nextCursor === null ? null : page.nextCursor,
    };
  },
  /**
   * How many documents of `collection` match every filter.
   * @param {string} collection
   * @param {FilterLike | FilterLike[]} [where]
   * @returns {number}
   */
  count(collection, where = []) {
    const iface = wit("store");
    const filters = witFilters(where);
    return Number(call(() => iface.count(str(collection, "the collection"), filters)));
  },
  /**
   * Declares an index on up to 4 fields (idempotent; cheap to call on every request). A
   * `unique` index makes duplicating writes a `Conflict`.
   * @param {string} collection
   * @param {string | string[]} fields
   * @param {{unique?: boolean}} [options]
   */
  ensureIndex(collection, fields, options = {}) {
    const iface = wit("store");
    const list = (Array.isArray(fields) ? fields : [fields]).map((f) => str(f, "an index field"));
    call(() => iface.ensureIndex(str(collection, "the collection"), list, Boolean(options.unique)));
  },
  /**
   * Checks every precondition, then applies every write, all or nothing (`Conflict` if a
   * precondition or version check fails: nothing is written). Returns the new version of
   * each write, in order (0 for deletes).
   *
   *     store.transaction(
   *       [store.require.absent("slots", "s-1"), store.require.countBelow("slots", [store.where("day").eq(d)], 20)],
   *       [store.write.put("slots", "s-1", { day: d }), store.write.delete("drafts", "s-1")],
   *     );
   *
   * @param {Precondition[]} preconditions
   * @param {Write[]} writes
   * @returns {number[]}
   */
  transaction(preconditions, writes) {
    const iface = wit("store");
    const pre = Array.from(preconditions ?? [], witPrecondition);
    const ops = Array.from(writes ?? [], witWrite);
    // The versions come as a BigUint64Array (whose own map would keep BigInts).
    return Array.from(call(() => iface.transaction(pre, ops)), Number);
  },
  /** Preconditions of a `transaction`. */
  require: Object.freeze({
    /**
     * The document does not exist.
     * @param {string} collection
     * @param {string} id
     * @returns {Precondition}
     */
    absent(collection, id) {
      return { absent: { collection, id } };
    },
    /**
     * The document exists at exactly this version.
     * @param {string} collection
     * @param {string} id
     * @param {number} version
     * @returns {Precondition}
     */
    version(collection, id, version) {
      return { atVersion: { collection, id, version } };
    },
    /**
     * Fewer than `below` documents of the collection match the filters.
     * @param {string} collection
     * @param {FilterLike | FilterLike[]} where
     * @param {number} below
     * @returns {Precondition}
     */
    countBelow(collection, where, below) {
      return { countBelow: { collection, where, below } };
    },
  }),
  /** Writes of a `transaction`. */
  write: Object.freeze({
    /**
     * Create or replace a document (`expectedVersion` as in `store.put`).
     * @param {string} collection
     * @param {string} id
     * @param {object} body
     * @param {{expectedVersion?: number | null}} [options]
     * @returns {Write}
     */
    put(collection, id, body, options = {}) {
      return { put: { collection, id, body, expectedVersion: options.expectedVersion ?? null } };
    },
    /**
     * Delete a document (no error if absent).
     * @param {string} collection
     * @param {string} id
     * @returns {Write}
     */
    delete(collection, id) {
      return { delete: { collection, id } };
    },
  }),
});

/**
 * @typedef {Filter | {field: string, op: "eq"|"ne"|"lt"|"lte"|"gt"|"gte"|"in"|"prefix", value: unknown}} FilterLike
 * @typedef {{absent: {collection: string, id: string}}
 *   | {atVersion: {collection: string, id: string, version: number}}
 *   | {countBelow: {collection: string, where: FilterLike | FilterLike[], below: number}}} Precondition
 * @typedef {{put: {collection: string, id: string, body: object, expectedVersion?: number | null}}
 *   | {delete: {collection: string, id: string}}} Write
 */

/**
 * @param {any} p
 * @returns {object}
 */
function witPrecondition(p) {
  if (p && p.absent) {
    return { tag: "absent", val: { collection: str(p.absent.collection, "the collection"), id: str(p.absent.id, "the id") } };
  }
  if (p && p.atVersion) {
    const a = p.atVersion;
    return { tag: "at-version", val: [{ collection: str(a.collection, "the collection"), id: str(a.id, "the id") }, u64(a.version, "the version")] };
  }
  if (p && p.countBelow) {
    const c = p.countBelow;
    return { tag: "count-below", val: [str(c.collection, "the collection"), witFilters(c.where), u64(c.below, "the count")] };
  }
  throw new TypeError(`a precondition must be made by store.require.absent/version/countBelow, not ${describe(p)}`);
}

/**
 * @param {any} w
 * @returns {object}
 */
function witWrite(w) {
  if (w && w.put) {
    const p = w.put;
    return {
      tag: "put",
      val: {
        collection: str(p.collection, "the collection"),
        id: str(p.id, "the id"),
        body: toJson(p.body, "the document"),
        expectedVersion: optionalVersion(p.expectedVersion),
      },
    };
  }
  if (w && w.delete) {
    return { tag: "delete", val: { collection: str(w.delete.collection, "the collection"), id: str(w.delete.id, "the id") } };
  }
  throw new TypeError(`a write must be made by store.write.put/delete, not ${describe(w)}`);
}

/**
 * @typedef {object} FileInfo
 * @property {string} name the file's name
 * @property {string} contentType its media type, as checked at upload
 * @property {number} size size in bytes
 * @property {string} sha256 hex SHA-256 of the content
 * @property {number} createdAt when it was stored, milliseconds since the Unix epoch
 */

/**
 * @param {any} f
 * @returns {FileInfo}
 */
function fromWitFileInfo(f) {
  return { name: f.name, contentType: f.contentType, size: Number(f.size), sha256: f.sha256, createdAt: Number(f.createdAt) };
}

/**
 * The plugin's private binary files (capability `files`). Names are 1-200 characters
 * `[A-Za-z0-9._-]` not starting with a dot; the type must be one the manifest lists and the
 * content must look like it. The host serves them at `{mount}/_files/{name}` (`files.url`).
 */
export const files = Object.freeze({
  /**
   * Stores a file, replacing any of the same name.
   * @param {string} name
   * @param {string} contentType
   * @param {string | Uint8Array} data
   * @returns {FileInfo}
   */
  put(name, contentType, data) {
    const iface = wit("files");
    const bytes = toBytes(data, "the file's data");
    return fromWitFileInfo(call(() => iface.put(str(name, "the file name"), str(contentType, "the content type"), bytes)));
  },
  /**
   * Reads a file, or null.
   * @param {string} name
   * @returns {{info: FileInfo, data: Uint8Array} | null}
   */
  get(name) {
    const iface = wit("files");
    const found = call(() => iface.get(str(name, "the file name")));
    if (found === undefined || found === null) return null;
    return { info: fromWitFileInfo(found[0]), data: ownBytes(found[1]) };
  },
  /**
   * A file's description, or null.
   * @param {string} name
   * @returns {FileInfo | null}
   */
  stat(name) {
    const iface = wit("files");
    const info = call(() => iface.stat(str(name, "the file name")));
    return info === undefined || info === null ? null : fromWitFileInfo(info);
  },
  /**
   * Deletes a file; returns whether it existed.
   * @param {string} name
   * @returns {boolean}
   */
  delete(name) {
    const iface = wit("files");
    return call(() => iface.delete(str(name, "the file name")));
  },
  /**
   * Files whose name starts with `prefix`, in name order, at most `limit` (1-1000).
   * @param {string} [prefix]
   * @param {number} [limit]
   * @returns {FileInfo[]}
   */
  list(prefix = "", limit = 1000) {
    const iface = wit("files");
    const n = uint(limit, "the limit", 0xffffffff);
    return Array.from(call(() => iface.list(str(prefix, "the prefix"), n)), fromWitFileInfo);
  },
  /**
   * Where browsers get a stored file: `{mount}/_files/{name}` (pure, no host call).
   * @param {Request} request
   * @param {string} name
   * @returns {string}
   */
  url(request, name) {
    return request.link(`_files/${url.encode(name)}`);
  },
});

/**
 * @param {unknown} v
 * @param {string} what
 * @returns {string[]}
 */
function addressList(v, what) {
  if (v === undefined || v === null) return [];
  return (Array.isArray(v) ? v : [v]).map((a) => str(a, what));
}

/**
 * Outgoing mail (capability `mail`): messages go to the host's outbox, sent over SMTP by the
 * host with retries.
 */
export const mail = Object.freeze({
  /**
   * Queues a message; returns its outbox id. Invalid addresses or an empty subject are
   * `Invalid`; over the hourly quota `QuotaExceeded`.
   * @param {{to: string | string[], cc?: string | string[], replyTo?: string | null, subject: string,
   *   text: string, html?: string | SafeHtml | null,
   *   attachments?: Array<{filename: string, contentType: string, data: string | Uint8Array}>}} message
   * @returns {string}
   */
  send(message) {
    const iface = wit("mail");
    const m = {
      to: addressList(message.to, "a recipient"),
      cc: addressList(message.cc, "a copy recipient"),
      replyTo: message.replyTo === undefined || message.replyTo === null ? undefined : str(message.replyTo, "replyTo"),
      subject: str(message.subject, "the subject"),
      text: str(message.text ?? "", "the text"),
      html: message.html === undefined || message.html === null ? undefined : String(message.html),
      attachments: Array.from(message.attachments ?? [], (a) => ({
        filename: str(a.filename, "an attachment's filename"),
        contentType: str(a.contentType, "an attachment's contentType"),
        data: toBytes(a.data, "an attachment's data"),
      })),
    };
    return call(() => iface.send(m));
  },
});

/** Events between plugins (capability `events`). */
export const events = Object.freeze({
  /**
   * Publishes `payload` (any JSON value, serialised) on `topic` (declared in the manifest's
   * `[capabilities.events] publish`; at most 64 KiB).
   * @param {string} topic
   * @param {unknown} payload
   */
  publish(topic, payload) {
    events.publishText(topic, toJson(payload, "the event payload"));
  },
  /**
   * Publishes JSON text as is (the host checks that it is JSON).
   * @param {string} topic
   * @param {string} json
   */
  publishText(topic, json) {
    const iface = wit("events");
    call(() => iface.publish(str(topic, "the topic"), str(json, "the payload")));
  },
});

// ---------------------------------------------------------------------------------------
// The plugin's exports
// ---------------------------------------------------------------------------------------

/**
 * @param {unknown} e
 * @returns {string}
 */
function errorMessage(e) {
  return e instanceof Error ? e.message : String(e);
}

/**
 * The `err` text of a failed callback.
 * @param {unknown} e
 * @returns {string}
 */
function errorText(e) {
  if (e instanceof Error) return e.name && e.name !== "Error" ? `${e.name}: ${e.message}` : e.message;
  return String(e);
}

/**
 * @param {unknown} v
 * @returns {string}
 */
function describe(v) {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return `an object (${/** @type {object} */ (v).constructor?.name ?? "Object"})`;
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v);
  return `${typeof v} ${String(v)}`;
}

/**
 * @param {unknown} v
 * @returns {boolean}
 */
function isIterable(v) {
  return v !== null && typeof v === "object" && typeof (/** @type {any} */ (v))[Symbol.iterator] === "function";
}

/**
 * Runs a callback whose errors become the WIT `err(string)` result (sync or async).
 * @param {() => unknown} fn
 * @returns {{tag: "ok", val: undefined} | {tag: "err", val: string} | Promise<{tag: "ok", val: undefined} | {tag: "err", val: string}>}
 */
function asResult(fn) {
  const ok = () => ({ tag: /** @type {"ok"} */ ("ok"), val: undefined });
  const err = (/** @type {unknown} */ e) => ({ tag: /** @type {"err"} */ ("err"), val: errorText(e) });
  let r;
  try {
    r = fn();
  } catch (e) {
    return err(e);
  }
  if (r !== null && typeof r === "object" && typeof (/** @type {any} */ (r).then) === "function") {
    return /** @type {Promise<unknown>} */ (r).then(ok, err);
  }
  return ok();
}

/**
 * Internal: the WIT exports (`handler`, `subscriber`, `scheduler`, `lifecycle`) of a plugin
 * object, used by the entry module the build generates. Not for plugins.
 * @param {any} plugin the plugin's default export
 */
export function __exports(plugin) {
  if (plugin === null || typeof plugin !== "object" && typeof plugin !== "function" || typeof plugin.handle !== "function") {
    throw new TypeError(`the plugin's main module must \`export default { handle(request) { ... } }\` (got ${describe(plugin)})`);
  }
  for (const name of ["onEvent", "onSchedule", "migrate"]) {
    if (plugin[name] !== undefined && typeof plugin[name] !== "function") {
      throw new TypeError(`the plugin's ${name} must be a function`);
    }
  }
  return {
    handler: {
      /** @param {any} request */
      handle(request) {
        const reply = plugin.handle(new Request(request));
        if (reply !== null && typeof reply === "object" && typeof reply.then === "function") return reply.then(toWitReply);
        return toWitReply(reply);
      },
    },
    subscriber: {
      /** @param {any} event */
      onEvent(event) {
        return asResult(() => (typeof plugin.onEvent === "function" ? plugin.onEvent(new Event(event)) : undefined));
      },
    },
    scheduler: {
      /** @param {any} job */
      onSchedule(job) {
        return asResult(() => (typeof plugin.onSchedule === "function" ? plugin.onSchedule(new Job(job)) : undefined));
      },
    },
    lifecycle: {
      /** @param {string | undefined} fromVersion */
      migrate(fromVersion) {
        return asResult(() => (typeof plugin.migrate === "function" ? plugin.migrate(fromVersion === undefined || fromVersion === null ? null : fromVersion) : undefined));
      },
    },
  };
}
