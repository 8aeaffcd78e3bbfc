// Type declarations of the Lutetia JavaScript SDK (plugins-sdk/js/lutetia.js), imported by
// plugins as "lutetia". Reference this file from a plugin's jsconfig.json/tsconfig.json
// ("include": ["plugin.js", "../../plugins-sdk/js/lutetia.d.ts"]) to type-check it.

declare module "lutetia" {
  /** The version of the `lutetia:plugin` WIT package this SDK targets (`api` in plugin.toml). */
  export const API_VERSION: "0.1.0";

  // ----- Errors ---------------------------------------------------------------------------

  /** The WIT `error` case names. */
  export type ErrorCode = "not-found" | "denied" | "conflict" | "invalid" | "quota-exceeded" | "unavailable";

  /**
   * An error of one of the host's services, or from decoding a request. Every service call
   * throws one of the subclasses when the host answers an error.
   */
  export class ServiceError extends Error {
    constructor(code: ErrorCode, message?: string);
    /** The WIT case name. */
    readonly code: ErrorCode;
    /** 404, 403, 409, 400, 429 or 503. */
    readonly status: 404 | 403 | 409 | 400 | 429 | 503;
    /** The JSON answer `{"error": code, "message": message}` with `status`. */
    response(): Response;
  }
  /** The thing asked for does not exist (404). */
  export class NotFound extends ServiceError {
    constructor(message?: string);
    readonly code: "not-found";
  }
  /** The capability was not granted, or the call is not allowed (403). */
  export class Denied extends ServiceError {
    constructor(message?: string);
    readonly code: "denied";
  }
  /** A concurrent change won: stale version, unique index, failed precondition (409). */
  export class Conflict extends ServiceError {
    constructor(message?: string);
    readonly code: "conflict";
  }
  /** The arguments, or the request body being decoded, are invalid (400). */
  export class Invalid extends ServiceError {
    constructor(message?: string);
    readonly code: "invalid";
  }
  /** The plugin's quota for the service is used up (429). */
  export class QuotaExceeded extends ServiceError {
    constructor(message?: string);
    readonly code: "quota-exceeded";
  }
  /** The service is temporarily unavailable, or absent (outside the host) (503). */
  export class Unavailable extends ServiceError {
    constructor(message?: string);
    readonly code: "unavailable";
  }

  /**
   * Wraps a `handle` function so that a `ServiceError` it throws becomes its JSON answer
   * instead of a trap; other exceptions still trap (the host answers 500 and logs it).
   */
  export function catchServiceErrors<A extends unknown[]>(
    handle: (...args: A) => Reply | Promise<Reply>,
  ): (...args: A) => Reply | Promise<Reply>;

  // ----- Bytes and URLs -------------------------------------------------------------------

  /** Text or bytes: text is sent as UTF-8. */
  export type Body = string | Uint8Array;

  /** UTF-8 bytes of a string, or the bytes of a buffer/view as a Uint8Array. */
  export function toBytes(value: string | Uint8Array | ArrayBuffer | ArrayBufferView, what?: string): Uint8Array;
  /** Strict UTF-8 decoding: malformed input throws `Invalid`. */
  export function decodeUtf8(bytes: Uint8Array, what?: string): string;

  /** Percent-encoding helpers (lenient decoding, as browsers do). */
  export const url: {
    /** Decodes `%XX` escapes as UTF-8; `+` is kept (path segments). */
    decode(s: string): string;
    /** Decodes a query/form component: `+` is a space, then `%XX` escapes. */
    decodeQueryComponent(s: string): string;
    /** Escapes everything but ASCII letters, digits and `-._~`. */
    encode(s: string): string;
    /** `application/x-www-form-urlencoded` text into decoded `[name, value]` pairs. */
    parseQuery(s: string): Array<[string, string]>;
    /** A query string (without `?`) from pairs or an object; null/undefined values skipped. */
    formatQuery(params: Iterable<[string, unknown]> | Record<string, unknown>): string;
  };

