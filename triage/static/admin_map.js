// The admin areas page's small map: the imported areas' outlines (simplified by PostGIS),
// fetched as GeoJSON from the URL in the map's data-outlines attribute. Without JavaScript
// the table beside it lists every area. Names are set as text, never parsed as HTML.
(function () {
  "use strict";

  function outlinesMap(el) {
    var map = L.map(el, { scrollWheelZoom: false, maxZoom: 18 }).setView([51.5, -0.12], 9);
    var tiles = el.getAttribute("data-tiles");
    if (tiles) L.tileLayer(tiles, { maxZoom: 19, attribution: "Map tiles" }).addTo(map);
    fetch(el.getAttribute("data-outlines"), { credentials: "same-origin", headers: { Accept: "application/geo+json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (collection) {
        var layer = L.geoJSON(collection, {
          style: { color: "#1d70b8", weight: 2, fillOpacity: 0.12 },
          onEachFeature: function (feature, shape) {
            var label = document.createElement("span");
            label.textContent = feature.properties.name + " (" + feature.properties.code + ")";
            shape.bindTooltip(label, { sticky: true });
          },
        }).addTo(map);
        if (layer.getLayers().length) map.fitBounds(layer.getBounds().pad(0.05));
        el.setAttribute("data-loaded", String(layer.getLayers().length));
      })
      .catch(function () {
        var note = document.createElement("p");
        note.className = "hint";
        note.textContent = "The map could not load the outlines; the table below lists every area.";
        el.insertAdjacentElement("afterend", note);
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var el = document.getElementById("areas-map");
    if (el && typeof L !== "undefined") outlinesMap(el);
  });
})();
