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

    // Filter the queue to what the map shows: the area goes into the URL like every filter.
    var button = document.createElement("button");
    button.type = "button";
    button.className = "button secondary";
    button.textContent = "Show only the reports in this map area";
    button.addEventListener("click", function () {
      var b = map.getBounds();
      var box = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v, i) {
        var limit = i % 2 ? 90 : 180;
        return Math.max(-limit, Math.min(limit, v)).toFixed(5);
      });
      var url = new URL(window.location.href);
      url.searchParams.delete("cursor");
      url.searchParams.set("bbox", box.join(","));
      window.location.href = url.toString();
    });
    el.insertAdjacentElement("afterend", button);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var el = document.getElementById("map");
    if (!el || typeof L === "undefined") return;
    if (el.hasAttribute("data-lat")) reportMap(el);
    else queueMap(el);
  });
})();