  /** The limits of the body parsers, the same in the three SDKs; over one: `Invalid`. */
  export const limits: {
    /** The deepest nesting of arrays and objects in a JSON body or event payload (`[]` is 1). */
    readonly MAX_JSON_DEPTH: 64;
    /** The most fields of an urlencoded form body (empty pairs do not count). */
    readonly MAX_FORM_FIELDS: 1000;
    /** The most parts of a `multipart/form-data` body. */
    readonly MAX_MULTIPART_PARTS: 1000;
  };

  /** One part of a `multipart/form-data` body: a field, or a file when it has a `filename`. */
  export class Part {
    constructor(name: string, filename: string | null, contentType: string | null, data: Uint8Array);
    /** The form control's name. */
    name: string;
    /** The file's name (last path component), for file parts; otherwise null. */
    filename: string | null;
    /** The part's declared `Content-Type`, or null. */
    contentType: string | null;
    /** The content, exactly as sent. */
    data: Uint8Array;
    /** Whether this part is a file input with a file chosen. */
    readonly isFile: boolean;
    /** The content as UTF-8 text, or null if it is not UTF-8. */
    text(): string | null;
  }

  /** A small `multipart/form-data` parser (RFC 7578). */
  export const multipart: {
    /** The `boundary` parameter of a `multipart/form-data` content type, or null. */
    boundary(contentType: string): string | null;
    /** The parts, in order; `Invalid` if malformed or over `limits.MAX_MULTIPART_PARTS` parts. */
    parse(contentType: string, body: string | Uint8Array): Part[];
  };

  // ----- HTML -----------------------------------------------------------------------------

  /** Escapes `& < > " '` for element content and quoted attribute values. */
  export function escapeHtml(text: unknown): string;
  /** HTML that `html` templates do not escape again. */
  export class SafeHtml {
    constructor(html: string);
    readonly html: string;
    toString(): string;
  }
  /**
   * A tagged template escaping every interpolated value except `SafeHtml`; arrays are joined;
   * `null`, `undefined` and `false` give nothing.
   */
  export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml;
  /** Marks trusted HTML as safe. Never use it on request data. */
  export function rawHtml(text: string): SafeHtml;

  // ----- Requests -------------------------------------------------------------------------

  /** Headers as `[name, value]` pairs (names lower-cased), or an object. */
  export type HeadersInit = Array<[string, string]> | Record<string, string>;

  /** The fields of a signed-in user, as in the WIT `user` record. */
  export interface UserInit {
    id: string;
    login: string;
    displayName: string;
    roles?: string[];
    rights?: string[];
  }

  /** The signed-in person making a request. */
  export class User {
    constructor(user: UserInit);
    /** Stable identifier of the account. */
    readonly id: string;
    /** Login name. */
    readonly login: string;
    /** Name to show. */
    readonly displayName: string;
    /** Back-office roles held (`agent`, `admin`). */
    readonly roles: string[];
    /** Rights held on this plugin (names the plugin defines). */
    readonly rights: string[];
    hasRole(role: string): boolean;
    hasRight(right: string): boolean;
  }

  /** The parts of a request (the WIT `request` record); every one is optional in tests. */
  export interface RequestInit {
    method?: string;
    path?: string;
    query?: string;
    headers?: HeadersInit;
    body?: Body;
    user?: User | UserInit | null;
    locale?: string;
    mount?: string;
    requestId?: string;
  }

