// `directory`: the city hall's staff and services directory, an example plugin in JavaScript.
//
// - `GET /`: search form; with `q`, the matching entries (a word of the name, or of the
//   service, starting with `q`, ignoring case and accents), sorted by name, 20 per page; with
//   `service`, that service's entries; otherwise the list of services.
// - `GET /entries/{id}`: one entry.
// - `GET /new`, `POST /new`: the new entry form; `POST /entries/{id}/delete`.
// - `GET /api/search?q=`: `{"entries": [{id, name, service, phone, office}]}` (at most 50).
//
// Only agents edit: a signed-in user holding the plugin's `edit` right, or, until the host has
// sign-in, whoever types the operator's `edit-key` setting in the form (empty: editing closed).

import { Invalid, Page, Response, ServiceError, config, html, log } from "lutetia";
import * as directory from "./directory.js";
import { queryKey, normalize } from "./search-keys.js";
import { validateEntry } from "./validate.js";
import * as views from "./views.js";

export default {
  /** @param {import("lutetia").Request} req */
  handle(req) {
    try {
      return route(req);
    } catch (e) {
      // A failing store call: a JSON error for the API, an error page otherwise.
      if (!(e instanceof ServiceError)) throw e;
      log.warn(`directory: ${req.method} ${req.path}: ${e.code}: ${e.message}`);
      if (req.segments[0] === "api") return e.response();
      return new Page(title(), html`<p class="error">${ERROR_TEXT[e.code]}</p>`, { status: e.status });
    }
  },

  migrate() {
    directory.ensureIndexes();
  },
};

/**
 * @param {import("lutetia").Request} req
 * @returns {import("lutetia").Reply}
 */
function route(req) {
  const s = req.segments;
  const get = req.method === "GET" || req.method === "HEAD";
  if (s.length === 0 && get) return home(req);
  if (s.length === 2 && s[0] === "entries" && get) return entryPage(req, s[1]);
  if (s.length === 1 && s[0] === "new" && get) return newForm(req);
  if (s.length === 1 && s[0] === "new" && req.method === "POST") return create(req);
  if (s.length === 3 && s[0] === "entries" && s[2] === "delete" && req.method === "POST") return remove(req, s[1]);
  if (s.length === 2 && s[0] === "api" && s[1] === "search" && get) return apiSearch(req);
  return notFound();
}

/** What visitors read when a store call fails. */
const ERROR_TEXT = {
  "not-found": "Cette fiche n'existe pas.",
  denied: "L'annuaire n'a pas accès à ses données : l'exploitant doit lui accorder la capacité « store ».",
  conflict: "La fiche a été modifiée en même temps par quelqu'un d'autre : réessayez.",
  invalid: "La demande n'est pas valide.",
  "quota-exceeded": "L'annuaire a atteint sa capacité de stockage : prévenez l'exploitant du site.",
  unavailable: "L'annuaire est momentanément indisponible : réessayez dans un instant.",
};

/** The configured title. */
function title() {
  return config.getOr("title", "Annuaire") || "Annuaire";
}

/** @returns {Page} */
function notFound() {
  return new Page(title(), html`<p>Cette page n'existe pas.</p>`, { status: 404 });
}

/**
 * `GET /`: search results, one service's entries, or the list of services.
 * @param {import("lutetia").Request} req
 */
function home(req) {
  const q = (req.queryParam("q") ?? "").trim();
  const service = (req.queryParam("service") ?? "").trim();
  const from = { cursor: req.queryParam("cursor"), after: req.queryParam("after") };
  const newLink = html`<p class="actions"><a href="${req.link("/new")}">Ajouter une fiche</a></p>`;
  let content;
  if (q !== "") {
    const key = queryKey(q);
    const page = key === "" ? { entries: [], next: null } : directory.search(key, from);
    content = html`<h2>Résultats pour « ${q} »</h2>${views.entryTable(req, page, { q })}`;
  } else if (service !== "") {
    const page = directory.entriesOfService(normalize(service) || "-", from.cursor);
    content = html`<h2>${service}</h2>${views.entryTable(req, page, { service })}<p><a href="${req.link("/")}">Tous les services</a></p>`;
  } else {
    content = views.serviceList(req, directory.services());
  }
  return new Page(title(), html`${views.searchForm(req, q)}${content}${newLink}`, { headers: { "cache-control": "no-store" } });
}

/**
 * `GET /entries/{id}`.
 * @param {import("lutetia").Request} req
 * @param {string} id
 */
function entryPage(req, id) {
  const entry = directory.getEntry(id);
  if (entry === null) return notFound();
  const access = editAccess(req);
  return new Page(
    `${entry.name} — ${title()}`,
    views.entryDetails(req, entry, {
      canDelete: access.open,
      needsKey: access.needsKey,
      closedMessage: access.open ? null : access.message,
    }),
  );
}

