// Validation of the entry form. Pure (no import): unit-tested under plain Node.

/** The fields of an entry, as typed in the form. */
export const FIELDS = ["name", "service", "phone", "office", "email"];

/**
 * The number of characters (code points) of a string.
 * @param {string} s
 * @returns {number}
 */
function length(s) {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/**
 * Checks the submitted fields of an entry.
 *
 * - name: 1 to 120 characters;
 * - service: 1 to 120 characters;
 * - phone: 3 to 30 characters, digits, spaces and `+ ( ) . -` only, with at least one digit;
 * - office: at most 60 characters (optional);
 * - email: optional; if given, one `@` between non-empty parts, a dot in the domain, at most
 *   254 characters.
 *
 * Values are trimmed (inner runs of spaces kept as typed).
 *
 * @param {Record<string, string | undefined>} form the decoded form fields
 * @returns {{entry: {name: string, service: string, phone: string, office: string, email: string},
 *   errors: Record<string, string>}} the trimmed values, and a message per invalid field (empty
 *   when everything is valid)
 */
export function validateEntry(form) {
  /** @type {Record<string, string>} */
  const v = {};
  for (const f of FIELDS) v[f] = typeof form[f] === "string" ? form[f].trim() : "";
  /** @type {Record<string, string>} */
  const errors = {};
  if (v.name === "") errors.name = "Le nom est obligatoire.";
  else if (length(v.name) > 120) errors.name = "Le nom fait au plus 120 caractères.";
  if (v.service === "") errors.service = "Le service est obligatoire.";
  else if (length(v.service) > 120) errors.service = "Le service fait au plus 120 caractères.";
  if (v.phone === "") errors.phone = "Le téléphone est obligatoire.";
  else if (!/^[0-9 +().-]+$/.test(v.phone)) errors.phone = "Le téléphone ne contient que des chiffres, des espaces et + ( ) . -";
  else if (v.phone.length < 3 || v.phone.length > 30) errors.phone = "Le téléphone fait de 3 à 30 caractères.";
  else if (!/[0-9]/.test(v.phone)) errors.phone = "Le téléphone contient au moins un chiffre.";
  if (length(v.office) > 60) errors.office = "Le bureau fait au plus 60 caractères.";
  if (v.email !== "" && (length(v.email) > 254 || !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v.email))) {
    errors.email = "L'adresse électronique n'est pas valide.";
  }
  return {
    entry: { name: v.name, service: v.service, phone: v.phone, office: v.office, email: v.email },
    errors,
  };
}
