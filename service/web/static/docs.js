/* The API docs page: Swagger UI (vendored by scripts/vendor_swagger_ui.sh, same origin) rendering
   /api/v1/openapi.json. No validator badge (it would load an image from another host) and nothing else
   from outside, so the page keeps the same strict Content-Security-Policy as the others. */
"use strict";

(function () {
  const root = document.getElementById("swagger-ui");
  window.voltaApiDocs = window.SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    validatorUrl: null,
    deepLinking: true,
    defaultModelsExpandDepth: 1,
    tryItOutEnabled: false,
  });
})();
