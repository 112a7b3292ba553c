// Maps with Leaflet (served by the app from the xstatic-leaflet package). Without a tile URL
// (the MAP_TILE_URL setting) the map draws its points on a blank background and loads nothing
// from anywhere else. Data come from data- attributes, never from inline scripts.
(function () {
  "use strict";

  function addTiles(map, el) {
    var tiles = el.getAttribute("data-tiles");
    if (tiles) {
      L.tileLayer(tiles, { maxZoom: 19, attribution: "Map tiles" }).addTo(map);
    }
  }

  // The imported areas' outlines (GeoJSON from the app itself), drawn under the points and
  // never in the way of a click. `query` picks them: a bbox or the report's own area codes.
  function addOutlines(map, el, query) {
    var url = el.getAttribute("data-areas-url");
    if (!url || !window.fetch) return;
    if (!map.getPane("areas")) {
      map.createPane("areas").style.zIndex = 350;  // under the points (overlayPane is 400)
    }
    return fetch(url + "?" + query, { credentials: "same-origin", headers: { Accept: "application/geo+json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (outlines) {
        if (!outlines) return null;
        return L.geoJSON(outlines, {
          pane: "areas", interactive: false,
          style: { color: "#505a5f", weight: 2, opacity: 0.9, fill: true, fillOpacity: 0.04, dashArray: "6 4", className: "area-outline" }
        }).addTo(map);
      })
      .catch(function () { return null; });
  }

  function bboxParam(bounds) {
    return [bounds.getWest(), bounds.getSouth(), bounds.getEast(), bounds.getNorth()].map(function (v, i) {
      var limit = i % 2 ? 90 : 180;
      return Math.max(-limit, Math.min(limit, v)).toFixed(5);
    }).join(",");
  }

  function reportMap(el) {
    var lat = parseFloat(el.getAttribute("data-lat"));
    var lon = parseFloat(el.getAttribute("data-lon"));
    var accuracy = parseFloat(el.getAttribute("data-accuracy"));
    var map = L.map(el, { scrollWheelZoom: false, maxZoom: 18 }).setView([lat, lon], 15);
    addTiles(map, el);
    var bounds = L.latLngBounds([[lat, lon]]);
    L.circleMarker([lat, lon], { radius: 7, color: "#b0231a", weight: 3, fillOpacity: 0.9 })
      .addTo(map).bindTooltip("Reported location");
    if (accuracy > 0) {
      var circle = L.circle([lat, lon], { radius: accuracy, color: "#1d70b8", weight: 2, fillOpacity: 0.1 }).addTo(map);
      bounds.extend(circle.getBounds());
    }
    document.querySelectorAll("[data-photo-lat]").forEach(function (item, index) {
      var p = [parseFloat(item.getAttribute("data-photo-lat")), parseFloat(item.getAttribute("data-photo-lon"))];
      L.circleMarker(p, { radius: 6, color: "#4c2c92", weight: 3, fillOpacity: 0.6 })
        .addTo(map).bindTooltip("Photo " + (index + 1) + " GPS");
      bounds.extend(p);
    });
    map.fitBounds(bounds.pad(0.3), { maxZoom: 16 });
    var codes = [];
    try { codes = JSON.parse(el.getAttribute("data-areas") || "[]"); } catch (e) { codes = []; }
    if (codes.length) {
      addOutlines(map, el, codes.map(function (c) { return "code=" + encodeURIComponent(c); }).join("&"));
    }
  }

  function queueMap(el) {
    // Clustering needs a maximum zoom, which a map without tiles does not otherwise have.
    var map = L.map(el, { maxZoom: 18 });
    addTiles(map, el);
    var group = L.markerClusterGroup ? L.markerClusterGroup() : L.featureGroup();
    var count = 0;
    document.querySelectorAll("#queue-table .queue-row[data-lat]").forEach(function (row) {
      var link = row.querySelector(".row-link");
      var marker = L.circleMarker(
        [parseFloat(row.getAttribute("data-lat")), parseFloat(row.getAttribute("data-lon"))],
        { radius: 7, color: row.classList.contains("urgent") ? "#b0231a" : "#1d70b8", weight: 3, fillOpacity: 0.8 }
      );
      // textContent: the reference is never parsed as HTML.
      var label = document.createElement("a");
      label.href = link.href;
      label.textContent = link.textContent;
      marker.bindPopup(label);
      group.addLayer(marker);
      count += 1;
    });
    group.addTo(map);
    if (count) map.fitBounds(group.getBounds().pad(0.2), { maxZoom: 15 });
    else map.setView([51.5, -0.12], 10);

    // The box the queue is filtered to, if any, drawn so that it is clear what "inside" means.
    var current = new URL(window.location.href).searchParams.get("bbox");
    if (current) {
      var c = current.split(",").map(parseFloat);
      if (c.length === 4 && c.every(isFinite)) {
        L.rectangle([[c[1], c[0]], [c[3], c[2]]], { color: "#0b0c0c", weight: 2, fill: false, dashArray: "2 6", interactive: false, className: "bbox-current" }).addTo(map);
      }
    }

    // Outlines of the areas in view (and around it), fetched again when the map leaves them.
    var loaded = null, outlines = null;
    function loadOutlines() {
      var view = map.getBounds();
      if (loaded && loaded.contains(view)) return;
      loaded = view.pad(0.5);
      addOutlines(map, el, "bbox=" + bboxParam(loaded)).then(function (layer) {
        if (!layer) return;
        if (outlines) map.removeLayer(outlines);
        outlines = layer;
      });
    }
    loadOutlines();
    map.on("moveend", loadOutlines);

    // Filter the queue to a box: the area goes into the URL like every filter.
    function filterTo(bounds) {
      var url = new URL(window.location.href);
      url.searchParams.delete("cursor");
      url.searchParams.set("bbox", bboxParam(bounds));
      window.location.href = url.toString();
    }
    var tools = document.createElement("div");
    tools.className = "map-tools";
    function button(text, secondary) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = secondary ? "button secondary" : "button";
      b.textContent = text;
      tools.appendChild(b);
      return b;
    }
    var whole = button("Show only the reports in this map area", true);
    whole.addEventListener("click", function () { filterTo(map.getBounds()); });

    // Drawing a box: press the button, then drag on the map (mouse, pen or finger).
    var draw = button("Draw a box", true);
    draw.setAttribute("aria-pressed", "false");
    var apply = button("Show only reports in this box", false);
    apply.hidden = true;
    var hint = document.createElement("p");
    hint.className = "map-hint";
    hint.setAttribute("aria-live", "polite");
    tools.appendChild(hint);
    el.insertAdjacentElement("afterend", tools);

    var drawing = false, start = null, box = null;
    function setDrawing(on) {
      drawing = on;
      draw.setAttribute("aria-pressed", on ? "true" : "false");
      el.classList.toggle("drawing", on);
      if (on) {
        map.dragging.disable();
        map.boxZoom.disable();
        hint.textContent = "Drag on the map to draw the box. Press Escape or the button again to stop.";
      } else {
        map.dragging.enable();
        map.boxZoom.enable();
        start = null;
        hint.textContent = box ? "Box drawn: show only the reports in it, or draw another." : "";
      }
    }
    draw.addEventListener("click", function () { setDrawing(!drawing); });
    apply.addEventListener("click", function () { if (box) filterTo(box.getBounds()); });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && drawing) setDrawing(false);
    });

    el.addEventListener("pointerdown", function (event) {
      if (!drawing || event.button !== 0 || event.target.closest(".leaflet-control")) return;
      event.preventDefault();
      event.stopPropagation();
      start = map.mouseEventToLatLng(event);
      el.setPointerCapture(event.pointerId);
      if (box) map.removeLayer(box);
      box = L.rectangle(L.latLngBounds(start, start), {
        color: "#1d70b8", weight: 3, fillOpacity: 0.12, interactive: false, className: "bbox-drawn"
      }).addTo(map);
    });
    el.addEventListener("pointermove", function (event) {
      if (!drawing || !start) return;
      box.setBounds(L.latLngBounds(start, map.mouseEventToLatLng(event)));
    });
    el.addEventListener("pointerup", function (event) {
      if (!drawing || !start) return;
      var end = map.mouseEventToLatLng(event);
      var a = map.latLngToContainerPoint(start), b = map.latLngToContainerPoint(end);
      if (Math.abs(a.x - b.x) < 5 || Math.abs(a.y - b.y) < 5) {
        // A click, not a drag: no box.
        map.removeLayer(box);
        box = null;
      } else {
        box.setBounds(L.latLngBounds(start, end));
      }
      apply.hidden = !box;
      setDrawing(false);
      if (box) apply.focus();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var el = document.getElementById("map");
    if (!el || typeof L === "undefined") return;
    if (el.hasAttribute("data-lat")) reportMap(el);
    else queueMap(el);
  });
})();
