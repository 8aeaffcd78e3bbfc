// The directory's HTML fragments (the host wraps them in the site layout). Every value goes
// through the SDK's `html` template, which escapes it.

import { html, url } from "lutetia";
import { telUri } from "./search-keys.js";

/**
 * @typedef {import("./directory.js").Entry} Entry
 * @typedef {import("./directory.js").EntryPage} EntryPage
 * @typedef {import("lutetia").Request} Request
 * @typedef {import("lutetia").SafeHtml} SafeHtml
 */

/**
 * The search form.
 * @param {Request} req
 * @param {string} q
 * @returns {SafeHtml}
 */
export function searchForm(req, q) {
  return html`<form method="get" action="${req.link("/")}" class="directory-search" role="search">
<label for="q">Nom ou service</label>
<input type="search" id="q" name="q" value="${q}" maxlength="120" placeholder="Hélène, voirie…">
<button type="submit">Rechercher</button>
</form>`;
}

/**
 * A table of entries, with a link to the next page.
 * @param {Request} req
 * @param {EntryPage} page
 * @param {Record<string, string>} query the parameters that produced the page (kept in the next link)
 * @returns {SafeHtml}
 */
export function entryTable(req, page, query) {
  if (page.entries.length === 0) return html`<p class="empty">Aucune fiche ne correspond.</p>`;
  const rows = page.entries.map(
    (e) => html`<tr>
<td><a href="${req.link(`/entries/${url.encode(e.id)}`)}">${e.name}</a></td>
<td><a href="${req.link("/")}?${url.formatQuery({ service: e.service })}">${e.service}</a></td>
<td><a href="${telUri(e.phone)}">${e.phone}</a></td>
<td>${e.office}</td>
</tr>`,
  );
  const next = page.next
    ? html`<p class="next"><a href="${req.link("/")}?${url.formatQuery({ ...query, cursor: page.next.cursor, after: page.next.after || null })}">Page suivante</a></p>`
    : null;
  return html`<table class="directory">
<thead><tr><th scope="col">Nom</th><th scope="col">Service</th><th scope="col">Téléphone</th><th scope="col">Bureau</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
${next}`;
}

/**
 * The list of services, each linking to its entries.
 * @param {Request} req
 * @param {Array<{name: string, count: number}>} list
 * @returns {SafeHtml}
 */
export function serviceList(req, list) {
  if (list.length === 0) return html`<p class="empty">L'annuaire est vide.</p>`;
  const items = list.map(
    (s) => html`<li><a href="${req.link("/")}?${url.formatQuery({ service: s.name })}">${s.name}</a> <span class="count">(${s.count})</span></li>`,
  );
  return html`<h2>Services</h2>
<ul class="services">
${items}
</ul>`;
}

/**
 * One entry, with the delete form when editing is possible.
 * @param {Request} req
 * @param {Entry} e
 * @param {{canDelete: boolean, needsKey: boolean, closedMessage: string | null}} editing
 * @returns {SafeHtml}
 */
export function entryDetails(req, e, editing) {
  const email = e.email ? html`<dt>Courriel</dt><dd><a href="mailto:${e.email}">${e.email}</a></dd>` : null;
  const office = e.office ? html`<dt>Bureau</dt><dd>${e.office}</dd>` : null;
  const remove = editing.canDelete
    ? html`<form method="post" action="${req.link(`/entries/${url.encode(e.id)}/delete`)}" class="directory-delete">
${editing.needsKey ? keyField() : null}
<button type="submit">Supprimer la fiche</button>
</form>`
    : editing.closedMessage
      ? html`<p class="note">${editing.closedMessage}</p>`
      : null;
  return html`<dl class="entry">
<dt>Nom</dt><dd>${e.name}</dd>
<dt>Service</dt><dd><a href="${req.link("/")}?${url.formatQuery({ service: e.service })}">${e.service}</a></dd>
<dt>Téléphone</dt><dd><a href="${telUri(e.phone)}">${e.phone}</a></dd>
${office}
${email}
</dl>
<p><a href="${req.link("/")}">Retour à l'annuaire</a></p>
${remove}`;
}

/** @returns {SafeHtml} */
function keyField() {
  return html`<p><label for="key">Clé d'édition</label>
<input type="password" id="key" name="key" required autocomplete="current-password"></p>`;
}

/**
 * The new entry form, with the values typed so far and a message per invalid field.
 * @param {Request} req
 * @param {Record<string, string>} values
 * @param {Record<string, string>} errors
 * @param {{needsKey: boolean, message?: string | null}} options
 * @returns {SafeHtml}
 */
export function entryForm(req, values, errors, options) {
  /**
   * @param {string} name
   * @param {string} label
   * @param {{type?: string, max: number, required?: boolean, hint?: string}} f
   */
  const field = (name, label, f) => {
    const error = errors[name];
    return html`<p class="field${error ? " invalid" : ""}">
<label for="${name}">${label}${f.required ? " *" : ""}</label>
<input type="${f.type ?? "text"}" id="${name}" name="${name}" value="${values[name] ?? ""}" maxlength="${f.max}"${f.required ? html` required` : null}${error ? html` aria-invalid="true" aria-describedby="${name}-error"` : null}>
${f.hint ? html`<small>${f.hint}</small>` : null}
${error ? html`<span class="error" id="${name}-error">${error}</span>` : null}
</p>`;
  };
  const count = Object.keys(errors).length;
  return html`${options.message ? html`<p class="error" role="alert">${options.message}</p>` : null}
${count > 0 ? html`<p class="error" role="alert">La fiche n'est pas enregistrée : ${count === 1 ? "un champ est à corriger" : `${count} champs sont à corriger`}.</p>` : null}
<form method="post" action="${req.link("/new")}" class="directory-entry">
${field("name", "Nom", { max: 120, required: true })}
${field("service", "Service", { max: 120, required: true })}
${field("phone", "Téléphone", { type: "tel", max: 30, required: true, hint: "Chiffres, espaces et + ( ) . - (3 à 30 caractères)." })}
${field("office", "Bureau", { max: 60 })}
${field("email", "Courriel", { type: "email", max: 254 })}
${options.needsKey ? keyField() : null}
<button type="submit">Enregistrer</button>
</form>
<p><a href="${req.link("/")}">Retour à l'annuaire</a></p>`;
}
