/* The verification page (/): choose or drop PDFs, POST each to /v1/verify, show a card
   per signature. Nothing is kept: the results live in this page until it is closed. */
"use strict";

(function (DG) {
  const t = (key, vars) => DG.i18n.t(key, vars);

  DG.i18n.add({
    vi: {
      verify_title: "Kiểm tra chữ ký số văn bản",
      verify_lead:
        "Chọn hoặc kéo thả tệp PDF đã ký số để kiểm tra. Tệp chỉ được gửi tới cổng để kiểm tra và không được lưu lại.",
      choose_file: "Chọn tệp PDF để kiểm tra",
      drop_hint: "hoặc kéo thả tệp PDF vào khung này (tối đa 100 MiB)",
      checking: "Đang kiểm tra {name}…",
      checked: "Đã kiểm tra {n} tệp.",
      result_for: "Kết quả: {name}",
      problem_not_a_pdf: "Tệp này không phải là tệp PDF.",
      problem_encrypted_pdf: "Tệp PDF được mã hoá bằng mật khẩu nên không kiểm tra được.",
      problem_too_large: "Tệp quá lớn so với giới hạn của cổng.",
      problem_rate_limited: "Bạn đã gửi quá nhiều yêu cầu. Hãy đợi một lát rồi thử lại.",
    },
    en: {
      verify_title: "Verify a signed document",
      verify_lead:
        "Choose or drop a signed PDF to check its signatures. The file is sent to the gateway for checking only and is not kept.",
      choose_file: "Choose a PDF to verify",
      drop_hint: "or drag and drop PDF files onto this box (up to 100 MiB)",
      checking: "Checking {name}…",
      checked: "{n} file(s) checked.",
      result_for: "Result: {name}",
      problem_not_a_pdf: "This file is not a PDF.",
      problem_encrypted_pdf: "This PDF is encrypted with a password and cannot be checked.",
      problem_too_large: "The file is larger than the gateway accepts.",
      problem_rate_limited: "Too many requests from this address. Please wait a moment and try again.",
    },
  });

  let results = []; // [{name, report} | {name, error}]

  function draw() {
    const box = DG.clear(document.getElementById("results"));
    results.forEach((r) => {
      if (r.report) {
        box.appendChild(DG.card.render(r.report, t("result_for", { name: r.name })));
      } else {
        box.appendChild(
          DG.el("section", { class: "result-file" }, [
            DG.el("h2", { text: t("result_for", { name: r.name }) }),
            DG.el("p", { class: "status-line error", role: "alert", text: DG.api.describe(r.error) }),
          ])
        );
      }
    });
  }

  async function check(files) {
    const list = Array.from(files || []);
    if (!list.length) return;
    const status = document.getElementById("verify-status");
    const box = document.getElementById("results");
    box.setAttribute("aria-busy", "true");
    results = [];
    draw();
    for (const file of list) {
      DG.i18n.say(status, () => t("checking", { name: file.name }));
      try {
        results.push({ name: file.name, report: await DG.card.verify(file) });
      } catch (error) {
        results.push({ name: file.name, error });
      }
    }
    draw();
    box.setAttribute("aria-busy", "false");
    DG.i18n.say(status, () => t("checked", { n: list.length }));
  }

  document.addEventListener("DOMContentLoaded", () => {
    const input = document.getElementById("file");
    const zone = document.getElementById("dropzone");
    input.addEventListener("change", () => {
      check(input.files);
      input.value = "";
    });
    ["dragenter", "dragover"].forEach((name) =>
      zone.addEventListener(name, (event) => {
        event.preventDefault();
        zone.classList.add("dragover");
      })
    );
    ["dragleave", "dragend"].forEach((name) =>
      zone.addEventListener(name, () => zone.classList.remove("dragover"))
    );
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("dragover");
      check(event.dataTransfer && event.dataTransfer.files);
    });
    // a file dropped beside the box must not replace the page with the PDF
    ["dragover", "drop"].forEach((name) =>
      window.addEventListener(name, (event) => event.preventDefault())
    );
    DG.i18n.onChange(draw);
  });
})(window.DG);
