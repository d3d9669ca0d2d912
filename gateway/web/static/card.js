/* The verification card, shared by / and /exchanges: one banner for the document and
   one card per signature of a POST /v1/verify report (signing/verify/report.py). The
   verdict is told by colour, icon and text together. */
"use strict";

(function (DG) {
  const { el, svg } = DG;
  const t = (key, vars) => DG.i18n.t(key, vars);

  DG.i18n.add({
    vi: {
      doc_valid: "Văn bản có chữ ký số hợp lệ",
      doc_not_valid: "Văn bản KHÔNG có chữ ký số hợp lệ",
      doc_unsigned: "Văn bản không có chữ ký số",
      signature_n: "Chữ ký {n}",
      timestamp_n: "Dấu thời gian tài liệu {n}",
      TOTAL_PASSED: "Hợp lệ",
      INDETERMINATE: "Chưa xác định được",
      TOTAL_FAILED: "Không hợp lệ",
      signer: "Người ký",
      organization: "Cơ quan, tổ chức",
      signing_time: "Thời điểm ký",
      timestamp_time: "Thời điểm theo dấu thời gian",
      level: "Mức chữ ký",
      integrity: "Tính toàn vẹn",
      intact_yes: "Nội dung đã ký còn nguyên vẹn",
      intact_no: "Nội dung đã ký bị thay đổi",
      trusted: "Chứng thư số",
      trusted_yes: "Do tổ chức tin cậy cấp, kiểm tra được",
      trusted_no: "Không xác nhận được là tin cậy",
      changes: "Thay đổi sau khi ký",
      reasons: "Lý do",
      tech: "Chi tiết kỹ thuật",
      doc_sha256: "SHA-256 của tệp",
      doc_size: "Kích thước",
      doc_revisions: "Số lần lưu (phiên bản)",
      bytes: "{n} byte",
      field: "Trường chữ ký",
      indication: "Kết luận (ETSI EN 319 102-1)",
      coverage: "Phạm vi ký",
      serial: "Số sê-ri chứng thư",
      cert_sha256: "SHA-256 của chứng thư",
      messages: "Thông báo của bộ kiểm tra (tiếng Anh)",
      level_B_B: "PAdES B-B (cơ bản)",
      level_B_T: "PAdES B-T (có dấu thời gian)",
      level_B_LT: "PAdES B-LT (có dữ liệu kiểm tra dài hạn)",
      level_B_LTA: "PAdES B-LTA (lưu trữ dài hạn)",
      mod_NONE: "Không có thay đổi nào sau khi ký.",
      mod_LTA_UPDATES: "Chỉ bổ sung dữ liệu kiểm tra và dấu thời gian lưu trữ (được phép).",
      mod_FORM_FILLING: "Có điền biểu mẫu hoặc thêm chữ ký khác sau khi ký.",
      mod_ANNOTATIONS: "Có thêm chú thích (ghi chú, đánh dấu) sau khi ký.",
      mod_OTHER: "Có thay đổi khác sau khi ký: nội dung có thể đã bị sửa.",
      mod_in_place: "Chính phần nội dung đã ký bị sửa (không phải một lần lưu bổ sung).",
      why_ok: "Chữ ký đúng, chứng thư số tin cậy và nội dung không bị sửa.",
      why_HASH_FAILURE: "Nội dung văn bản đã bị sửa sau khi ký: dữ liệu không còn khớp với chữ ký.",
      why_SIG_CRYPTO_FAILURE: "Giá trị chữ ký không khớp với khoá công khai của người ký.",
      why_FORMAT_FAILURE: "Chữ ký bị hỏng hoặc sai định dạng, không đọc được.",
      why_REVOKED: "Chứng thư số của người ký đã bị thu hồi trước thời điểm ký.",
      why_NOT_YET_VALID: "Chứng thư số chưa có hiệu lực vào thời điểm ký.",
      why_EXPIRED: "Chứng thư số đã hết hạn và không có dấu thời gian chứng minh chữ ký có trước đó.",
      why_NO_CERTIFICATE_CHAIN_FOUND: "Chứng thư số không thuộc tổ chức cung cấp dịch vụ chứng thực mà cổng tin cậy.",
      why_NO_SIGNING_CERTIFICATE_FOUND: "Không tìm thấy chứng thư số của người ký trong chữ ký.",
      why_CERTIFICATE_CHAIN_GENERAL_FAILURE: "Không kiểm tra được chuỗi chứng thư số của người ký.",
      why_CHAIN_CONSTRAINTS_FAILURE: "Chuỗi chứng thư số không đáp ứng chính sách kiểm tra.",
      why_SIG_CONSTRAINTS_FAILURE: "Chữ ký không đáp ứng chính sách kiểm tra.",
      why_CRYPTO_CONSTRAINTS_FAILURE: "Thuật toán hoặc độ dài khoá không còn đủ an toàn.",
      why_CRYPTO_CONSTRAINTS_FAILURE_NO_POE: "Thuật toán không còn đủ an toàn và không có bằng chứng thời gian.",
      why_REVOKED_NO_POE: "Chứng thư số đã bị thu hồi; không chứng minh được chữ ký có trước đó.",
      why_REVOKED_CA_NO_POE: "Chứng thư của tổ chức cấp đã bị thu hồi; không chứng minh được chữ ký có trước đó.",
      why_OUT_OF_BOUNDS_NO_POE: "Thời điểm ký nằm ngoài thời hạn của chứng thư số.",
      why_OUT_OF_BOUNDS_NOT_REVOKED: "Thời điểm ký nằm ngoài thời hạn của chứng thư số.",
      why_NO_POE: "Không có bằng chứng thời gian (dấu thời gian) cho chữ ký.",
      why_TRY_LATER: "Chưa lấy được thông tin thu hồi chứng thư số; hãy kiểm tra lại sau.",
      why_TIMESTAMP_ORDER_FAILURE: "Dấu thời gian của chữ ký không hợp lệ.",
      why_GENERIC: "Không xác nhận được chữ ký.",
      why_not_trusted: "Không xác nhận được chứng thư số của người ký là tin cậy.",
      why_changed: "Văn bản đã bị thay đổi sau khi ký theo cách không được phép.",
    },
    en: {
      doc_valid: "The document is validly signed",
      doc_not_valid: "The document is NOT validly signed",
      doc_unsigned: "The document carries no signature",
      signature_n: "Signature {n}",
      timestamp_n: "Document timestamp {n}",
      TOTAL_PASSED: "Valid",
      INDETERMINATE: "Cannot be confirmed",
      TOTAL_FAILED: "Invalid",
      signer: "Signer",
      organization: "Organisation",
      signing_time: "Signing time",
      timestamp_time: "Timestamp time",
      level: "Signature level",
      integrity: "Integrity",
      intact_yes: "The signed content is intact",
      intact_no: "The signed content was changed",
      trusted: "Certificate",
      trusted_yes: "Issued by a trusted authority and checked",
      trusted_no: "Could not be confirmed as trusted",
      changes: "Changes after signing",
      reasons: "Reasons",
      tech: "Technical details",
      doc_sha256: "SHA-256 of the file",
      doc_size: "Size",
      doc_revisions: "Revisions (saves)",
      bytes: "{n} bytes",
      field: "Signature field",
      indication: "Indication (ETSI EN 319 102-1)",
      coverage: "Coverage",
      serial: "Certificate serial number",
      cert_sha256: "SHA-256 of the certificate",
      messages: "Verifier messages",
      level_B_B: "PAdES B-B (basic)",
      level_B_T: "PAdES B-T (with a timestamp)",
      level_B_LT: "PAdES B-LT (long-term validation data)",
      level_B_LTA: "PAdES B-LTA (long-term archive)",
      mod_NONE: "Nothing was changed after signing.",
      mod_LTA_UPDATES: "Only validation data and archive timestamps were added (permitted).",
      mod_FORM_FILLING: "Form fields were filled in or further signatures added after signing.",
      mod_ANNOTATIONS: "Annotations (comments, highlights) were added after signing.",
      mod_OTHER: "Other changes were made after signing: the content may have been altered.",
      mod_in_place: "The signed content itself was altered (not in a later, separate update).",
      why_ok: "The signature is correct, the certificate is trusted and the content was not altered.",
      why_HASH_FAILURE: "The document's content was changed after signing: it no longer matches the signature.",
      why_SIG_CRYPTO_FAILURE: "The signature value does not match the signer's public key.",
      why_FORMAT_FAILURE: "The signature is damaged or malformed and cannot be read.",
      why_REVOKED: "The signer's certificate was revoked before the signing time.",
      why_NOT_YET_VALID: "The certificate was not yet valid at the signing time.",
      why_EXPIRED: "The certificate has expired and no timestamp proves the signature is older.",
      why_NO_CERTIFICATE_CHAIN_FOUND: "The certificate does not come from an authority this gateway trusts.",
      why_NO_SIGNING_CERTIFICATE_FOUND: "The signer's certificate is missing from the signature.",
      why_CERTIFICATE_CHAIN_GENERAL_FAILURE: "The signer's certificate chain could not be checked.",
      why_CHAIN_CONSTRAINTS_FAILURE: "The certificate chain does not meet the validation policy.",
      why_SIG_CONSTRAINTS_FAILURE: "The signature does not meet the validation policy.",
      why_CRYPTO_CONSTRAINTS_FAILURE: "The algorithm or key size is no longer considered secure.",
      why_CRYPTO_CONSTRAINTS_FAILURE_NO_POE: "The algorithm is no longer secure and no timestamp proves the signature is older.",
      why_REVOKED_NO_POE: "The certificate was revoked and nothing proves the signature is older.",
      why_REVOKED_CA_NO_POE: "An issuing authority was revoked and nothing proves the signature is older.",
      why_OUT_OF_BOUNDS_NO_POE: "The signing time is outside the certificate's validity period.",
      why_OUT_OF_BOUNDS_NOT_REVOKED: "The signing time is outside the certificate's validity period.",
      why_NO_POE: "There is no proof of existence (timestamp) for the signature.",
      why_TRY_LATER: "Revocation information could not be obtained yet; check again later.",
      why_TIMESTAMP_ORDER_FAILURE: "The signature's timestamp does not validate.",
      why_GENERIC: "The signature could not be confirmed.",
      why_not_trusted: "The signer's certificate could not be confirmed as trusted.",
      why_changed: "The document was changed after signing in a way that is not permitted.",
    },
  });

  const VERDICT_CLASS = {
    TOTAL_PASSED: "is-passed",
    INDETERMINATE: "is-indeterminate",
    TOTAL_FAILED: "is-failed",
  };
  const PERMITTED = ["NONE", "LTA_UPDATES"];

  /* A verdict icon: a tick in a circle, "!" in a triangle, a cross in a circle. */
  function icon(indication) {
    const base = { class: "icon", viewBox: "0 0 24 24", "aria-hidden": "true", focusable: "false" };
    const stroke = {
      fill: "none",
      stroke: "currentColor",
      "stroke-width": "2.5",
      "stroke-linecap": "round",
      "stroke-linejoin": "round",
    };
    const shapes = {
      TOTAL_PASSED: [
        svg("circle", Object.assign({ cx: 12, cy: 12, r: 10 }, stroke)),
        svg("path", Object.assign({ d: "M7 12.5l3.2 3.2L17 9" }, stroke)),
      ],
      INDETERMINATE: [
        svg("path", Object.assign({ d: "M12 2.8L22 20.5H2z" }, stroke)),
        svg("path", Object.assign({ d: "M12 9v5.2M12 17.4v.1" }, stroke)),
      ],
      TOTAL_FAILED: [
        svg("circle", Object.assign({ cx: 12, cy: 12, r: 10 }, stroke)),
        svg("path", Object.assign({ d: "M8 8l8 8M16 8l-8 8" }, stroke)),
      ],
    };
    return svg("svg", Object.assign({ "data-verdict": indication }, base), shapes[indication]);
  }

  function row(term, value) {
    return [el("dt", { text: term }), el("dd", {}, [value])];
  }

  function reasons(sig) {
    const list = [];
    if (sig.indication === "TOTAL_PASSED") list.push(t("why_ok"));
    else if (sig.subindication) list.push(t("why_" + sig.subindication));
    else if (!sig.trusted) list.push(t("why_not_trusted"));
    else list.push(t("why_GENERIC"));
    if (!PERMITTED.includes(sig.modifications) && sig.modifications !== "FORM_FILLING") {
      list.push(t("why_changed"));
    }
    return list;
  }

  function signatureCard(sig, n) {
    const heading = t(sig.kind === "document_timestamp" ? "timestamp_n" : "signature_n", { n });
    const verdict = VERDICT_CLASS[sig.indication] ? sig.indication : "INDETERMINATE";
    const signer = sig.signer || {};
    const dl = el("dl", {}, [
      ...row(t("signer"), signer.common_name || t("unknown")),
      ...row(t("organization"), signer.organization || t("unknown")),
      ...row(t("signing_time"), DG.i18n.time(sig.signing_time)),
      ...row(t("timestamp_time"), DG.i18n.time(sig.timestamp_time)),
      ...row(t("level"), sig.level ? t("level_" + sig.level.replace("-", "_")) : t("none")),
      ...row(t("integrity"), t(sig.intact ? "intact_yes" : "intact_no")),
      ...row(t("trusted"), t(sig.trusted ? "trusted_yes" : "trusted_no")),
      ...row(t("changes"), t(sig.intact ? "mod_" + sig.modifications : "mod_in_place")),
    ]);
    const tech = el("details", { class: "tech" }, [
      el("summary", { text: t("tech") }),
      el("dl", {}, [
        ...row(t("field"), sig.field),
        ...row(t("indication"), [sig.indication, sig.subindication].filter(Boolean).join(" / ")),
        ...row(t("coverage"), sig.coverage),
        ...row(t("serial"), el("code", { text: signer.serial || "—" })),
        ...row(t("cert_sha256"), el("code", { text: signer.sha256 || "—" })),
      ]),
      sig.messages && sig.messages.length
        ? el("div", { lang: "en" }, [
            el("p", { text: t("messages") }),
            el("ul", {}, sig.messages.map((m) => el("li", { text: m }))),
          ])
        : null,
    ]);
    return el(
      "article",
      {
        class: "sig-card " + VERDICT_CLASS[verdict],
        "data-indication": verdict,
        "aria-label": `${heading}: ${t(verdict)}`,
      },
      [
        el("h3", { class: "verdict-title" }, [
          icon(verdict),
          el("span", {}, [heading + ": ", el("span", { class: "verdict-text", text: t(verdict) })]),
        ]),
        dl,
        el("p", { class: "reasons-title", text: t("reasons") + ":" }),
        el(
          "ul",
          { class: "reasons" },
          reasons(sig).map((r) => el("li", { text: r }))
        ),
        tech,
      ]
    );
  }

  function banner(report) {
    const unsigned = !report.signatures || report.signatures.length === 0;
    const indication = report.valid ? "TOTAL_PASSED" : unsigned ? "INDETERMINATE" : "TOTAL_FAILED";
    const title = t(report.valid ? "doc_valid" : unsigned ? "doc_unsigned" : "doc_not_valid");
    const summary = report.summary ? report.summary[DG.i18n.lang()] || report.summary.vi : "";
    return el(
      "div",
      { class: "banner " + VERDICT_CLASS[indication], "data-valid": String(!!report.valid) },
      [
        icon(indication),
        el("div", {}, [
          el("h3", { class: "verdict-title" }, [el("span", { class: "verdict-text", text: title })]),
          summary ? el("p", { class: "summary", text: summary }) : null,
        ]),
      ]
    );
  }

  function documentDetails(report) {
    const doc = report.document || {};
    return el("details", { class: "tech" }, [
      el("summary", { text: t("tech") }),
      el("dl", {}, [
        ...row(t("doc_sha256"), el("code", { text: doc.sha256 || "—" })),
        ...row(t("doc_size"), t("bytes", { n: doc.size })),
        ...row(t("doc_revisions"), String(doc.revisions)),
      ]),
      report.messages && report.messages.length
        ? el("ul", { lang: "en" }, report.messages.map((m) => el("li", { text: m })))
        : null,
    ]);
  }

  /* The whole result for one document: a <section> with `title` as its heading. */
  function render(report, title) {
    return el("section", { class: "result-file verification" }, [
      el("h2", { text: title }),
      banner(report),
      ...(report.signatures || []).map((sig, i) => signatureCard(sig, i + 1)),
      documentDetails(report),
    ]);
  }

  /* POST a PDF (Blob or File) to /v1/verify, the open endpoint: no token is sent. */
  async function verify(blob) {
    return DG.api.json("/v1/verify", {
      method: "POST",
      headers: { "Content-Type": "application/pdf" },
      body: blob,
      auth: false,
    });
  }

  DG.card = { render, verify, icon };
})(window.DG);
