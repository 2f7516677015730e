// Starts Swagger UI on the OpenAPI document named by the page (data-config on #swagger-ui).
// Written for this project; the vendored swagger-ui-bundle.js defines SwaggerUIBundle.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  var config = JSON.parse(root.getAttribute("data-config"));
  window.ui = SwaggerUIBundle({
    url: config.openapiUrl,
    domNode: root,
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    // BaseLayout needs no standalone preset (its top bar only offers loading other specs).
    layout: "BaseLayout",
    // The default validator badge calls validator.swagger.io: never leave this server.
    validatorUrl: null,
    // Ignore ?url=/?configUrl= so a crafted link cannot point the page at another spec.
    queryConfigEnabled: false,
  });
})();
