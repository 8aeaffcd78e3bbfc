// {{title}}: a Lutetia plugin. `lutetia plugin build` turns it into the package a city installs.
// @ts-check
import { Page, Response, ServiceError, config, escapeHtml, kv } from "lutetia";

export default {
  /** @param {import("lutetia").Request} request */
  handle(request) {
    if (request.method === "GET" && request.segments.length === 0) {
      const greeting = config.getOr("greeting", "Hello");
      let visits;
      try {
        visits = String(kv.increment("visits", 1));
      } catch (e) {
        if (!(e instanceof ServiceError)) throw e;
        visits = `unavailable (${e.message})`;
      }
      return new Page(
        "{{title}}",
        `<p>${escapeHtml(greeting)}</p><p>Visits: ${escapeHtml(visits)}</p>`,
      );
    }
    return Response.notFound();
  },
};
