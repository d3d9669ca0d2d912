/* The dashboard's bar chart: inline SVG, one horizontal bar per agency (its e_rate), a
   dashed line at the target; bars below target are hatched, marked and labelled in
   words, so colour is never the only sign. The SVG is laid out in real pixels for the
   container's width (one line per agency when wide, label above bar when narrow); the
   table under the chart carries the same figures. */
"use strict";

(function (DG) {
  const { svg } = DG;
  const t = (key, vars) => DG.i18n.t(key, vars);
  const NARROW = 520;

  function layout(width, count) {
    const w = Math.max(280, Math.min(880, Math.round(width)));
    if (w >= NARROW) {
      const barX = 128;
      return { w, narrow: false, row: 30, top: 28, labelX: 122, barX, barW: w - barX - 200, barY: 2, barH: 20 };
    }
    return { w, narrow: true, row: 46, top: 28, labelX: 0, barX: 0, barW: w - 14, barY: 20, barH: 16 };
  }

  function valueText(r) {
    return DG.i18n.percent(r.e_rate) + (r.below_target === true ? " " + t("below_target") : "");
  }

  function draw(container, rows, target) {
    const L = layout(container.clientWidth || 640, rows.length);
    const height = L.top + rows.length * L.row + 24;
    const x = (rate) => L.barX + Math.max(0, Math.min(1, rate || 0)) * L.barW;
    const chart = svg(
      "svg",
      {
        class: "chart",
        viewBox: `0 0 ${L.w} ${height}`,
        width: L.w,
        height,
        role: "img",
        "aria-labelledby": "chart-svg-title chart-svg-desc",
        preserveAspectRatio: "xMinYMin meet",
      },
      [
        svg("title", { id: "chart-svg-title", text: t("chart_title") }),
        svg("desc", { id: "chart-svg-desc", text: rows.map((r) => `${r.agency}: ${valueText(r)}`).join("; ") }),
        svg("defs", {}, [
          svg(
            "pattern",
            { id: "hatch-below", width: 8, height: 8, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" },
            [svg("rect", { class: "hatch-bg", width: 8, height: 8 }), svg("line", { class: "hatch-line", x1: 0, y1: 0, x2: 0, y2: 8 })]
          ),
        ]),
        svg("line", { class: "axis", x1: L.barX + 0.5, y1: L.top - 6, x2: L.barX + 0.5, y2: height - 20 }),
        svg("text", { x: L.barX, y: height - 4, "text-anchor": L.narrow ? "start" : "middle", text: "0%" }),
        svg("text", { x: L.barX + L.barW, y: height - 4, "text-anchor": L.narrow ? "end" : "middle", text: "100%" }),
      ]
    );
    rows.forEach((r, i) => {
      const y = L.top + i * L.row;
      const below = r.below_target === true;
      const name = `${r.agency} ${r.name || ""}: ${valueText(r)}`;
      chart.appendChild(
        svg("text", { x: L.labelX, y: y + 15, "text-anchor": L.narrow ? "start" : "end", text: r.agency })
      );
      chart.appendChild(
        svg(
          "rect",
          {
            class: "bar" + (below ? " below" : ""),
            "data-agency": r.agency,
            "data-rate": r.e_rate === null ? "" : String(r.e_rate),
            x: L.barX,
            y: y + L.barY,
            width: (x(r.e_rate) - L.barX).toFixed(1),
            height: L.barH,
          },
          [svg("title", { text: name })]
        )
      );
      if (below) {
        const tip = x(r.e_rate) + 2;
        const mid = y + L.barY + L.barH / 2;
        chart.appendChild(svg("path", { class: "below-mark", d: `M${tip} ${mid - 5}h10l-5 9z`, "aria-hidden": "true" }));
      }
      chart.appendChild(
        svg("text", {
          x: L.narrow ? 112 : L.barX + L.barW + 20, // narrow: after the code, clear of the target line
          y: y + 15,
          class: below ? "value below" : "value",
          text: valueText(r),
        })
      );
    });
    if (typeof target === "number") {
      const tx = x(target);
      chart.appendChild(
        svg("line", { class: "target-line", "data-target": String(target), x1: tx, y1: L.top - 8, x2: tx, y2: height - 20 })
      );
      chart.appendChild(
        svg("text", { x: tx, y: L.top - 12, "text-anchor": L.narrow ? "end" : "middle", text: t("target_short", { rate: DG.i18n.percent(target) }) })
      );
    }
    DG.clear(container).appendChild(chart);
  }

  DG.chart = { draw };
})(window.DG);
