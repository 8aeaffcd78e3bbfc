"""{{title}}: a Lutetia plugin. `lutetia plugin build` turns it into the package a city installs."""

import lutetia
from lutetia import Page, Reply, Request, Response, config, kv


class App(lutetia.Plugin):
    def handle(self, request: Request) -> Reply:
        if request.method == "GET" and request.segments == []:
            greeting = config.get_or("greeting", "Hello")
            try:
                visits = str(kv.increment("visits", 1))
            except lutetia.ServiceError as e:
                visits = f"unavailable ({e})"
            body = (
                f"<p>{lutetia.html_escape(greeting)}</p>"
                f"<p>Visits: {lutetia.html_escape(visits)}</p>"
            )
            return Page("{{title}}", body)
        return Response.not_found()


lutetia.export(App)
