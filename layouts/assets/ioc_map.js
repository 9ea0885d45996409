// Map step: ward polygon styles from the GeoJSON layer's hideout (sent on every refresh),
// so only colours change and the map keeps its zoom and position.
window.dashExtensions = Object.assign({}, window.dashExtensions, {
    ioc: {
        wardStyle: function (feature, context) {
            var h = (context && context.hideout) || {};
            var code = feature.properties.ward_code;
            var colours = h.colours || {};
            var fill = colours[code] || "#3a4150";
            var selected = h.selected === code;
            return {
                fillColor: fill,
                fillOpacity: h.stale ? 0.55 : 0.85,
                color: selected ? "#ffffff" : (h.stale ? "#9aa0ab" : "#0d1117"),
                weight: selected ? 4 : 1.2,
                dashArray: h.stale ? "6 4" : null,
                className: "ward ward-" + code
            };
        }
    }
});
