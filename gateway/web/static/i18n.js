/* Language (Vietnamese by default, English on demand), Vietnam time and number formats.
   Static text: elements with data-i18n="key" (text) and data-i18n-attr="attr:key,...".
   Each page script adds its own strings with DG.i18n.add({vi: {...}, en: {...}}). */
"use strict";

window.DG = window.DG || {};

(function (DG) {
  const STORE = "docgate.lang";
  const LANGS = ["vi", "en"];
  const strings = {
    vi: {
      brand: "DocGate",
      skip: "Bỏ qua, tới nội dung chính",
      nav_label: "Các trang",
      nav_verify: "Kiểm tra chữ ký",
      nav_dashboard: "Tỷ lệ văn bản điện tử",
      nav_exchanges: "Văn bản đến và đi",
      lang_other: "English",
      lang_other_code: "en",
      lang_switch_label: "Switch to English",
      token_label: "Mã truy cập (token)",
      login: "Đăng nhập",
      logout: "Đăng xuất",
      logged_in: "Đã đăng nhập. Mã truy cập chỉ được giữ trong thẻ trình duyệt này.",
      login_hint: "Mã truy cập được giữ trong thẻ trình duyệt này (sessionStorage) và bị xoá khi đóng thẻ.",
      login_failed: "Mã truy cập không đúng hoặc đã hết hiệu lực.",
      working: "Đang tải…",
      error_network: "Không kết nối được tới cổng. Hãy thử lại.",
      error_http: "Cổng trả lời lỗi",
      error_forbidden: "Mã truy cập này không có quyền thực hiện việc này.",
      error_unauthorized: "Cần đăng nhập lại: mã truy cập không hợp lệ.",
      downloaded: "Đã tải xuống",
      none: "Không có",
      unknown: "Không rõ",
      yes: "Có",
      no: "Không",
      vn_time: "giờ Việt Nam",
    },
    en: {
      brand: "DocGate",
      skip: "Skip to main content",
      nav_label: "Pages",
      nav_verify: "Verify a signature",
      nav_dashboard: "Electronic exchange rates",
      nav_exchanges: "Inbox and outbox",
      lang_other: "Tiếng Việt",
      lang_other_code: "vi",
      lang_switch_label: "Chuyển sang tiếng Việt",
      token_label: "Access token",
      login: "Log in",
      logout: "Log out",
      logged_in: "Logged in. The token is kept in this browser tab only.",
      login_hint: "The token is kept in this browser tab (sessionStorage) and dropped when the tab closes.",
      login_failed: "The token is wrong or no longer valid.",
      working: "Loading…",
      error_network: "Could not reach the gateway. Please try again.",
      error_http: "The gateway answered with an error",
      error_forbidden: "This token may not do that.",
      error_unauthorized: "Please log in again: the token is not valid.",
      downloaded: "Downloaded",
      none: "None",
      unknown: "Unknown",
      yes: "Yes",
      no: "No",
      vn_time: "Vietnam time",
    },
  };
  const listeners = [];
  const live = new Map(); // element -> () => text, rewritten when the language changes
  let current = "vi";
  try {
    const saved = window.localStorage.getItem(STORE);
    if (LANGS.includes(saved)) current = saved;
  } catch (e) {
    /* storage may be disabled: stay in Vietnamese */
  }

  function t(key, vars) {
    let text = strings[current][key];
    if (text === undefined) text = strings.vi[key];
    if (text === undefined) return key;
    if (vars) {
      text = text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
    }
    return text;
  }

  function applyStatic(root) {
    document.documentElement.lang = current;
    (root || document).querySelectorAll("[data-i18n]").forEach((el) => {
      el.textContent = t(el.dataset.i18n);
    });
    (root || document).querySelectorAll("[data-i18n-attr]").forEach((el) => {
      el.dataset.i18nAttr.split(",").forEach((pair) => {
        const [attr, key] = pair.split(":");
        el.setAttribute(attr.trim(), t(key.trim()));
      });
    });
    const title = document.querySelector("meta[name='docgate-title']");
    if (title) document.title = t(title.content) + " · DocGate";
  }

  function setLang(lang) {
    if (!LANGS.includes(lang)) return;
    current = lang;
    try {
      window.localStorage.setItem(STORE, lang);
    } catch (e) {
      /* ignore */
    }
    applyStatic();
    live.forEach((fn, element) => {
      element.textContent = fn();
    });
    listeners.forEach((fn) => fn(lang));
  }

  /* Show text() in element now and again after each language change (status lines). */
  function say(element, text, isError) {
    if (text) live.set(element, text);
    else live.delete(element);
    element.textContent = text ? text() : "";
    element.classList.toggle("error", !!isError);
  }

  const pad = (n) => String(n).padStart(2, "0");

  /* An ISO 8601 time shown in Vietnam time (Asia/Ho_Chi_Minh is UTC+07:00 all year);
     short: without seconds and the zone (tables say it in their heading). */
  function time(iso, short) {
    if (!iso) return t("none");
    const ms = Date.parse(iso);
    if (Number.isNaN(ms)) return iso;
    const d = new Date(ms + 7 * 3600 * 1000);
    const date =
      current === "vi"
        ? `${pad(d.getUTCDate())}/${pad(d.getUTCMonth() + 1)}/${d.getUTCFullYear()}`
        : `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
    if (short) return `${date} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
    const clock = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
    return `${date} ${clock} (UTC+07:00, ${t("vn_time")})`;
  }

  /* The current month in Vietnam, YYYY-MM. */
  function currentMonth() {
    const d = new Date(Date.now() + 7 * 3600 * 1000);
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}`;
  }

  function percent(rate) {
    if (rate === null || rate === undefined) return "—";
    const value = (rate * 100).toFixed(rate * 100 === Math.round(rate * 100) ? 0 : 1);
    return (current === "vi" ? value.replace(".", ",") : value) + "%";
  }

  function number(n) {
    return n === null || n === undefined ? "—" : String(n);
  }

  function wireSwitch() {
    const button = document.getElementById("lang-switch");
    if (button) {
      button.addEventListener("click", () => setLang(current === "vi" ? "en" : "vi"));
    }
  }

  DG.i18n = {
    t,
    time,
    percent,
    number,
    currentMonth,
    lang: () => current,
    setLang,
    say,
    applyStatic,
    onChange: (fn) => listeners.push(fn),
    add(more) {
      LANGS.forEach((lang) => Object.assign(strings[lang], more[lang] || {}));
    },
  };

  document.addEventListener("DOMContentLoaded", () => {
    wireSwitch();
    applyStatic();
  });
})(window.DG);