/**
 * Whether the visitor may edit, and how.
 * @param {import("lutetia").Request} req
 * @returns {{open: true, needsKey: boolean} | {open: false, needsKey: false, message: string}}
 */
function editAccess(req) {
  if (req.user !== null && req.user.hasRight("edit")) return { open: true, needsKey: false };
  if ((config.get("edit-key") ?? "") === "") {
    return {
      open: false,
      needsKey: false,
      message: "L'édition de l'annuaire est fermée : l'exploitant du site doit d'abord définir le réglage « edit-key » de l'extension.",
    };
  }
  return { open: true, needsKey: true };
}

/**
 * Whether the form carries the right key (when one is needed); compared in constant time.
 * @param {import("lutetia").Request} req
 * @param {Record<string, string>} form
 */
function keyAccepted(req, form) {
  const access = editAccess(req);
  if (!access.open) return false;
  if (!access.needsKey) return true;
  const expected = new TextEncoder().encode(config.get("edit-key") ?? "");
  const given = new TextEncoder().encode(form.key ?? "");
  let diff = expected.length ^ given.length;
  for (let i = 0; i < expected.length; i++) diff |= expected[i] ^ (given[i] ?? 0);
  return diff === 0;
}

/**
 * The 403 page of a visitor who may not edit.
 * @param {import("lutetia").Request} req
 */
function closed(req) {
  const access = editAccess(req);
  const message = access.open ? "Clé d'édition incorrecte." : access.message;
  return new Page(title(), html`<p class="error">${message}</p><p><a href="${req.link("/")}">Retour à l'annuaire</a></p>`, { status: 403 });
}

/**
 * `GET /new`.
 * @param {import("lutetia").Request} req
 */
function newForm(req) {
  const access = editAccess(req);
  if (!access.open) return closed(req);
  return new Page(`Nouvelle fiche — ${title()}`, views.entryForm(req, {}, {}, { needsKey: access.needsKey }));
}

/**
 * The submitted form fields; a body that is not a form is a 400 page.
 * @param {import("lutetia").Request} req
 * @returns {Record<string, string> | Page}
 */
function formOf(req) {
  try {
    return req.formObject();
  } catch (e) {
    if (!(e instanceof Invalid)) throw e;
    return new Page(title(), html`<p class="error">Le formulaire envoyé est illisible.</p>`, { status: 400 });
  }
}

/**
 * `POST /new`: validates, stores, and redirects to the new entry.
 * @param {import("lutetia").Request} req
 */
function create(req) {
  const form = formOf(req);
  if (form instanceof Page) return form;
  const access = editAccess(req);
  if (!access.open) return closed(req);
  const pageTitle = `Nouvelle fiche — ${title()}`;
  if (!keyAccepted(req, form)) {
    return new Page(pageTitle, views.entryForm(req, form, {}, { needsKey: true, message: "Clé d'édition incorrecte." }), { status: 403 });
  }
  const { entry, errors } = validateEntry(form);
  if (Object.keys(errors).length > 0) {
    return new Page(pageTitle, views.entryForm(req, form, errors, { needsKey: access.needsKey }), { status: 400 });
  }
  const id = directory.createEntry(entry);
  log.info(`directory: entry ${id} created (${entry.service})`);
  return Response.redirect(req.link(`/entries/${id}`));
}

/**
 * `POST /entries/{id}/delete`.
 * @param {import("lutetia").Request} req
 * @param {string} id
 */
function remove(req, id) {
  const form = formOf(req);
  if (form instanceof Page) return form;
  if (!keyAccepted(req, form)) return closed(req);
  const deleted = directory.getEntry(id) === null ? null : directory.deleteEntry(id);
  if (deleted === null) return notFound();
  log.info(`directory: entry ${id} deleted`);
  const back = deleted.remaining > 0 ? `/?service=${encodeURIComponent(deleted.service)}` : "/";
  return Response.redirect(req.link(back));
}

/**
 * `GET /api/search?q=`: the first 50 matches, as JSON.
 * @param {import("lutetia").Request} req
 */
function apiSearch(req) {
  const key = queryKey(req.queryParam("q") ?? "");
  /** @type {import("./directory.js").Entry[]} */
  const found = [];
  if (key !== "") {
    /** @type {{cursor?: string | null, after?: string | null, pageSize: number}} */
    let from = { pageSize: 50 };
    while (found.length < 50) {
      const page = directory.search(key, from);
      found.push(...page.entries);
      if (page.next === null) break;
      from = { ...page.next, pageSize: 50 };
    }
  }
  const entries = found.slice(0, 50).map((e) => ({ id: e.id, name: e.name, service: e.service, phone: e.phone, office: e.office }));
  return Response.json({ entries });
}
