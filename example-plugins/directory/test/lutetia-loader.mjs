// A Node module hook for the tests: resolves the bare specifier "lutetia" to the SDK of this
// checkout, as `lutetia plugin build` does, so the plugin's modules run under plain Node.
const SDK = new URL("../../../plugins-sdk/js/lutetia.js", import.meta.url).href;

/** @type {import("node:module").ResolveHook} */
export async function resolve(specifier, context, next) {
  if (specifier === "lutetia") return { url: SDK, shortCircuit: true };
  return next(specifier, context);
}