  /** An HTTP request routed to the plugin. */
  export class Request {
    /** Defaults: `GET /`, no query, headers, body or user, locale `fr-FR`, mount `/p/test`, request id `test`. */
    constructor(init?: RequestInit);
    /** Method in upper case. */
    readonly method: string;
    /** Path below the mount, starting with `/`, still percent-encoded. */
    readonly path: string;
    /** Raw query string without `?` (may be empty). */
    readonly query: string;
    /** Header pairs, names in lower case. */
    readonly headers: Array<[string, string]>;
    /** The body bytes. */
    readonly body: Uint8Array;
    /** The signed-in user, or null. */
    readonly user: User | null;
    /** Preferred locale, a BCP 47 tag (`fr-FR`). */
    readonly locale: string;
    /** Where the plugin is mounted (`/p/directory`). */
    readonly mount: string;
    /** Identifier of this request, also in the host's logs. */
    readonly requestId: string;
    /** Non-empty path segments, percent-decoded; `[]` for `/`. */
    readonly segments: string[];
    /** Decoded query pairs, in order. */
    readonly queryParams: Array<[string, string]>;
    /** The first value of a query parameter, or null. */
    queryParam(name: string): string | null;
    /** The query as an object, the first occurrence of a name winning. */
    queryObject(): Record<string, string>;
    /** The first header with this name (case-insensitive), or null. */
    header(name: string): string | null;
    /** The body as UTF-8 text; `Invalid` if it is not UTF-8. */
    text(): string;
    /** The body parsed as JSON; `Invalid` if it is not, or is nested deeper than `limits.MAX_JSON_DEPTH`. */
    json(): any;
    /** The urlencoded form body as pairs; `Invalid` for another content type, bad UTF-8 or over `limits.MAX_FORM_FIELDS` fields. */
    form(): Array<[string, string]>;
    /** The form body as an object, the first occurrence of a field winning. */
    formObject(): Record<string, string>;
    /** The parts of a `multipart/form-data` body; `Invalid` if it is not one or is malformed. */
    multipart(): Part[];
    /** An absolute link to a path of the plugin (`{mount}/{path}`). */
    link(path: string): string;
  }

  // ----- Replies --------------------------------------------------------------------------

  /** A page: `body` (an HTML fragment) wrapped by the host in the site layout. */
  export class Page {
    constructor(title: string, body: string | SafeHtml, options?: { status?: number; headers?: HeadersInit });
    status: number;
    title: string;
    body: string;
    headers: Array<[string, string]>;
    /** Sets a header, replacing any with the same name. */
    header(name: string, value: string): this;
  }

  /** A raw HTTP response, sent as is. */
  export class Response {
    constructor(status?: number, body?: Body | null, headers?: HeadersInit);
    status: number;
    headers: Array<[string, string]>;
    body: Uint8Array;
    /** JSON (`application/json`); an unserialisable value gives a 500 saying why. */
    static json(value: unknown, status?: number): Response;
    /** Plain text (`text/plain; charset=utf-8`). */
    static text(text: string, status?: number): Response;
    /** A whole HTML document (`text/html; charset=utf-8`), without the layout. */
    static html(html: string | SafeHtml, status?: number): Response;
    /** A redirect, 303 by default. */
    static redirect(location: string, status?: number): Response;
    /** A plain-text 404. */
    static notFound(): Response;
    /** Sets a header, replacing any with the same name. */
    header(name: string, value: string): this;
    /** Adds a header, keeping any with the same name. */
    appendHeader(name: string, value: string): this;
    /** The body as (lossy) UTF-8 text. */
    text(): string;
  }

  /** What `handle` may return (a ServiceError is sent as its `response()`). */
  export type Reply = Page | Response | ServiceError;

  // ----- The plugin -----------------------------------------------------------------------

  /** An event delivered to `onEvent`. */
  export class Event {
    constructor(e: { id: string; topic: string; publisher: string; payload: string; publishedAt: number | bigint; attempt: number });
    /** Unique id, the same on every delivery attempt. */
    readonly id: string;
    readonly topic: string;
    /** Id of the publishing plugin. */
    readonly publisher: string;
    /** The payload, JSON text. */
    readonly payload: string;
    /** Milliseconds since the Unix epoch. */
    readonly publishedAt: number;
    /** 1 on the first delivery, more on retries. */
    readonly attempt: number;
    /** The payload parsed; `Invalid` if it is not JSON or is nested deeper than `limits.MAX_JSON_DEPTH`. */
    json(): any;
  }

