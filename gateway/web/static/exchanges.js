/* The exchanges page (/exchanges): an agency's inbox and outbox (GET /v1/inbox,
   GET /v1/outbox) with the edXML statuses in words, a preview of each document (fetched
   with the token, opened as a blob: URL) and its verification card (card.js). */
"use strict";

(function (DG) {
  const { el } = DG;
  const t = (key, vars) => DG.i18n.t(key, vars);

  DG.i18n.add({
    vi: {
      ex_title: "Văn bản đến và văn bản đi",
      login_title: "Đăng nhập bằng mã truy cập của cơ quan",
      inbox: "Văn bản đến",
      outbox: "Văn bản đi",
      col_time: "Thời gian (UTC+07:00)",
      col_number: "Số, ký hiệu",
      col_subject: "Trích yếu",
      col_from: "Nơi gửi",
      col_to: "Nơi nhận",
      col_status: "Trạng thái",
      col_actions: "Thao tác",
      preview: "Xem văn bản",
      verify_card: "Kiểm tra chữ ký",
      paper: "Văn bản giấy",
      empty: "Chưa có văn bản nào.",
      more: "Xem thêm",
      loaded: "Đã tải {inbox} văn bản đến và {outbox} văn bản đi.",
      agency_only: "Trang này dành cho mã truy cập của một cơ quan (không phải quản trị viên hay kiểm toán).",
      card_title: "Kiểm tra chữ ký: văn bản số {number}",
      card_stored: "Kết quả kiểm tra lúc văn bản được gửi qua cổng.",
      card_live: "Kết quả kiểm tra vừa thực hiện.",
      recheck: "Kiểm tra lại ngay",
      preview_opened: "Đã mở văn bản trong thẻ mới.",
      status_new: "Mới, chưa xác nhận",
      status_01: "Đã đến",
      status_02: "Từ chối, trả lại",
      status_03: "Đã tiếp nhận",
      status_04: "Phân công",
      status_05: "Đang xử lý",
      status_06: "Hoàn thành",
      status_13: "Yêu cầu lấy lại",
      status_15: "Đồng ý lấy lại",
      status_16: "Từ chối lấy lại",
    },
    en: {
      ex_title: "Incoming and outgoing documents",
      login_title: "Log in with your agency's token",
      inbox: "Inbox",
      outbox: "Outbox",
      col_time: "Time (UTC+07:00)",
      col_number: "Number and code",
      col_subject: "Subject",
      col_from: "From",
      col_to: "To",
      col_status: "Status",
      col_actions: "Actions",
      preview: "Open document",
      verify_card: "Check signatures",
      paper: "Paper document",
      empty: "No documents yet.",
      more: "Show more",
      loaded: "Loaded {inbox} incoming and {outbox} outgoing documents.",
      agency_only: "This page is for an agency's token (not an administrator's or auditor's).",
      card_title: "Signatures of document {number}",
      card_stored: "Verified when the document passed through the gateway.",
      card_live: "Verified just now.",
      recheck: "Verify again now",
      preview_opened: "The document was opened in a new tab.",
      status_new: "New, not acknowledged",
      status_01: "Arrived",
      status_02: "Rejected / returned",
      status_03: "Registered",
      status_04: "Assigned",
      status_05: "In progress",
      status_06: "Completed",
      status_13: "Recall requested",
      status_15: "Recall accepted",
      status_16: "Recall refused",
    },
  });

  const boxes = { inbox: { items: [], cursor: null }, outbox: { items: [], cursor: null } };
  let names = {};
  let shown = null; // {item, report, live}

  function agencyName(code) {
    return names[code] ? `${names[code]} (${code})` : code;
  }

  function statusLabel(code) {
    return code ? `${code} · ${t("status_" + code)}` : t("status_new");
  }

  function docNumber(item) {
    return [item.number, item.notation].filter(Boolean).join("/") || "—";
  }

  function say(text, isError) {
    DG.i18n.say(document.getElementById("exchange-status"), text, isError);
  }

  function actions(item) {
    if (!item.document_sha256) return el("td", { text: t("paper") });
    return el("td", {}, [
      el("div", { class: "actions" }, [
        el("button", {
          type: "button",
          class: "secondary preview",
          "aria-label": `${t("preview")} ${docNumber(item)}`,
          text: t("preview"),
          onclick: () => preview(item),
        }),
        el("button", {
          type: "button",
          class: "secondary check",
          "aria-label": `${t("verify_card")} ${docNumber(item)}`,
          text: t("verify_card"),
          onclick: () => showCard(item, false),
        }),
      ]),
    ]);
  }

  function drawBox(name) {
    const inbox = name === "inbox";
    const table = document.getElementById(name + "-table");
    const head = DG.clear(table.querySelector("thead tr"));
    ["col_time", "col_number", "col_subject", inbox ? "col_from" : "col_to", "col_status", "col_actions"].forEach(
      (key) => head.appendChild(el("th", { scope: "col", text: t(key) }))
    );
    const body = DG.clear(document.getElementById(name + "-body"));
    const box = boxes[name];
    box.items.forEach((item) => {
      const status = inbox
        ? el("td", { class: "status", "data-code": item.status || "new", text: statusLabel(item.status) })
        : el(
            "td",
            { class: "status" },
            [el("ul", { class: "reasons" }, (item.recipients || []).map((r) =>
              el("li", { "data-agency": r.agency, "data-code": r.status || "new", text: `${r.agency}: ${statusLabel(r.status)}` })
            ))]
          );
      body.appendChild(
        el("tr", { "data-id": item.id }, [
          el("td", { class: "num", text: DG.i18n.time(item.exchanged_at || item.created_at, true) }),
          el("th", { scope: "row", text: docNumber(item) }),
          el("td", { text: item.subject || "—" }),
          el("td", { text: inbox ? agencyName(item.from) : (item.to || []).map(agencyName).join(", ") }),
          status,
          actions(item),
        ])
      );
    });
    if (!box.items.length) {
      body.appendChild(el("tr", {}, [el("td", { colspan: 6, text: t("empty") })]));
    }
    if (box.cursor) {
      body.appendChild(
        el("tr", {}, [
          el("td", { colspan: 6 }, [
            el("button", { type: "button", class: "secondary", text: t("more"), onclick: () => more(name) }),
          ]),
        ])
      );
    }
  }

  async function more(name) {
    try {
      const page = await DG.api.json(`/v1/${name}?limit=50&cursor=${encodeURIComponent(boxes[name].cursor)}`);
      boxes[name].items.push(...page.items);
      boxes[name].cursor = page.next_cursor;
      drawBox(name);
    } catch (error) {
      say(() => DG.api.describe(error), true);
    }
  }

  async function loadBoxes() {
    say(() => t("working"));
    try {
      const [inbox, outbox] = await Promise.all([DG.api.json("/v1/inbox?limit=50"), DG.api.json("/v1/outbox?limit=50")]);
      boxes.inbox = { items: inbox.items, cursor: inbox.next_cursor };
      boxes.outbox = { items: outbox.items, cursor: outbox.next_cursor };
      drawBox("inbox");
      drawBox("outbox");
      const counts = { inbox: inbox.items.length, outbox: outbox.items.length };
      say(() => t("loaded", counts));
    } catch (error) {
      say(() => (error.status === 403 ? t("agency_only") : DG.api.describe(error)), true);
    }
  }

  async function preview(item) {
    try {
      await DG.api.openPdf(`/v1/exchanges/${encodeURIComponent(item.id)}/document`);
      say(() => t("preview_opened"));
    } catch (error) {
      say(() => DG.api.describe(error), true);
    }
  }

  function drawCard() {
    const box = DG.clear(document.getElementById("exchange-card"));
    if (!shown) return;
    const section = DG.card.render(shown.report, t("card_title", { number: docNumber(shown.item) }));
    section.insertBefore(
      el("p", { class: "note", text: t(shown.live ? "card_live" : "card_stored") }),
      section.children[1]
    );
    section.appendChild(
      el("button", { type: "button", class: "secondary", text: t("recheck"), onclick: () => showCard(shown.item, true) })
    );
    box.appendChild(section);
  }

  /* The stored verification of the exchange, or (live, or none stored) the document
     fetched with the token and posted to /v1/verify. */
  async function showCard(item, live) {
    const box = document.getElementById("exchange-card");
    box.setAttribute("aria-busy", "true");
    say(() => t("working"));
    try {
      const id = encodeURIComponent(item.id);
      let report = null;
      if (!live) report = (await DG.api.json(`/v1/exchanges/${id}`)).verification;
      if (!report) {
        const blob = await (await DG.api.request(`/v1/exchanges/${id}/document`)).blob();
        report = await DG.card.verify(blob);
        live = true;
      }
      shown = { item, report, live };
      drawCard();
      say(null);
      box.focus();
    } catch (error) {
      say(() => DG.api.describe(error), true);
    } finally {
      box.setAttribute("aria-busy", "false");
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    DG.api.wireLogin(
      (agencies) => {
        names = Object.fromEntries((agencies.agencies || []).map((a) => [a.code, a.name]));
        document.getElementById("exchange-area").hidden = false;
        loadBoxes();
      },
      () => {
        boxes.inbox = { items: [], cursor: null };
        boxes.outbox = { items: [], cursor: null };
        shown = null;
        DG.clear(document.getElementById("exchange-card"));
        document.getElementById("exchange-area").hidden = true;
      }
    );
    DG.i18n.onChange(() => {
      if (document.getElementById("exchange-area").hidden) return;
      drawBox("inbox");
      drawBox("outbox");
      drawCard();
    });
  });
})(window.DG);
