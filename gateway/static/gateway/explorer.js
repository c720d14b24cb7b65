// The API explorer of /_gateway/docs: Swagger UI (from drf-spectacular-sidecar,
// served by the gateway itself) over /_gateway/openapi.json. "Try it out" sends
// its requests to this gateway, same origin; nothing is loaded from elsewhere.
"use strict";
window.ui = SwaggerUIBundle({
  url: document.getElementById("swagger-ui").dataset.spec,
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  deepLinking: true,
  displayRequestDuration: true,
  defaultModelsExpandDepth: 0,
  showExtensions: true,
  validatorUrl: null,  // never ask swagger.io to validate the document
});