  /** A scheduled job run. */
  export class Job {
    constructor(j: { name: string; scheduledAt: number | bigint });
    /** The job's name, as in the manifest. */
    readonly name: string;
    /** When this run was due, milliseconds since the Unix epoch. */
    readonly scheduledAt: number;
  }

  /**
   * The shape of a plugin's default export. A throw in `handle` traps (the host answers a
   * clean 500); a throw (or rejection) in the others becomes their `err(string)` result.
   */
  export interface Plugin {
    handle(request: Request): Reply | Promise<Reply>;
    onEvent?(event: Event): void | Promise<void>;
    onSchedule?(job: Job): void | Promise<void>;
    migrate?(fromVersion: string | null): void | Promise<void>;
  }

  // ----- Services -------------------------------------------------------------------------

  export type LogLevel = "trace" | "debug" | "info" | "warn" | "error";

  /** Log lines, recorded by the host with the plugin id. */
  export const log: {
    log(level: LogLevel, message: unknown): void;
    trace(message: unknown): void;
    debug(message: unknown): void;
    info(message: unknown): void;
    warn(message: unknown): void;
    error(message: unknown): void;
  };

  /** The plugin's settings: manifest `[config]` defaults, overridden by the operator. */
  export const config: {
    /** A setting, or null. */
    get(key: string): string | null;
    /** A setting, or `fallback`. */
    getOr(key: string, fallback: string): string;
    /** Every setting, sorted by key. */
    all(): Record<string, string>;
  };

  /** The plugin's private key-value store (capability `kv`). */
  export const kv: {
    get(key: string): Uint8Array | null;
    /** UTF-8 text, or null; `Invalid` if not UTF-8. */
    getText(key: string): string | null;
    /** Parsed JSON, or null if absent; `Invalid` if not JSON. */
    getJson(key: string): any;
    set(key: string, value: Body): void;
    setJson(key: string, value: unknown): void;
    /** Whether there was a value. */
    delete(key: string): boolean;
    /** Adds `by` (default 1) atomically and returns the new value (exact up to 2^53 - 1). */
    increment(key: string, by?: number | bigint): number;
    /** `increment` with the exact signed 64-bit result. */
    incrementBigInt(key: string, by?: number | bigint): bigint;
    /** Sets `value` only if the current value is `expected` (null: absent); whether it did. */
    compareAndSwap(key: string, expected: Body | null, value: Body): boolean;
    /** Keys starting with `prefix`, in byte order (limit default and cap 1000). */
    listKeys(prefix?: string, options?: { startAfter?: string | null; limit?: number }): string[];
  };

  export type Comparison = "eq" | "ne" | "lt" | "lte" | "gt" | "gte" | "in" | "prefix";

  /** One condition on a document field. */
  export class Filter {
    constructor(field: string, op: Comparison, value: unknown);
    readonly field: string;
    readonly op: Comparison;
    readonly value: unknown;
  }

  /** The comparisons on one field (`store.where(field)`). */
  export class FieldCondition {
    constructor(field: string);
    readonly field: string;
    eq(value: unknown): Filter;
    ne(value: unknown): Filter;
    lt(value: unknown): Filter;
    lte(value: unknown): Filter;
    gt(value: unknown): Filter;
    gte(value: unknown): Filter;
    in(values: unknown[]): Filter;
    prefix(prefix: string): Filter;
  }

  export type FilterLike = Filter | { field: string; op: Comparison; value: unknown };

  /** A stored document, its body parsed. */
  export interface StoredDocument<T = any> {
    collection: string;
    id: string;
    /** 1 after the first write, plus one on each write. */
    version: number;
    body: T;
  }

  export interface FindOptions {
    where?: FilterLike | FilterLike[];
    /** Field to order by (ties by id); default: by id. */
    orderBy?: string | null;
    descending?: boolean;
    /** 1-1000, default 100. */
    limit?: number;
    /** The previous page's `nextCursor`. */
    cursor?: string | null;
  }

