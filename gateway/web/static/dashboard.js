/* The dashboard (/dashboard): log in with a token, choose a month, read
   GET /v1/reports/e-exchange?month=..., draw the chart and a sortable table, download
   the CSV and the signed PDF (fetched with the token, saved through a blob URL). */
"use strict";

(function (DG) {
  const { el } = DG;
  const t = (key, vars) => DG.i18n.t(key, vars);
  const REPORT = "/v1/reports/e-exchange";

  DG.i18n.add({
    vi: {
      dash_title: "Tỷ lệ văn bản điện tử theo tháng",
      login_title: "Đăng nhập",
      dash_report: "Báo cáo tháng",
      month_label: "Tháng (YYYY-MM)",
      show_report: "Xem báo cáo",
      download_csv: "Tải CSV",
      download_pdf: "Tải báo cáo PDF có ký số",
      chart_title: "Tỷ lệ văn bản điện tử (e_rate) của từng cơ quan",
      legend_ok: "Đạt mục tiêu",
      legend_below: "Dưới mục tiêu (gạch chéo, có chữ “dưới mục tiêu”)",
      legend_target: "Mục tiêu",
      table_title: "Bảng số liệu",
      table_caption: "Số văn bản và tỷ lệ theo cơ quan; bấm tiêu đề cột để sắp xếp",
      below_target: "dưới mục tiêu",
      at_target: "đạt",
      target_short: "Mục tiêu {rate}",
      report_meta: "Tháng {month}, lần tính {revision}{provisional}, lúc {at}. Mục tiêu: {target}.",
      provisional: " (tạm tính, tháng chưa kết thúc)",
      no_report: "Chưa có báo cáo cho tháng {month}. Quản trị viên cần chạy báo cáo trước.",
      report_loaded: "Đã tải báo cáo tháng {month}: {n} cơ quan.",
      col_agency: "Mã cơ quan",
      col_name: "Tên cơ quan",
      col_sent_electronic: "Gửi điện tử",
      col_sent_paper: "Gửi giấy",
      col_received_electronic: "Nhận điện tử",
      col_received_paper: "Nhận giấy",
      col_e_rate: "Tỷ lệ điện tử",
      col_signed_rate: "Tỷ lệ ký số hợp lệ",
      col_on_time_rate: "Tỷ lệ đúng hạn",
      col_below_target: "So với mục tiêu",
      sort_asc: "tăng dần",
      sort_desc: "giảm dần",
      problem_invalid_month: "Tháng không hợp lệ: nhập theo dạng YYYY-MM.",
    },
    en: {
      dash_title: "Electronic exchange rate by month",
      login_title: "Log in",
      dash_report: "Monthly report",
      month_label: "Month (YYYY-MM)",
      show_report: "Show report",
      download_csv: "Download CSV",
      download_pdf: "Download signed PDF report",
      chart_title: "Electronic exchange rate (e_rate) per agency",
      legend_ok: "At or above target",
      legend_below: "Below target (hatched, labelled “below target”)",
      legend_target: "Target",
      table_title: "Figures",
      table_caption: "Documents and rates per agency; press a column heading to sort",
      below_target: "below target",
      at_target: "met",
      target_short: "Target {rate}",
      report_meta: "Month {month}, revision {revision}{provisional}, computed {at}. Target: {target}.",
      provisional: " (provisional: the month is still open)",
      no_report: "There is no report for {month} yet. An administrator must run it first.",
      report_loaded: "Report for {month} loaded: {n} agencies.",
      col_agency: "Agency code",
      col_name: "Agency",
      col_sent_electronic: "Sent electronically",
      col_sent_paper: "Sent on paper",
      col_received_electronic: "Received electronically",
      col_received_paper: "Received on paper",
      col_e_rate: "Electronic rate",
      col_signed_rate: "Validly signed rate",
      col_on_time_rate: "On-time rate",
      col_below_target: "Against target",
      sort_asc: "ascending",
      sort_desc: "descending",
      problem_invalid_month: "Invalid month: enter it as YYYY-MM.",
    },
  });

  const COLUMNS = [
    { key: "agency", type: "text" },
    { key: "name", type: "text" },
    { key: "sent_electronic", type: "count" },
    { key: "sent_paper", type: "count" },
    { key: "received_electronic", type: "count" },
    { key: "received_paper", type: "count" },
    { key: "e_rate", type: "rate" },
    { key: "signed_rate", type: "rate" },
    { key: "on_time_rate", type: "rate" },
    { key: "below_target", type: "flag" },
  ];

  let report = null;
  let sort = { key: "agency", dir: 1 };

  function compare(a, b) {
    const va = a[sort.key];
    const vb = b[sort.key];
    if (va === vb) return a.agency < b.agency ? -1 : 1;
    if (va === null || va === undefined) return 1; // no figure: always last
    if (vb === null || vb === undefined) return -1;
    if (typeof va === "string") return va.localeCompare(vb, DG.i18n.lang()) * sort.dir;
    return (va < vb ? -1 : 1) * sort.dir;
  }

  function cell(row, col) {
    const value = row[col.key];
    if (col.type === "rate") return el("td", { class: "num", text: DG.i18n.percent(value) });
    if (col.type === "count") return el("td", { class: "num", text: DG.i18n.number(value) });
    if (col.type === "flag") {
      if (value === true) {
        return el("td", {}, [el("span", { class: "flag-below", text: "▼ " + t("below_target") })]);
      }
      return el("td", {}, [
        el("span", { class: value === false ? "flag-ok" : "", text: value === false ? t("at_target") : "—" }),
      ]);
    }
    return el("td", { text: value || "—" });
  }

  function drawTable(rows) {
    const head = DG.clear(document.getElementById("report-head"));
    COLUMNS.forEach((col) => {
      const active = sort.key === col.key;
      const th = el("th", {
        scope: "col",
        class: col.type === "count" || col.type === "rate" ? "num" : "",
        "aria-sort": active ? (sort.dir > 0 ? "ascending" : "descending") : "none",
      });
      const arrow = active ? (sort.dir > 0 ? " ↑" : " ↓") : "";
      th.appendChild(
        el(
          "button",
          {
            type: "button",
            class: "sort",
            "data-key": col.key,
            onclick: () => {
              sort = { key: col.key, dir: sort.key === col.key ? -sort.dir : 1 };
              drawAll();
            },
          },
          [
            t("col_" + col.key),
            el("span", { "aria-hidden": "true", text: arrow }),
            active
              ? el("span", { class: "visually-hidden", text: ` (${t(sort.dir > 0 ? "sort_asc" : "sort_desc")})` })
              : null,
          ]
        )
      );
      head.appendChild(th);
    });
    const body = DG.clear(document.getElementById("report-body"));
    rows.forEach((row) => {
      body.appendChild(
        el(
          "tr",
          { class: row.below_target ? "below-target" : "", "data-agency": row.agency },
          COLUMNS.map((col) => (col.key === "agency" ? el("th", { scope: "row", text: row.agency }) : cell(row, col)))
        )
      );
    });
  }

  function drawAll() {
    if (!report) return;
    const rows = report.agencies.slice().sort(compare);
    document.getElementById("report-meta").textContent = t("report_meta", {
      month: report.month,
      revision: report.revision,
      provisional: report.provisional ? t("provisional") : "",
      at: DG.i18n.time(report.generated_at),
      target: DG.i18n.percent(report.target),
    });
    drawChart(rows);
    drawTable(rows);
  }

  function drawChart(rows) {
    if (report) DG.chart.draw(document.getElementById("chart"), rows || report.agencies.slice().sort(compare), report.target);
  }

  function say(text, isError) {
    DG.i18n.say(document.getElementById("report-status"), text, isError);
  }

  async function load(month) {
    say(() => t("working"));
    try {
      report = await DG.api.json(`${REPORT}?month=${encodeURIComponent(month)}`);
      document.getElementById("report").hidden = false;
      drawAll();
      const n = report.agencies.length;
      say(() => t("report_loaded", { month, n }));
    } catch (error) {
      report = null;
      document.getElementById("report").hidden = true;
      const missing = error.status === 404 && error.code === "not_found";
      say(() => (missing ? t("no_report", { month }) : DG.api.describe(error)), true);
    }
  }

  async function save(path, fallback) {
    try {
      const name = await DG.api.download(path, fallback);
      say(() => `${t("downloaded")}: ${name}`);
    } catch (error) {
      say(() => DG.api.describe(error), true);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const monthInput = document.getElementById("month");
    monthInput.value = DG.i18n.currentMonth();
    document.getElementById("month-form").addEventListener("submit", (event) => {
      event.preventDefault();
      if (monthInput.value) load(monthInput.value);
    });
    document.getElementById("download-csv").addEventListener("click", () => {
      if (report) save(`${REPORT}?month=${report.month}&format=csv&revision=${report.revision}`, `e-exchange-${report.month}.csv`);
    });
    document.getElementById("download-pdf").addEventListener("click", () => {
      if (report) save(`${REPORT}/${report.month}.pdf?revision=${report.revision}`, `e-exchange-${report.month}.pdf`);
    });
    DG.api.wireLogin(
      () => {
        document.getElementById("report-area").hidden = false;
        load(monthInput.value || DG.i18n.currentMonth());
      },
      () => {
        report = null;
        document.getElementById("report-area").hidden = true;
        document.getElementById("report").hidden = true;
        say(null);
      }
    );
    DG.i18n.onChange(drawAll);
    let pending = false; // redraw the chart for the new width, once per frame
    window.addEventListener("resize", () => {
      if (pending || !report) return;
      pending = true;
      window.requestAnimationFrame(() => {
        pending = false;
        drawChart();
      });
    });
  });
})(window.DG);
