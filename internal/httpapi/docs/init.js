// Swagger UI on this server's own document; a separate file, so the page's CSP needs no inline script.
// validatorUrl null: the page calls nothing but this server (no online validator badge).
window.onload = function () {
  window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true, validatorUrl: null });
};