  export interface FindPage<T = any> {
    documents: Array<StoredDocument<T>>;
    /** Present when more documents may follow. */
    nextCursor: string | null;
  }

  export type Precondition =
    | { absent: { collection: string; id: string } }
    | { atVersion: { collection: string; id: string; version: number } }
    | { countBelow: { collection: string; where: FilterLike | FilterLike[]; below: number } };

  export type Write =
    | { put: { collection: string; id: string; body: object; expectedVersion?: number | null } }
    | { delete: { collection: string; id: string } };

  /** The plugin's private document store (capability `store`). */
  export const store: {
    /** Builds a filter: `store.where("age").gt(3)`. */
    where(field: string): FieldCondition;
    get<T = any>(collection: string, id: string): StoredDocument<T> | null;
    /** Creates or replaces; `expectedVersion` 0 = must not exist, n = must be at n. Returns the new version. */
    put(collection: string, id: string, body: object, options?: { expectedVersion?: number | null }): number;
    /** Creates a document that must not exist (`Conflict` otherwise); returns 1. */
    insert(collection: string, id: string, body: object): number;
    /** Writes `doc.body` back if still at `doc.version` (`Conflict` otherwise). */
    update(doc: StoredDocument): number;
    /** Whether it existed. */
    delete(collection: string, id: string, options?: { expectedVersion?: number | null }): boolean;
    find<T = any>(collection: string, options?: FindOptions): FindPage<T>;
    count(collection: string, where?: FilterLike | FilterLike[]): number;
    ensureIndex(collection: string, fields: string | string[], options?: { unique?: boolean }): void;
    /** All or nothing; the new version of each write (0 for deletes). */
    transaction(preconditions: Precondition[], writes: Write[]): number[];
    /** Preconditions of a transaction. */
    readonly require: {
      absent(collection: string, id: string): Precondition;
      version(collection: string, id: string, version: number): Precondition;
      countBelow(collection: string, where: FilterLike | FilterLike[], below: number): Precondition;
    };
    /** Writes of a transaction. */
    readonly write: {
      put(collection: string, id: string, body: object, options?: { expectedVersion?: number | null }): Write;
      delete(collection: string, id: string): Write;
    };
  };

  /** What the host knows of a stored file. */
  export interface FileInfo {
    name: string;
    contentType: string;
    size: number;
    sha256: string;
    /** Milliseconds since the Unix epoch. */
    createdAt: number;
  }

  /** The plugin's private binary files (capability `files`). */
  export const files: {
    put(name: string, contentType: string, data: Body): FileInfo;
    get(name: string): { info: FileInfo; data: Uint8Array } | null;
    stat(name: string): FileInfo | null;
    delete(name: string): boolean;
    /** In name order, at most `limit` (1-1000, default 1000). */
    list(prefix?: string, limit?: number): FileInfo[];
    /** `{mount}/_files/{name}`, where browsers get the file. */
    url(request: Request, name: string): string;
  };

  export interface MailMessage {
    to: string | string[];
    cc?: string | string[];
    replyTo?: string | null;
    subject: string;
    text: string;
    html?: string | SafeHtml | null;
    attachments?: Array<{ filename: string; contentType: string; data: Body }>;
  }

  /** Outgoing mail through the host's outbox (capability `mail`). */
  export const mail: {
    /** Queues a message; returns its outbox id. */
    send(message: MailMessage): string;
  };

  /**
   * Internal, for tests: binds stand-ins of the WIT interfaces, at the WIT level (the build's
   * entry module binds the real ones); `null` unbinds. See example-plugins/directory/test.
   */
  export function __bind(
    interfaces: Partial<Record<"log" | "config" | "kv" | "store" | "files" | "mail" | "events", object>> | null,
  ): void;

  /** Events between plugins (capability `events`). */
  export const events: {
    /** Publishes any JSON value on a declared topic. */
    publish(topic: string, payload: unknown): void;
    /** Publishes JSON text as is. */
    publishText(topic: string, json: string): void;
  };
}
